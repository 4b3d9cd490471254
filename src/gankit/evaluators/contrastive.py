"""An evaluator for data without classes: a small encoder trained on the real images by contrast (SimCLR).

Chen et al. 2020: two random views of each image (crop and resize, flip, colour jitter, grey) are
pulled together and pushed away from the batch's other images (the NT-Xent loss). The encoder's
features, not its projection head's, are what metrics compare. It works at 32x32, so it trains in
minutes on two CPU cores whatever the data's size, and it is cached by the images' content.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gankit.checkpoint import torch_save
from gankit.data.locate import cache_dir
from gankit.errors import GankitError
from gankit.evaluators.nets import Evaluator, resnet9
from gankit.files import atomic_write, ensure_parent
from gankit.resizing import resize_like_pil

log = logging.getLogger(__name__)

VERSION = 1  # bump when the recipe changes, so cached encoders are trained again
LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class ContrastiveRecipe:
    steps: int = 700  # updates, whatever the data's size: its time is the same for 1,000 images or 50,000
    batch: int = 128  # images per update, two views each
    max_lr: float = 3e-3  # peak of Adam's one-cycle schedule
    weight_decay: float = 1e-5
    temperature: float = 0.2  # of NT-Xent's softmax over cosine similarities
    crop_scale: float = 0.2  # random crops keep 20-100% of the image's area (SimCLR's 8% is too harsh at 32x32)
    jitter: float = 0.4  # brightness, contrast and saturation factors drawn from 1 ± jitter (with p = 0.8)
    grey: float = 0.2  # probability of a grey view
    width: int = 16  # the ResNet-9's first width: 128 features
    minutes: int = 5  # about how long training takes on two CPU cores (0.43 s a step there), said up front
    min_images: int = 500  # fewer make neither a useful encoder nor a meaningful FD


RECIPE = ContrastiveRecipe()


class ContrastiveNet(Evaluator):
    """The encoder: images resized to 32x32 (antialiased bicubic), a ResNet-9, 8w features; `head` projects them
    for the loss only."""

    size = 32

    def __init__(self, mean: float, std: float, channels: int, width: int):
        super().__init__(mean, std)
        self.channels = channels
        self.body = resnet9(channels, width)
        self.head = nn.Sequential(
            nn.Linear(8 * width, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Linear(256, 128)
        )

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.channels:
            raise ValueError(f"this evaluator reads {self.channels}-channel images, got {images.shape[1]}")
        return (resize_like_pil(images, self.size) - self.mean) / self.std

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Features of float images in [0, 1] already at 32x32 (the training views)."""
        return self.body((pixels - self.mean) / self.std)


def views(pixels: torch.Tensor, recipe: ContrastiveRecipe, gen: torch.Generator) -> torch.Tensor:
    """One random view of each image (floats in [0, 1]): a crop of 20-100% of the area at aspect 3/4-4/3, resized
    back and flipped half the time, then colour jitter and grey. Per-image parameters, one batched resampling."""
    n, c = pixels.shape[:2]
    area = recipe.crop_scale + (1 - recipe.crop_scale) * torch.rand(n, generator=gen)
    aspect = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * math.log(4 / 3))
    w = (area * aspect).sqrt().clamp(max=1)  # the crop's side as a fraction of the image's
    h = (area / aspect).sqrt().clamp(max=1)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = w * flip, h
    theta[:, 0, 2] = (1 - w) * (torch.rand(n, generator=gen) * 2 - 1)
    theta[:, 1, 2] = (1 - h) * (torch.rand(n, generator=gen) * 2 - 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    x = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def factor() -> torch.Tensor:
        return (1 + recipe.jitter * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)).to(x)

    jitter = (torch.rand(n, 1, 1, 1, generator=gen) < 0.8).to(x)
    x = x + jitter * (x * factor() - x)  # brightness
    mean = _grey(x).mean((2, 3), keepdim=True)
    x = x + jitter * ((x - mean) * factor() + mean - x)  # contrast
    if c == 3:
        grey = _grey(x)
        x = x + jitter * ((x - grey) * factor() + grey - x)  # saturation
        to_grey = (torch.rand(n, 1, 1, 1, generator=gen) < recipe.grey).to(x)
        x = x + to_grey * (_grey(x).expand_as(x) - x)
    return x.clamp(0, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x[:, :1])


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner among the other 2N - 1 views, by cosine similarity."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own partner
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, partner)


