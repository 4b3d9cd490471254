"""Penalties the config turns on, each a file of this package that registers itself (see `registry`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

# each registers itself, and D's loss adds them in this order
from gankit.regularisers import r1, gradient_penalty, r2  # noqa: F401  # isort: skip
from gankit.regularisers.registry import PENALTIES, Regulariser
from gankit.terms import Seen, Term

if TYPE_CHECKING:
    from gankit.config import TrainConfig


def config_terms(train: TrainConfig) -> list[Term]:
    """The penalties `train` turns on, as terms of D's loss."""
    terms = []
    for name, entry in PENALTIES.items():
        weight = getattr(train, entry.weight_key)
        if weight:
            every = getattr(train, entry.every_key) if entry.every_key else 1
            terms.append(Term(name, "D", _weighted(entry.penalty, weight), every=every))
    return terms


def _weighted(penalty: Callable[[Seen, float], torch.Tensor], weight: float) -> Callable[[Seen], torch.Tensor]:
    return lambda seen: penalty(seen, weight)


__all__ = ["PENALTIES", "Regulariser", "config_terms"]
