"""The docs' pictures, from real runs: samples of the main presets, a conditional model's rows, the report page.

Trains each figure's run for its epochs (about 5 minutes each on two CPU cores, 15 for CIFAR-10, all in fp32; a run
already that long is reused, one shorter is resumed), then writes into --out (docs/figures):
- samples.png: 36 samples each of `fast-mnist` on MNIST and on Fashion-MNIST and of `report-dcgan-cifar10` on
  CIFAR-10, side by side, each panel titled with its preset and epochs;
- classes.png: `cgan-fashion-mnist`, one row per class, each column one noise vector;
- report.png: the top of the MNIST run's report page, as Chromium shows it;
- figures.json: what each picture came from (preset, data, epochs, images seen, training seconds, seed, commit).

    python bench/docs_figures.py --data ../shared/data --runs /tmp/docs-runs --out docs/figures
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import gankit
from gankit.rundir import RunDir

SCALE = 2  # each sample drawn at twice its size, so 28x28 digits stay legible in the docs
PAD = 2
TITLE_HEIGHT = 28


@dataclass(frozen=True)
class Figure:
    name: str
    preset: str
    data: str  # under --data
    epochs: int
    overrides: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        data = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(self.data, "CIFAR-10")
        return f"{data}: {self.preset}, {self.epochs} epochs"


FIGURES = [
    # fp32: the CPUs without native bf16 (AVX-512 BF16 or AMX) run bf16 emulated, slower than fp32
    Figure("mnist", "fast-mnist", "mnist", 20, ("train.precision=fp32",)),
    Figure("fashion-mnist", "fast-mnist", "fashion-mnist", 20, ("data.dataset=fashion-mnist", "train.precision=fp32")),
    Figure("cifar10", "report-dcgan-cifar10", "cifar10-jpeg/cifar10-jpeg.tar.gz", 3),
    Figure("classes", "cgan-fashion-mnist", "fashion-mnist", 20),
]


def trained(figure: Figure, args: argparse.Namespace) -> gankit.Run:
    """The figure's run, trained (or resumed) to its epochs."""
    out = args.runs / figure.name
    length = [f"train.epochs={figure.epochs}", "output.progress=false"]
    if RunDir(out).exists():
        records = RunDir(out).read_metrics()
        if not records or records[-1]["epoch"] < figure.epochs:
            config = gankit.apply_overrides(RunDir(out).load_config(), length)
            gankit.train(config, out, resume=True)
    else:
        config = gankit.apply_overrides(gankit.load_preset(figure.preset), [*figure.overrides, *length])
        config.train.seed = args.seed
        gankit.train(config, out, data_dir=args.data / figure.data)
    return gankit.load_run(out)


def tile(images: torch.Tensor, columns: int) -> Image.Image:
    """uint8 images (N, C, H, W) as one RGB picture, `columns` to a row, each drawn SCALE times its size."""
    n, channels, height, width = images.shape
    rows = -(-n // columns)
    cell_h, cell_w = height * SCALE + PAD, width * SCALE + PAD
    canvas = Image.new("RGB", (columns * cell_w + PAD, rows * cell_h + PAD), "white")
    for i, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()
        picture = Image.fromarray(array[..., 0] if channels == 1 else array).convert("RGB")
        picture = picture.resize((width * SCALE, height * SCALE), Image.Resampling.NEAREST)
        canvas.paste(picture, (PAD + (i % columns) * cell_w, PAD + (i // columns) * cell_h))
    return canvas


def titled(picture: Image.Image, title: str, height: int) -> Image.Image:
    """`picture` under its title, on a white panel `height` tall (so panels of 28- and 32-pixel images line up)."""
    panel = Image.new("RGB", (picture.width, TITLE_HEIGHT + height), "white")
    ImageDraw.Draw(panel).text((PAD + 2, 8), title, fill="black")
    panel.paste(picture, (0, TITLE_HEIGHT))
    return panel


def side_by_side(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    strip = Image.new("RGB", (width, max(p.height for p in panels)), "white")
    x = 0
    for panel in panels:
        strip.paste(panel, (x, 0))
        x += panel.width + gap
    return strip


def class_rows(run: gankit.Run, per_class: int, seed: int) -> Image.Image:
    """One row per class, its name on the left."""
    grid = tile(run.sample_classes(per_class, seed=seed), per_class)
    names = run.classes
    label_width = 90
    picture = Image.new("RGB", (label_width + grid.width, grid.height), "white")
    picture.paste(grid, (label_width, 0))
    row_height = (grid.height - PAD) / len(names)
    draw = ImageDraw.Draw(picture)
    for row, name in enumerate(names):
        draw.text((4, PAD + row * row_height + row_height / 2 - 6), name, fill="black")
    return picture


def report_screenshot(run: gankit.Run, out: Path) -> None:
    """The top of the run's report page in headless Chromium (Debian's, through Playwright)."""
    from playwright.sync_api import sync_playwright

    page_file = run.report()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("docs_figures: report.png needs Chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(page_file.resolve().as_uri())
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out))
        browser.close()


def record(figure: Figure, run: gankit.Run, seed: int) -> dict[str, object]:
    last = run.metrics()[-1]
    return {
        "preset": figure.preset,
        "data": figure.data,
        "overrides": list(figure.overrides),
        "kimg": last["kimg"],
        "train_seconds": last["elapsed_seconds"],
        "epoch": last["epoch"],
        "train_seed": run.config.train.seed,
        "sample_seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="the folder holding mnist/, fashion-mnist/ and cifar10-jpeg/"
    )
    parser.add_argument("--runs", type=Path, required=True, help="where the runs are kept (outside the repository)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--seed", type=int, default=0, help="the runs' training seed; samples use seed 0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    runs = {figure.name: trained(figure, args) for figure in FIGURES}
    strip = [figure for figure in FIGURES if figure.name != "classes"]
    grids = [tile(runs[f.name].sample(36, seed=0), 6) for f in strip]
    height = max(g.height for g in grids)
    side_by_side([titled(g, f.title, height) for g, f in zip(grids, strip, strict=True)]).save(args.out / "samples.png")
    class_rows(runs["classes"], 8, seed=0).save(args.out / "classes.png")
    report_screenshot(runs["mnist"], args.out / "report.png")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    made = {
        "commit": commit,
        "command": "python bench/docs_figures.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
    }
    made["figures"] = {f.name: record(f, runs[f.name], 0) for f in FIGURES}
    (args.out / "figures.json").write_text(json.dumps(made, indent=2) + "\n")
    for name in ("samples.png", "classes.png", "report.png"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
