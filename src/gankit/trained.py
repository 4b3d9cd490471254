"""Using a trained generator: load it from a run folder, sample, interpolate in latent space."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.config import Config
from gankit.errors import GankitError
from gankit.models import Generator, build_models, to_uint8
from gankit.rundir import RunDir

BATCH = 256  # images generated per forward pass


def load_generator(run_dir: Path, checkpoint: Path | None = None) -> tuple[Generator, Config, Path]:
    """G of the run's newest (or the given) checkpoint, in eval mode on the CPU."""
    config = RunDir(run_dir).load_config()
    if checkpoint is None:
        found = list_checkpoints(RunDir(run_dir).checkpoints)
        if not found:
            raise GankitError(f"{run_dir} has no checkpoint yet (train it for an epoch first)")
        checkpoint = found[-1]
    state = load_checkpoint(checkpoint)
    saved = state.get("config", {}).get("model") if isinstance(state.get("config"), dict) else None
    if saved != config.to_dict()["model"]:
        raise GankitError(f"checkpoint {checkpoint} holds a different model than the run {run_dir}")
    G, _ = build_models(config)
    try:
        G.load_state_dict(state["generator"])
    except (KeyError, RuntimeError) as exc:
        raise GankitError(f"checkpoint {checkpoint} does not fit the run's generator: {str(exc).splitlines()[0][:200]}") from None
    return G.eval(), config, checkpoint


@torch.no_grad()
def sample_images(G: Generator, n: int, *, seed: int) -> torch.Tensor:
    """n images as uint8 (n, C, H, W); the same seed gives the same images."""
    if n <= 0:
        raise GankitError(f"--n must be positive, got {n}")
    noise = G.sample_noise(n, generator=torch.Generator().manual_seed(seed), device="cpu")
    device = next(G.parameters()).device
    return torch.cat([to_uint8(G(z.to(device)), G.value_range).cpu() for z in noise.split(BATCH)])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b at fractions t (shape (steps,)): (rows, steps, dim)."""
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1, 1))[:, None, None]  # (rows, 1, 1)
    t = t[None, :, None]
    sin = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin.clamp_min(1e-7)
    return torch.where(sin.abs() < 1e-6, linear, spherical)  # parallel ends: fall back to a straight line


@torch.no_grad()
def interpolate(G: Generator, pairs: int, steps: int, *, mode: str = "slerp", seed: int = 0) -> torch.Tensor:
    """Latent walks between `pairs` random pairs of noise vectors: uint8 (pairs, steps, C, H, W)."""
    if pairs <= 0 or steps < 2:
        raise GankitError(f"interpolation needs --pairs >= 1 and --steps >= 2, got {pairs} and {steps}")
    gen = torch.Generator().manual_seed(seed)
    a = G.sample_noise(pairs, generator=gen, device="cpu")
    b = G.sample_noise(pairs, generator=gen, device="cpu")
    t = torch.linspace(0, 1, steps)
    if mode == "linear":
        z = (1 - t)[None, :, None] * a[:, None] + t[None, :, None] * b[:, None]
    elif mode == "slerp":
        z = slerp(a, b, t)
    else:
        raise GankitError(f"--mode must be linear or slerp, got {mode!r}")
    images = torch.cat([to_uint8(G(chunk), G.value_range) for chunk in z.reshape(-1, G.noise_dim).split(BATCH)])
    return images.view(pairs, steps, *images.shape[1:])
