"""Resizing images for a feature network as PIL does: clean-fid (Parmar et al. 2022) showed that FID moves with the
resizing filter, and that PIL's bicubic is the one to use. torch's bicubic with antialiasing uses PIL's kernel
(a = -0.5, widened when shrinking), so batches stay on torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_like_pil(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) as floats in [0, 1] at size x size (unchanged where they are that size)."""
    pixels = images.float() / 255
    if images.shape[-2:] != (size, size):
        pixels = F.interpolate(pixels, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return pixels.clamp(0, 1)
