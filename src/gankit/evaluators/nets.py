"""Classifiers used as feature extractors: small CNNs trained by gankit on each data set's real images.

Each takes uint8 images (N, C, H, W), returns class logits from `forward` and the penultimate
layer's activations from `features`, so metrics compare real and generated images in a space that
knows the data set's classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Evaluator(nn.Module):
    """Shared input handling: uint8 -> normalised float at the net's size (centre crop or zero pad)."""

    size: int
    channels: int
    mean: torch.Tensor  # buffers: the training images' mean and standard deviation
    std: torch.Tensor
    body: nn.Module  # images -> features
    head: nn.Module  # features -> class logits

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.channels:
            raise ValueError(f"this evaluator reads {self.channels}-channel images, got {images.shape[1]}")
        h = images.shape[-1]
        if h > self.size:  # e.g. MNIST padded to 32 for the DCGAN: crop the padding away
            start = (h - self.size) // 2
            images = images[..., start : start + self.size, start : start + self.size]
        elif h < self.size:
            pad = (self.size - h) // 2
            images = F.pad(images, (pad, self.size - h - pad, pad, self.size - h - pad))
        return (images.float() / 255 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))


class GreyNet(Evaluator):
    """28x28 grey: three conv blocks (32, 64, 128) with pooling, then 128 features and 10 logits."""

    size, channels = 28, 1

    def __init__(self, mean: float, std: float, classes: int = 10):
        super().__init__(mean, std)
        self.body = nn.Sequential(
            *_conv(1, 32),
            nn.MaxPool2d(2),  # 14x14
            *_conv(32, 64),
            nn.MaxPool2d(2),  # 7x7
            *_conv(64, 128),
            nn.MaxPool2d(2),  # 3x3
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(128 * 9, 128),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, classes))


class ColourNet(Evaluator):
    """32x32 RGB: a narrow ResNet-9 (widths w, 2w, 4w, 8w); 8w features and 10 logits."""

    size, channels = 32, 3

    def __init__(self, mean: float, std: float, classes: int = 10, width: int = 16):
        super().__init__(mean, std)
        self.body = resnet9(3, width)
        self.head = nn.Linear(8 * width, classes)


def resnet9(channels: int, width: int) -> nn.Sequential:
    """A narrow ResNet-9 for 32x32 images: widths w, 2w, 4w, 8w, max-pooled to 8w features."""
    w = width
    return nn.Sequential(
        *_conv(channels, w),
        *_conv(w, 2 * w),
        nn.MaxPool2d(2),  # 16x16
        _Residual(2 * w),
        *_conv(2 * w, 4 * w),
        nn.MaxPool2d(2),  # 8x8
        *_conv(4 * w, 8 * w),
        nn.MaxPool2d(2),  # 4x4
        _Residual(8 * w),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels), *_conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PerChannel(Evaluator):
    """A grey evaluator read on each of three stacked channels (Stacked MNIST): the channels' features side by side,
    and the stack's class, 100·first + 10·second + third, with the product of the channels' probabilities."""

    channels = 3

    def __init__(self, grey: Evaluator):
        nn.Module.__init__(self)
        self.grey, self.size = grey, grey.size
        self.head = _StackHead(grey.head)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != 3:
            raise ValueError(f"this evaluator reads 3-channel stacks, got {images.shape[1]} channels")
        return torch.cat([self.grey.features(images[:, c : c + 1]) for c in range(3)], 1)


class _StackHead(nn.Module):
    def __init__(self, grey_head: nn.Module):
        super().__init__()
        self.grey_head = grey_head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        first, second, third = (self.grey_head(f).log_softmax(1) for f in features.chunk(3, dim=1))
        k = first.shape[1]
        joint = first[:, :, None, None] + second[:, None, :, None] + third[:, None, None, :]  # log p of each triple
        return joint.reshape(-1, k**3)
