"""The fixed-noise grid across epochs as a moving picture: a GIF, and an MP4 where ffmpeg exists."""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from gankit.files import atomic_write

log = logging.getLogger(__name__)

FRAME_MS = 400  # each epoch's grid shows this long; the last one three times as long
MAX_GRID_PIXELS = 4096 * 4096  # gankit's largest grid is far smaller; a larger "grid" would take gigabytes to show


GRID_NAME = re.compile(r"^epoch-(\d{4,})(?:-step-(\d{4,}))?$")  # rundir.place_stem


def grid_frames(grids: Path) -> list[tuple[str, Path]]:
    """(where, path) of every readable saved grid in the run's order, `where` its epoch ("3") or its epoch and step
    part-way through it ("3, step 120"); a damaged one is named and left out."""
    found = []
    for path in grids.glob("epoch-*.png"):
        name = GRID_NAME.match(path.stem)
        if name is None:
            continue
        try:
            with Image.open(path) as image:
                if image.width * image.height > MAX_GRID_PIXELS:
                    log.warning(
                        "%s is %dx%d pixels, larger than any grid gankit writes: left out of the report and "
                        "the animation",
                        path,
                        image.width,
                        image.height,
                    )
                    continue
                image.load()  # decoded whole: verify() alone passes a PNG whose compressed data is corrupt
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            log.warning("%s is damaged or not a PNG: left out of the report and the animation", path)
            continue
        epoch, step = int(name.group(1)), name.group(2)
        where = f"{epoch}, step {int(step)}" if step else str(epoch)
        found.append(((epoch, int(step) if step else math.inf), where, path))
    return [(where, path) for _, where, path in sorted(found)]


def labelled_frames(frames: list[tuple[str, Path]]) -> list[Image.Image]:
    """Each grid with a strip above it saying its epoch."""
    images = []
    for epoch, path in frames:
        with Image.open(path) as grid:
            grid = grid.convert("RGB")
        frame = Image.new("RGB", (grid.width, grid.height + 16), "white")
        frame.paste(grid, (0, 16))
        ImageDraw.Draw(frame).text((4, 2), f"epoch {epoch}", fill="black")
        images.append(frame)
    return images


def write_animation(grids: Path, gif_path: Path, *, mp4: bool = True) -> list[Path]:
    """Write the GIF (and the MP4 when ffmpeg is installed); returns the files written."""
    frames = labelled_frames(grid_frames(grids))
    if not frames:
        return []
    durations = [FRAME_MS] * (len(frames) - 1) + [3 * FRAME_MS]
    atomic_write(
        gif_path,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
        ),
    )
    written = [gif_path]
    if mp4 and shutil.which("ffmpeg"):
        mp4_path = gif_path.with_suffix(".mp4")
        if _write_mp4(frames, mp4_path):
            written.append(mp4_path)
    return written


def _write_mp4(frames: list[Image.Image], path: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        for i, frame in enumerate(frames):
            frame.save(Path(tmp) / f"{i:05d}.png")

        def encode(out: Path) -> None:
            # H.264 needs even sides; yuv420p plays everywhere
            subprocess.run(
                [
                    "ffmpeg",
                    "-loglevel",
                    "error",
                    "-y",
                    "-framerate",
                    str(1000 / FRAME_MS),
                    "-i",
                    str(Path(tmp) / "%05d.png"),
                    "-vf",
                    "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
                    "-pix_fmt",
                    "yuv420p",
                    "-f",
                    "mp4",
                    str(out),
                ],
                check=True,
                capture_output=True,
            )

        try:
            atomic_write(path, encode)
        except subprocess.CalledProcessError as exc:
            log.warning("ffmpeg could not write %s: %s", path, exc.stderr.decode(errors="replace").strip()[:200])
            return False
    return True
