"""Class conditioning, shared by the models: how a label enters G and D.

    none        the zero-class case: every net takes labels and ignores them (an unconditional model's are all 0)
    concat      the classic cGAN (Mirza & Osindero 2014): a learned label embedding joined to G's
                noise and to D's flattened input
    projection  D(x, y) = ψ(φ(x)) + ⟨e(y), φ(x)⟩ on D's features φ (Miyato & Koyama 2018); the
                convolutional G normalises with class-conditional batch norm
    acgan       D's unconditional logit plus a classifier head whose cross-entropy both nets add to
                their losses (Odena et al. 2017)

Every G is called G(z, y) and every D D(x, y). A D returns its logits (N,); an ACGAN D (logits, class logits (N, K)).
A model asks its conditioning (`CONDITIONINGS[model.conditioning]`) for the layers that read labels, so no model
tests whether it is conditional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError, short
from gankit.registry import Registry
from gankit.terms import Seen, Term

if TYPE_CHECKING:
    from gankit.config import Config


class IgnoreLabels(nn.Module):
    """Where an unconditional net would read labels: passes its input on unchanged."""

    extra = 0  # numbers it adds to each row

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x


class JoinLabels(nn.Embedding):
    """A learned embedding of K numbers per class joined to each flat row (N, F) -> (N, F + K). An nn.Embedding itself,
    so its weight keeps the name `label_embedding.weight` that checkpoints hold."""

    extra: int

    def __init__(self, classes: int):
        super().__init__(classes, classes)
        self.extra = classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat([x.flatten(1), super().forward(y).to(x.dtype)], 1)


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


def run_layer(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One layer, given the labels too where it reads them (a conditional norm)."""
    return layer(x, y) if isinstance(layer, ConditionalBatchNorm) else layer(x)


