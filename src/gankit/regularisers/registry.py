"""The registry of penalties: a name (the penalty's stat), the train config key of its weight (0: off) and, for a
penalty that may be lazy, the key of its interval."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gankit.registry import Registry
from gankit.terms import Seen


@dataclass(frozen=True)
class Regulariser:
    title: str  # its name in messages: "R1"
    penalty: Callable[[Seen, float], torch.Tensor]  # (what D's step sees, the weight) -> the term
    weight_key: str  # train.<weight_key> weighs it; 0 turns it off
    every_key: str | None = None  # train.<every_key>: apply it on every k-th update of D only (lazy)


PENALTIES: Registry[Regulariser] = Registry("penalty")
