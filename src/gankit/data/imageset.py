"""A data set as one uint8 tensor (in memory, or mapped from a file), so a training step indexes it without a loader."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64 class indices; all 0 for an unlabelled folder (no classes)
    classes: list[str]  # class names, index = label; empty for an unlabelled folder
    source: str  # where the images came from, for logs and errors
    mapped: bool = False  # the images are a file mapped into memory, read from disk as they are used

    def __len__(self) -> int:
        return self.images.shape[0]

    def fingerprint(self) -> str:
        """A short hash of the set's shape and labels: another data set, split or limit has another one. Pixels are
        left out, so the same images decoded by another Pillow (JPEG decoders differ by a grey level) still match."""
        digest = hashlib.sha256(f"{tuple(self.images.shape)}".encode())
        if self.classes:  # an unlabelled set is its shape alone, as before it carried labels
            digest.update(self.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def head(self, n: int) -> ImageSet:
        return ImageSet(self.images[:n], self.labels[:n], self.classes, self.source, self.mapped)


def unlabelled(images: torch.Tensor) -> torch.Tensor:
    """The labels of images without classes: all 0, one per image, where the images are."""
    return torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