def check_enough(count: int) -> None:
    if count < RECIPE.min_images:
        raise GankitError(
            f"a contrastive evaluator needs at least {RECIPE.min_images} real images to learn from, got {count}"
        )


def train_contrastive(
    images: torch.Tensor, *, recipe: ContrastiveRecipe | None = None, progress: bool = True, seed: int = 0
) -> tuple[ContrastiveNet, dict[str, Any]]:
    """Train the encoder on uint8 images (N, C, H, W) by `recipe` (default: RECIPE); the record says on what and for
    how long."""
    recipe = recipe or RECIPE
    check_enough(len(images))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    # in chunks: a large folder's images at full size would not fit in memory as floats
    pixels = torch.cat([resize_like_pil(chunk, ContrastiveNet.size) for chunk in images.split(1000)])
    net = ContrastiveNet(pixels.mean().item(), pixels.std().item(), images.shape[1], recipe.width)
    net = net.to(memory_format=torch.channels_last)  # faster convolutions on the CPU
    optimiser = torch.optim.Adam(net.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.max_lr, total_steps=recipe.steps)
    batch = min(recipe.batch, len(images))
    start = last_log = time.perf_counter()
    net.train()
    bar = tqdm(
        range(recipe.steps),
        desc="contrastive evaluator",
        leave=False,
        disable=None if progress else True,
        file=sys.stderr,
    )
    losses = []
    for step in bar:
        chosen = pixels[torch.randperm(len(pixels), generator=gen)[:batch]]
        both = torch.cat([views(chosen, recipe, gen), views(chosen, recipe, gen)])
        z1, z2 = net.head(net.encode(both)).chunk(2)
        loss = nt_xent(z1, z2, recipe.temperature)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if bar.disable and time.perf_counter() - last_log >= LOG_EVERY_S:  # no bar (a log file): a line now and then
            last_log = time.perf_counter()
            log.info(
                "contrastive evaluator: step %d/%d, loss %.3f, %.0f s so far",
                step + 1,
                recipe.steps,
                losses[-1],
                last_log - start,
            )
    bar.close()
    seconds = time.perf_counter() - start
    last = sum(losses[-50:]) / len(losses[-50:])
    log.info("contrastive evaluator: %d steps in %.0f s, final loss %.3f", recipe.steps, seconds, last)
    info = {
        "kind": "contrastive",
        "train_images": len(images),
        "train_seconds": seconds,
        "final_loss": last,
        "first_loss": losses[0],
        "recipe": asdict(recipe),
    }
    return net.eval(), info


def load_contrastive(images: torch.Tensor, *, progress: bool = True) -> tuple[ContrastiveNet, dict[str, Any], str]:
    """The encoder for these training images, trained on first use and cached by their content; and its name."""
    digest = hashlib.sha256(f"contrastive v{VERSION}|{asdict(RECIPE)}|{tuple(images.shape)}|".encode())
    digest.update(images.contiguous().numpy().data)  # the buffer itself: no copy of a large folder
    key = digest.hexdigest()[:16]
    name = f"contrastive-{key[:8]}"
    path = cache_dir() / "evaluators" / f"contrastive-{key}.pt"
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = ContrastiveNet(state["mean"], state["std"], images.shape[1], RECIPE.width)
            net.load_state_dict(state["weights"])
            return net.eval(), state["info"], name
        except Exception as exc:  # noqa: BLE001 - a damaged file fails inside torch's readers in many ways
            log.warning(
                "the cached contrastive evaluator %s is damaged (%s): training it again", path, type(exc).__name__
            )
    check_enough(len(images))  # before saying what it would train
    log.info(
        "no classifier for this data: training a contrastive evaluator (SimCLR) on its %d images once, %d steps: "
        "about %d minutes on 2 CPU cores (cached afterwards at %s)",
        len(images),
        RECIPE.steps,
        RECIPE.minutes,
        path,
    )
    net, info = train_contrastive(images, progress=progress)
    ensure_parent(path)
    state = {"weights": net.state_dict(), "mean": float(net.mean), "std": float(net.std), "info": info}
    atomic_write(path, lambda tmp: torch_save(state, tmp))
    return net, info, name
