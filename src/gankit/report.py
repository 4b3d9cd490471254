"""One self-contained HTML page per run: everything embedded, nothing fetched, opens from disk."""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gankit.animation import grid_frames, write_animation
from gankit.checkpoint import list_checkpoints
from gankit.collapse import (
    ALIKE_ADVICE,
    ALIKE_EPOCHS,
    ALIKE_SPREAD,
    COLLAPSE_ACCURACY,
    COLLAPSE_ADVICE,
    STILL_WON_ACCURACY,
    collapse_stretches,
)
from gankit.files import atomic_write_text
from gankit.metrics import quality_keys
from gankit.plots import grid_image, history_svg
from gankit.quality import quality_svg
from gankit.records import is_number, step_stat_names

if TYPE_CHECKING:
    from gankit.run import Run  # a run's page is written from the run: run.py imports this module

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 small { color: #777; font-weight: normal; font-size: 0.55em; }
table { border-collapse: collapse; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
.banner { background: #fde2e1; border: 2px solid #c0392b; padding: 0.8em 1em; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.strip { display: flex; flex-wrap: wrap; gap: 6px; } .strip figure { margin: 0; text-align: center; font-size: 0.8em; }
.strip img { width: 120px; image-rendering: pixelated; cursor: pointer; }
.big { image-rendering: pixelated; width: 480px; max-width: 100%; }
img.row { image-rendering: pixelated; height: 48px; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
svg { max-width: 100%; height: auto; }
"""

SLIDER_SCRIPT = """
const frames = JSON.parse(document.getElementById('frames').textContent);
const view = document.getElementById('grid-view'), label = document.getElementById('epoch-label');
const slider = document.getElementById('epoch-slider');
function show(i) { view.src = frames[i].src; label.textContent = 'epoch ' + frames[i].epoch; slider.value = i; }
slider.addEventListener('input', () => show(+slider.value));
document.querySelectorAll('.strip img').forEach((img, i) => img.addEventListener('click', () => show(i)));
"""


def write_report(run: Run, out: Path | None = None, *, raw: bool = False) -> Path:
    """Write RUN/report.html (and RUN/progress.gif, .mp4) from the run folder alone; returns the page's path.
    Its new samples come from G's own weights with `raw`, else from their moving average where the run keeps one."""
    config = run.config
    records = run.metrics()
    frames = grid_frames(run.folder.grids)
    animation = write_animation(run.folder.grids, run.path / "progress.gif") if frames else []
    sections = [
        f"<h1>{_e(config.name)} <small>{_e(str(run.path))}</small></h1>",
        f"<p>{_e(config.description)}</p>",
        _collapse_banner(records, config.train.collapse_epochs),
        _alike_banner(records, ALIKE_EPOCHS if config.train.collapse_epochs else 0),
        _summary(records, config.train.epochs),
        _progress(frames, animation[0] if animation else None),
        _curves(records),
        _quality(records),
        _final_samples(run, raw),
        _per_class(run, raw),
        f"<section id='config'><h2>Config</h2><pre>{_e(yaml.safe_dump(config.to_dict(), sort_keys=False))}</pre></section>",
    ]
    page = (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>gankit run: {_e(config.name)}</title>"
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(s for s in sections if s) + "\n</body></html>\n"
    )
    out = out or run.path / "report.html"
    atomic_write_text(out, page, durable=False)
    return out


def _collapse_banner(records: list[dict[str, Any]], min_epochs: int) -> str:
    """A warning across the top for every stretch of at least `min_epochs` epochs in which D won outright."""
    return _stretch_banner(
        "collapse",
        records,
        collapse_stretches(records, min_epochs),
        "D won outright in {spans} (D accuracy at least "
        f"{COLLAPSE_ACCURACY} on real and generated images, then at least {STILL_WON_ACCURACY}, G's loss high): G "
        "learned next to nothing there and its samples are likely all alike.",
        COLLAPSE_ADVICE,
    )


def _alike_banner(records: list[dict[str, Any]], min_epochs: int) -> str:
    """A warning across the top for every stretch of at least `min_epochs` epochs whose samples were nearly all alike."""
    return _stretch_banner(
        "alike",
        records,
        collapse_stretches(records, min_epochs, mark="samples_alike"),
        "G's samples were nearly all alike in {spans} (their spread in a fixed network's features under "
        f"{ALIKE_SPREAD:.0%} of the real images'): the run collapsed to a few images there.",
        ALIKE_ADVICE,
    )


def _stretch_banner(
    section: str, records: list[dict[str, Any]], stretches: list[tuple[int, int]], what: str, advice: str
) -> str:
    """A red banner saying `what` of the `stretches` of epochs (its {spans}), whether the last epoch is still one of
    them, and what to try."""
    if not stretches:
        return ""
    spans = ", ".join(f"epochs {a} to {b}" for a, b in stretches)
    ongoing = records and stretches[-1][1] == records[-1]["epoch"]
    return (
        f"<section id='{section}' class='banner'>{what.format(spans=spans)}"
        f"{' It had not recovered by the last epoch.' if ongoing else ''} {_e(advice)}</section>"
    )


def _summary(records: list[dict[str, Any]], epochs: int) -> str:
    if not records:
        return "<section id='summary'><h2>Summary</h2><p>No epoch has finished yet.</p></section>"
    last = records[-1]
    rows = [
        ("epochs finished", f"{last['epoch']} of {epochs}"),
        ("training time", _duration(last["elapsed_seconds"])),
        ("images/s (median over epochs)", f"{statistics.median(r['images_per_s'] for r in records):,.0f}"),
    ]
    rows += [(f"{name} (last epoch)", f"{last[name]:.4g}") for name in step_stat_names(records[-1:])]
    if "peak_gpu_mib" in last:
        rows.append(("peak GPU memory", f"{max(r.get('peak_gpu_mib', 0) for r in records):,.0f} MiB"))
    quality = quality_keys()
    latest: dict[str, str] = {}
    for record in records:  # the newest figure of each quality metric wins
        for key, value in record.items():
            if key in quality and is_number(value):
                latest[key] = f"{value:.4g} (epoch {record['epoch']})"
    rows += sorted(latest.items())
    body = "".join(f"<tr><th>{_e(k)}</th><td class='num'>{_e(v)}</td></tr>" for k, v in rows)
    return f"<section id='summary'><h2>Summary</h2><table>{body}</table></section>"


def _progress(frames: list[tuple[str, Path]], gif: Path | None) -> str:
    if not frames:
        return ""
    sources = [{"epoch": epoch, "src": _data_uri(path.read_bytes(), "image/png")} for epoch, path in frames]
    strip = "".join(
        f"<figure><img src='{f['src']}' alt='epoch {f['epoch']}'><figcaption>epoch {f['epoch']}</figcaption></figure>"
        for f in sources
    )
    last = len(sources) - 1
    animation = (
        f"<h3>Animation</h3><img id='animation' class='big' src='{_data_uri(gif.read_bytes(), 'image/gif')}' alt='grids across epochs'>"
        if gif
        else ""
    )
    frames_json = json.dumps(sources).replace("</", "<\\/")  # JSON inside <script> must not close it
    return (
        "<section id='progress'><h2>Samples across epochs (fixed noise)</h2>"
        f"<p><input type='range' id='epoch-slider' min='0' max='{last}' value='{last}'> <span id='epoch-label'>epoch {sources[last]['epoch']}</span></p>"
        f"<img id='grid-view' class='big' src='{sources[last]['src']}' alt='selected epoch'>"
        f"<div class='strip'>{strip}</div>{animation}"
        f"<script type='application/json' id='frames'>{frames_json}</script><script>{SLIDER_SCRIPT}</script></section>"
    )


def _curves(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    return f"<section id='curves'><h2>Training curves</h2>{history_svg(records)}</section>"


def _quality(records: list[dict[str, Any]]) -> str:
    svg = quality_svg(records)
    if not svg:
        return ""
    return (
        "<section id='quality'><h2>Quality per compute</h2><p>FID at each scoring, against the images the run had "
        f"seen and its minutes of training.</p>{svg}</section>"
    )


def _final_samples(run: Run, raw: bool) -> str:
    if not list_checkpoints(run.folder.checkpoints):
        return ""
    checkpoint = run.checkpoint()
    buffer = io.BytesIO()
    grid_image(run.sample(64, seed=0, checkpoint=checkpoint, raw=raw)).save(buffer, format="PNG")
    return (
        f"<section id='final'><h2>Final samples</h2><p>64 new samples (seed 0) from {_e(checkpoint.name)}"
        f"{_weights(run, raw)}.</p>"
        f"<img id='final-samples' class='big' src='{_data_uri(buffer.getvalue(), 'image/png')}' alt='final samples'></section>"
    )


def _weights(run: Run, raw: bool) -> str:
    """Which of G's weights made the new samples, where the run keeps two."""
    if not run.config.keeps_ema:
        return ""
    return ", G's own weights" if raw else ", the moving average of G's weights"


PER_CLASS_FIGURES = (
    ("class_accuracy_per_class", "class accuracy", "{:.1%}"),
    ("intra_fid_per_class", "intra-class FID", "{:.2f}"),
)


def _per_class(run: Run, raw: bool) -> str:
    """A conditional run's samples, one row per class, beside each class's figures from its newest scoring."""
    if not run.classes or not list_checkpoints(run.folder.checkpoints):
        return ""
    checkpoint = run.checkpoint()
    per_row = 8
    images = run.sample_classes(per_row, seed=0, checkpoint=checkpoint, raw=raw)
    scored, source = _per_class_figures(run, len(run.classes))
    columns = [(label, fmt, scored[key]) for key, label, fmt in PER_CLASS_FIGURES if key in scored]
    head = "".join(f"<th>{_e(label)}</th>" for label, _, _ in columns)
    rows = []
    for k, name in enumerate(run.classes):
        buffer = io.BytesIO()
        grid_image(images[k * per_row : (k + 1) * per_row], per_row).save(buffer, format="PNG")
        cells = "".join(
            f"<td class='num'>{fmt.format(values[k]) if values[k] is not None else '-'}</td>"
            for _, fmt, values in columns
        )
        rows.append(
            f"<tr><th>{k} {_e(name)}</th><td><img class='row' src='{_data_uri(buffer.getvalue(), 'image/png')}' "
            f"alt='class {_e(name)}'></td>{cells}</tr>"
        )
    note = f" Figures from {_e(source)}." if source else " No scoring yet: run gankit eval for the per-class figures."
    return (
        f"<section id='per-class'><h2>Per class</h2><p>{per_row} samples of each class (seed 0, the same noise in every "
        f"row) from {_e(checkpoint.name)}{_weights(run, raw)}.{note}</p><table><tr><th>class</th><th>samples</th>{head}</tr>"
        f"{''.join(rows)}</table></section>"
    )


def _per_class_figures(run: Run, classes: int) -> tuple[dict[str, list], str]:
    """The per-class lists of the newest scoring in RUN/eval/ that has them (unreadable files are passed over)."""
    found = (
        sorted(run.folder.evals.glob("*.json"), key=lambda p: p.stat().st_mtime) if run.folder.evals.is_dir() else []
    )
    for path in reversed(found):
        try:
            metrics = json.loads(path.read_text()).get("metrics", {})
        except (OSError, ValueError, AttributeError):
            continue
        figures = {
            key: metrics[key]
            for key, _, _ in PER_CLASS_FIGURES
            if isinstance(metrics, dict)
            and isinstance(metrics.get(key), list)
            and len(metrics[key]) == classes
            and all(v is None or is_number(v) for v in metrics[key])
        }
        if figures:
            return figures, path.name
    return {}, ""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
