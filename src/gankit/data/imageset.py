"""A data set as one uint8 tensor (in memory, or mapped from a file), so a training step indexes it without a loader."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor | None  # (N,) int64 class indices, None for unlabelled folders
    classes: list[str]  # class names, index = label
    source: str  # where the images came from, for logs and errors
    mapped: bool = False  # the images are a file mapped into memory, read from disk as they are used

    def __len__(self) -> int:
        return self.images.shape[0]

    def head(self, n: int) -> "ImageSet":
        labels = self.labels[:n] if self.labels is not None else None
        return ImageSet(self.images[:n], labels, self.classes, self.source, self.mapped)
