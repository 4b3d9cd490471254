"""Class conditioning, shared by the models: how a label enters G and D.

    concat      the classic cGAN (Mirza & Osindero 2014): a learned label embedding joined to G's
                noise and to D's flattened input
    projection  D(x, y) = ψ(φ(x)) + ⟨e(y), φ(x)⟩ on D's features φ (Miyato & Koyama 2018); the
                convolutional G normalises with class-conditional batch norm
    acgan       D's unconditional logit plus a classifier head whose cross-entropy both nets add to
                their losses (Odena et al. 2017)

A conditional D returns its logits (N,); an ACGAN D returns (logits, class logits (N, K)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.terms import Seen, Term

CONDITIONING = ("none", "concat", "projection", "acgan")


def class_terms(conditioning: str) -> list[Term]:
    """The terms a conditioning adds to the nets' losses: ACGAN's class cross-entropy, D's on real and generated
    images, G's on its own (D must name the class G was asked for)."""
    if conditioning != "acgan":
        return []
    return [Term("d_class_loss", "D", _d_class_loss), Term("g_class_loss", "G", _g_class_loss)]


def _d_class_loss(seen: Seen) -> torch.Tensor:
    return _class_loss(seen, "real") + _class_loss(seen, "fake")


def _g_class_loss(seen: Seen) -> torch.Tensor:
    return _class_loss(seen, "fake")


def _class_loss(seen: Seen, side: str) -> torch.Tensor:
    """The cross-entropy of D's class logits on one side's images against their labels."""
    logits, labels = seen.outputs(side)[1], seen.real_labels if side == "real" else seen.fake_labels
    if logits is None or labels is None:
        raise ValueError("ACGAN's class loss needs D's class logits and the images' labels")
    return F.cross_entropy(logits, labels)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are looked up by class (de Vries et al. 2017), for 1-d or 2-d features."""

    def __init__(self, features: int, classes: int, dims: int = 2):
        super().__init__()
        self.norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(features, affine=False)
        self.scale = nn.Embedding(classes, features)
        self.shift = nn.Embedding(classes, features)
        nn.init.normal_(self.scale.weight, 1.0, 0.02)  # the DCGAN rule for batch-norm scales, per class
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (-1, x.shape[1]) + (1,) * (x.dim() - 2)  # (N, F) -> (N, F, 1, 1) for images
        return self.norm(x) * self.scale(y).view(shape) + self.shift(y).view(shape)


def run_layer(layer: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """One layer, given the labels too where it is conditional."""
    return layer(x, y) if isinstance(layer, ConditionalBatchNorm) else layer(x)


def run_layers(layers: nn.Sequential, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """A Sequential whose conditional layers also take the labels."""
    for layer in layers:
        x = run_layer(layer, x, y)
    return x


class OutputHead(nn.Module):
    """A conditional D's last layer on its features φ(x): a logit (concat: the labels entered at the input),
    a projected logit, or a logit and class logits. (An unconditional D keeps its plain last Linear.)"""

    def __init__(self, features: int, conditioning: str, classes: int):
        super().__init__()
        self.conditioning = conditioning
        self.linear = nn.Linear(features, 1)
        if conditioning == "projection":
            self.embed = nn.Embedding(classes, features)
            nn.init.xavier_uniform_(self.embed.weight)
        elif conditioning == "acgan":
            self.classify = nn.Linear(features, classes)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(h).squeeze(1)
        if self.conditioning == "projection":
            return logits + (self.embed(y) * h).sum(1)
        if self.conditioning == "acgan":
            return logits, self.classify(h)
        return logits
