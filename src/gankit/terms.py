"""The parts of D's and G's objectives: each a named term that a training step sums.

A term sees one step through `Seen`: the real and generated images, their labels, and D's outputs
on them, so a loss, a penalty or a class loss is one small function, whichever net it trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Outputs = tuple[torch.Tensor, torch.Tensor | None]  # D's float32 (logits, class logits); only an ACGAN D has the second
NETS = ("D", "G")


class Seen:
    """What the terms of one net's update see. D's outputs on a side ("real" or "fake") are what the step already
    computed, or D's forward through the augmentation on first use (G's step asks for real images only for a loss
    that needs them). In D's step the generated images carry no graph to G; in G's step they do."""

    def __init__(
        self,
        critic: Callable[[torch.Tensor, torch.Tensor], Outputs],
        real_images: torch.Tensor,
        real_labels: torch.Tensor,
        fake_images: torch.Tensor,
        fake_labels: torch.Tensor,
        **outputs: Outputs,
    ):
        self.critic = critic  # D as it sees images: through the augmentation, in the step's precision, as float32
        self.real_images, self.real_labels = real_images, real_labels
        self.fake_images, self.fake_labels = fake_images, fake_labels
        self._outputs = outputs

    def outputs(self, side: str) -> Outputs:
        if side not in self._outputs:
            images, labels = (
                (self.real_images, self.real_labels) if side == "real" else (self.fake_images, self.fake_labels)
            )
            self._outputs[side] = self.critic(images, labels)
        return self._outputs[side]

    @property
    def real(self) -> torch.Tensor:
        """D's logits on the real images."""
        return self.outputs("real")[0]

    @property
    def fake(self) -> torch.Tensor:
        """D's logits on the generated images."""
        return self.outputs("fake")[0]

    @property
    def real_class(self) -> torch.Tensor | None:
        return self.outputs("real")[1]

    @property
    def fake_class(self) -> torch.Tensor | None:
        return self.outputs("fake")[1]

    def logits(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """D's logits on other images (a penalty's own inputs), through the augmentation."""
        return self.critic(images, labels)[0]


@dataclass(frozen=True)
class Term:
    """One named part of a net's loss: `fn` of the step's `Seen`, added to the loss of `net` ("D" or "G").

    With `every` k > 1 the term is lazy (Karras et al. 2020): computed on every k-th update of its net only and
    multiplied by k, the same pull on average for 1/k of its cost; on the other updates it is 0, so its epoch
    mean is its pull per update."""

    name: str
    net: str
    fn: Callable[[Seen], torch.Tensor]
    every: int = 1

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise ValueError(f"term {self.name}: net must be one of {', '.join(NETS)}, got {self.net!r}")
        if self.every < 1:
            raise ValueError(f"term {self.name}: every must be at least 1, got {self.every}")

    def value(self, update: int, seen: Seen) -> torch.Tensor:
        """The term at its net's update number `update` (from 0 over the whole run, so resume keeps the phase)."""
        if self.every == 1:
            return self.fn(seen)
        if update % self.every:
            return torch.zeros((), device=seen.real_images.device)
        return self.every * self.fn(seen)
