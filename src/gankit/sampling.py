"""The one way images come out of a generator: seeded, batched, through `G.sample`, as uint8."""

from __future__ import annotations

import numbers

import torch

from gankit.errors import GankitError, short
from gankit.models import Generator, to_uint8

BATCH = 256  # images generated per forward pass
MAX_OUTPUT_BYTES = 2 * 2**30  # uint8 images one call may return
SEEDS = 2**64  # torch.Generator's seeds lie in [0, 2^64)


def seeded(seed: int) -> torch.Generator:
    """The CPU generator noise seed `seed` draws from; a seed out of range is named, not left to torch's overflow."""
    if not 0 <= seed < SEEDS:
        raise GankitError(f"seed must be in [0, 2^64), got {seed}", option="seed")
    return torch.Generator().manual_seed(seed)


def check_output_size(G: Generator, count: int, what: str, limit: int = MAX_OUTPUT_BYTES) -> None:
    """Refuse, before allocating, a request whose uint8 images would pass `limit` bytes."""
    per_image = G.image_shape[0] * G.image_shape[1] * G.image_shape[2]
    if count * per_image > limit:
        size = f"{limit // 2**30} GiB" if limit >= 2**30 else f"{limit // 2**20} MiB"
        raise GankitError(
            f"{what} asks for {count:,} images of {per_image:,} bytes; at most "
            f"{limit // per_image:,} ({size}) in one call",
            option=what.split()[0],
        )


def sample_images(
    G: Generator,
    n: int | None = None,
    *,
    seed: int = 0,
    noise: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    label: int | None = None,
) -> torch.Tensor:
    """uint8 images (n, C, H, W) on the CPU: from `noise` if given, else from noise seeded with `seed`.

    A conditional G makes the classes `labels` names, or all of class `label`; without either they
    are drawn uniformly, seeded by `seed` after the noise. The same seed gives the same images on any device and at any batch size.
    """
    generator = seeded(seed)
    if noise is None:
        if n is None or n <= 0:
            raise GankitError(f"n must be positive, got {n}", option="n")
        check_output_size(G, n, f"n {n}")
        noise = G.sample_noise(n, generator=generator, device="cpu")
    if label is not None:
        labels = torch.full((noise.shape[0],), label)
    if labels is None:
        labels = G.sample_labels(noise.shape[0], generator=generator, device="cpu")
    G.check_labels(labels, noise.shape[0])
    device = next(G.parameters()).device
    images = torch.empty((noise.shape[0], *G.image_shape), dtype=torch.uint8)  # filled in place: no second copy
    for start in range(0, noise.shape[0], BATCH):
        z = noise[start : start + BATCH].to(device)
        y = labels[start : start + BATCH].to(device)
        images[start : start + z.shape[0]] = to_uint8(G.sample(z.shape[0], noise=z, labels=y), G.value_range).cpu()
    return images


def class_rows(G: Generator, per_class: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise and labels for a grid with one row per class, row k of class k, every row from the same
    `per_class` noise vectors (so a column keeps its style across classes); an unconditional G's one row is class 0."""
    noise = G.sample_noise(per_class, generator=seeded(seed), device="cpu")
    rows = max(G.num_classes, 1)
    return noise.repeat(rows, 1), torch.arange(rows).repeat_interleave(per_class)


def resolve_class(names: list[str], which: int | str) -> int:
    """A class given by index (an integer) or as text: its exact name, else its name in any case, else an index ("7")."""
    listed = ", ".join(name if name.split(" ")[0] == str(i) else f"{i} {name}" for i, name in enumerate(names))
    if isinstance(which, numbers.Integral):
        if 0 <= which < len(names):
            return int(which)
        raise GankitError(f"class {which} is not one of this run's classes: {listed}", option="class")
    if which in names:
        return names.index(which)
    wanted = str(which).strip().lower()
    for i, name in enumerate(names):  # torchvision names MNIST's classes "7 - seven": "seven" will do
        if wanted in (name.lower(), name.lower().split(" - ")[-1]):
            return i
    if wanted.isdecimal() and wanted.isascii() and int(wanted) < len(names):
        return int(wanted)
    raise GankitError(f"class {short(which, 40)} is not one of this run's classes: {listed}", option="class")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b at fractions t (shape (steps,)): (rows, steps, dim)."""
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1, 1))[:, None, None]  # (rows, 1, 1)
    t = t[None, :, None]
    sin = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin.clamp_min(1e-7)
    return torch.where(sin.abs() < 1e-6, linear, spherical)  # parallel ends: fall back to a straight line


WALK_MODES = ("slerp", "linear")


def interpolate(
    G: Generator, pairs: int, steps: int, *, mode: str = "slerp", seed: int = 0, label: int | None = None
) -> torch.Tensor:
    """Latent walks between `pairs` random pairs of noise vectors: uint8 (pairs, steps, C, H, W).

    A conditional G walks within one class per row: `label`, or a class drawn (seeded) for each row."""
    if pairs <= 0:
        raise GankitError(f"pairs must be positive, got {pairs}", option="pairs")
    if steps < 2:
        raise GankitError(f"steps must be at least 2 (the two ends), got {steps}", option="steps")
    check_output_size(G, pairs * steps, f"pairs {pairs} x steps {steps}")
    if mode not in WALK_MODES:
        raise GankitError(f"mode must be one of {', '.join(WALK_MODES)}, got {mode!r}", option="mode")
    gen = seeded(seed)
    a = G.sample_noise(pairs, generator=gen, device="cpu")
    b = G.sample_noise(pairs, generator=gen, device="cpu")
    t = torch.linspace(0, 1, steps)
    if mode == "linear":
        z = (1 - t)[None, :, None] * a[:, None] + t[None, :, None] * b[:, None]
    else:
        z = slerp(a, b, t)
    rows = torch.full((pairs,), label) if label is not None else G.sample_labels(pairs, generator=gen, device="cpu")
    images = sample_images(G, noise=z.reshape(-1, G.noise_dim), labels=rows.repeat_interleave(steps))
    return images.view(pairs, steps, *images.shape[1:])