def run_layers(layers: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A Sequential whose label-reading layers also take the labels."""
    for layer in layers:
        x = run_layer(layer, x, y)
    return x


class Logits(nn.Module):
    """An unconditional D's head: D's own last Linear already made the (N, 1) logits."""

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return out.squeeze(1)


class LinearHead(nn.Module):
    """A logit from D's features φ(x); concat's labels entered at D's input."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(h).squeeze(1)


class ProjectionHead(LinearHead):
    """ψ(φ(x)) + ⟨e(y), φ(x)⟩."""

    def __init__(self, features: int, classes: int):
        super().__init__(features, classes)
        self.embed = nn.Embedding(classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return super().forward(h, y) + (self.embed(y) * h).sum(1)


class ACGANHead(LinearHead):
    """A logit and K class logits."""

    def __init__(self, features: int, classes: int):
        super().__init__(features, classes)
        self.classify = nn.Linear(features, classes)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(h, y), self.classify(h)


class Conditioning:
    """One model.conditioning: the layers of G and D that read labels, the terms it adds to the nets' losses, and its
    rules for a run's classes (those of the config alone are `config.check_values`'s). This base is `none`, the
    zero-class case."""

    def take_classes(self, config: Config, classes: list[str], source: str) -> None:
        """Fill in a new run's classes from its data (`classes`, named by `source`); an unconditional run has none."""

    def check_split(self, config: Config, classes: list[str], source: str) -> None:
        """Refuse a split of the data whose labels mean other classes than the run's (an unconditional run has none)."""

    def run_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels a run trains on, given its data's: an unconditional run's are all 0, like its G's."""
        return torch.zeros_like(labels)

    def check_built(self, config: Config) -> None:
        """Refuse to build nets whose classes do not fit the conditioning (a config built in Python, unvalidated)."""
        if config.model.num_classes:
            raise GankitError("model.num_classes is for conditional models: set model.conditioning")

    def g_input(self, classes: int) -> IgnoreLabels | JoinLabels:
        """What joins labels to a flat G's noise."""
        return IgnoreLabels()

    def g_norm(self, features: int, classes: int, dims: int = 2) -> nn.Module:
        """A convolutional G's batch norm."""
        return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)

    def d_input(self, classes: int) -> IgnoreLabels | JoinLabels:
        """What joins labels to a flat D's input."""
        return IgnoreLabels()

    def d_end(self, features: int, classes: int) -> tuple[list[nn.Linear], nn.Module]:
        """D's last layers on its features: those that end D's own layers, then a head taking (their output, labels).
        An unconditional D ends in its own Linear, where checkpoints hold it."""
        return [nn.Linear(features, 1)], Logits()

    def terms(self) -> list[Term]:
        return []


class Conditional(Conditioning):
    """What every conditioning shares: G reads labels, D ends in a head, the run takes its classes from its data."""

    head: type[LinearHead] = LinearHead

    def take_classes(self, config: Config, classes: list[str], source: str) -> None:
        """The classes the data's folders (or its data set) name, remembered by name; a mismatch is refused."""
        m, name = config.model, config.model.conditioning
        if not classes:
            raise GankitError(
                f"model.conditioning {name} needs class labels, and {source} has none: give a class-per-folder tree "
                "(cat/001.png, dog/002.png, ...)"
            )
        if len(classes) < 2:
            raise GankitError(
                f"model.conditioning {name} needs at least 2 classes, and {source} has {len(classes)} "
                f"({short(classes)}); train an unconditional preset on it instead"
            )
        if m.num_classes and m.num_classes != len(classes):
            raise GankitError(f"model.num_classes is {m.num_classes}, but {source} has {len(classes)} classes")
        if config.data.classes is not None and config.data.classes != classes:  # a resumed run's data must match
            raise GankitError(f"data.classes are {short(config.data.classes)}, but {source} has {short(classes)}")
        m.num_classes, config.data.classes = len(classes), list(classes)

    def check_split(self, config: Config, classes: list[str], source: str) -> None:
        if list(classes) != list(config.data.classes or []):  # label k must mean the class G learnt as k
            raise GankitError(
                f"{source} has the classes {short(classes)}, but the run was trained on "
                f"{short(config.data.classes)}: its class metrics would compare different classes"
            )

    def run_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def check_built(self, config: Config) -> None:
        if not config.model.num_classes:
            raise GankitError(
                "model.num_classes is 0: a conditional model's classes are filled in from the data when its "
                "run starts (or set model.num_classes)"
            )

    def g_input(self, classes: int) -> IgnoreLabels | JoinLabels:
        return JoinLabels(classes)

    def g_norm(self, features: int, classes: int, dims: int = 2) -> nn.Module:
        return ConditionalBatchNorm(features, classes, dims)

    def d_end(self, features: int, classes: int) -> tuple[list[nn.Linear], nn.Module]:
        return [], self.head(features, classes)


class Concat(Conditional):
    def d_input(self, classes: int) -> IgnoreLabels | JoinLabels:
        return JoinLabels(classes)


class Projection(Conditional):
    head = ProjectionHead


class ACGAN(Conditional):
    head = ACGANHead

    def terms(self) -> list[Term]:
        """ACGAN's class cross-entropy: D's on real and generated images, G's on its own (D must name the class G was
        asked for)."""
        return [Term("d_class_loss", "D", _d_class_loss), Term("g_class_loss", "G", _g_class_loss)]


CONDITIONINGS: Registry[Conditioning] = Registry("model.conditioning")
CONDITIONINGS.register("none")(Conditioning())
CONDITIONINGS.register("concat")(Concat())
CONDITIONINGS.register("projection")(Projection())
CONDITIONINGS.register("acgan")(ACGAN())
CONDITIONING = CONDITIONINGS.names()


def _d_class_loss(seen: Seen) -> torch.Tensor:
    return _class_loss(seen, "real") + _class_loss(seen, "fake")


def _g_class_loss(seen: Seen) -> torch.Tensor:
    return _class_loss(seen, "fake")


def _class_loss(seen: Seen, side: str) -> torch.Tensor:
    """The cross-entropy of D's class logits on one side's images against their labels."""
    logits, labels = seen.outputs(side)[1], seen.real_labels if side == "real" else seen.fake_labels
    if logits is None:
        raise ValueError("ACGAN's class loss needs D's class logits")
    return F.cross_entropy(logits, labels)
