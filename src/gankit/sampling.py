"""The one way images come out of a generator: seeded, batched, through `G.sample`, as uint8."""

from __future__ import annotations

import torch

from gankit.errors import GankitError
from gankit.models import Generator, to_uint8

BATCH = 256  # images generated per forward pass
MAX_OUTPUT_BYTES = 2 * 2**30  # uint8 images one call may return


def check_output_size(G: Generator, count: int, what: str) -> None:
    """Refuse, before allocating, a request whose uint8 images would pass MAX_OUTPUT_BYTES."""
    per_image = G.image_shape[0] * G.image_shape[1] * G.image_shape[2]
    if count * per_image > MAX_OUTPUT_BYTES:
        raise GankitError(f"{what} asks for {count:,} images of {per_image:,} bytes; at most "
                          f"{MAX_OUTPUT_BYTES // per_image:,} ({MAX_OUTPUT_BYTES // 2**30} GiB) in one call", option=what.split()[0])


def sample_images(G: Generator, n: int | None = None, *, seed: int = 0, noise: torch.Tensor | None = None,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 images (n, C, H, W) on the CPU: from `noise` if given, else from noise seeded with `seed`.

    The same seed gives the same images on any device and at any batch size.
    """
    if noise is None:
        if n is None or n <= 0:
            raise GankitError(f"n must be positive, got {n}", option="n")
        check_output_size(G, n, f"n {n}")
        noise = G.sample_noise(n, generator=torch.Generator().manual_seed(seed), device="cpu")
    device = next(G.parameters()).device
    parts = []
    for start in range(0, noise.shape[0], BATCH):
        z = noise[start:start + BATCH].to(device)
        y = labels[start:start + BATCH].to(device) if labels is not None else None
        parts.append(to_uint8(G.sample(z.shape[0], noise=z, labels=y), G.value_range).cpu())
    return torch.cat(parts)


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


def interpolate(G: Generator, pairs: int, steps: int, *, mode: str = "slerp", seed: int = 0) -> torch.Tensor:
    """Latent walks between `pairs` random pairs of noise vectors: uint8 (pairs, steps, C, H, W)."""
    if pairs <= 0:
        raise GankitError(f"pairs must be positive, got {pairs}", option="pairs")
    if steps < 2:
        raise GankitError(f"steps must be at least 2 (the two ends), got {steps}", option="steps")
    check_output_size(G, pairs * steps, f"pairs {pairs} x steps {steps}")
    if mode not in WALK_MODES:
        raise GankitError(f"mode must be one of {', '.join(WALK_MODES)}, got {mode!r}", option="mode")
    gen = torch.Generator().manual_seed(seed)
    a = G.sample_noise(pairs, generator=gen, device="cpu")
    b = G.sample_noise(pairs, generator=gen, device="cpu")
    t = torch.linspace(0, 1, steps)
    if mode == "linear":
        z = (1 - t)[None, :, None] * a[:, None] + t[None, :, None] * b[:, None]
    else:
        z = slerp(a, b, t)
    images = sample_images(G, noise=z.reshape(-1, G.noise_dim))
    return images.view(pairs, steps, *images.shape[1:])
