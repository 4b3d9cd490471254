"""The minibatch standard deviation feature (Karras et al. 2018, "Progressive growing of GANs", section 3): D sees how
varied the images of its batch are, so a generator whose samples are all alike gives itself away."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """Appends one channel to D's feature maps (N, C, H, W): over groups of `group` images of the batch (image i in
    group i mod N/group, as StyleGAN2 groups them), each feature's standard deviation across the group, averaged over
    features and positions to one number per group and given to every image of it. A batch that `group` does not
    divide uses the largest group size below it that does."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group, n)
        while n % group:
            group -= 1
        y = x.float().view(group, -1, c, h, w)  # (group, N / group, C, H, W)
        spread = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (N / group,)
        channel = spread.view(-1, 1, 1, 1).repeat(group, 1, h, w).to(x.dtype)  # (N, 1, H, W)
        return torch.cat([x, channel], dim=1)
