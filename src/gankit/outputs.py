"""Writing generated images: a grid, a folder of files, a NumPy array, or an animated walk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from gankit.errors import GankitError
from gankit.files import atomic_write, check_new, ensure_parent, temporary_beside
from gankit.plots import grid_image, save_grid

WALK_FRAME_MS = 120
MAX_GRID_IMAGES = 16384  # one PNG grid (128 x 128 images); more are written as files or .npy


def check_sample_format(n: int, fmt: str) -> None:
    """Refuse, before any image is made, a grid too large to be one picture (its RGB canvas would take gigabytes)."""
    if fmt == "grid" and n > MAX_GRID_IMAGES:
        raise GankitError(
            f"a grid holds at most {MAX_GRID_IMAGES:,} images, and n is {n:,}: write them with format files or npy",
            option=("n", "format"),
        )


def write_samples(images: torch.Tensor, out: Path, fmt: str, *, force: bool = False, nrow: int | None = None) -> Path:
    """uint8 images (N, C, H, W) as a PNG grid (`nrow` per row, default square-ish), a folder of PNGs
    (000000.png, ...) or a .npy (N, H, W, C); an existing file is replaced only with `force` (an
    existing folder never)."""
    if fmt != "files":
        check_new(out, force)
    ensure_parent(out)
    if fmt == "grid":
        save_grid(images, out, nrow)
    elif fmt == "npy":
        array = images.permute(0, 2, 3, 1).numpy()  # (N, C, H, W) -> (N, H, W, C), the layout image tools expect
        atomic_write(out, lambda tmp: _save_npy(tmp, array))
    else:
        _write_folder(images, out)
    return out


def write_walks(walks: torch.Tensor, out: Path, fmt: str, *, force: bool = False) -> Path:
    """uint8 walks (pairs, steps, C, H, W): a grid with one walk per row, or a GIF moving along all walks."""
    check_new(out, force)
    ensure_parent(out)
    pairs, steps = walks.shape[:2]
    if fmt == "grid":
        grid = make_grid(walks.reshape(pairs * steps, *walks.shape[2:]), nrow=steps, padding=2, pad_value=255)
        image = Image.fromarray(grid.permute(1, 2, 0).numpy())
        atomic_write(out, lambda tmp: image.save(tmp, format="PNG"))
    else:
        frames = [grid_image(walks[:, t]) for t in range(steps)]
        frames += frames[-2:0:-1]  # and back again, so the loop has no jump
        atomic_write(
            out,
            lambda tmp: frames[0].save(
                tmp, format="GIF", save_all=True, append_images=frames[1:], duration=WALK_FRAME_MS, loop=0
            ),
        )
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def _write_folder(images: torch.Tensor, out: Path) -> None:
    """Fill a new folder completely before it appears under its name; an existing one is never touched."""
    if out.exists():
        raise GankitError(f"{out} already exists; choose a folder that does not exist yet")
    tmp = temporary_beside(out, folder=True)
    try:
        for i, image in enumerate(images):
            array = image.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(tmp / f"{i:06d}.png")
        os.rename(tmp, out)
    except OSError as exc:
        raise GankitError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
