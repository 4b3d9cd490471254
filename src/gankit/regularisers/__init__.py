"""Penalties the config turns on, each a file of this package that registers itself (see `registry`)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

# isort: off  (each registers itself, and D's loss adds the penalties in this order)
from gankit.regularisers import gradient_penalty, r1, r2  # noqa: F401

# isort: on
from gankit.regularisers.registry import PENALTIES, Regulariser
from gankit.terms import Term

if TYPE_CHECKING:
    from gankit.config import TrainConfig


def config_terms(train: TrainConfig) -> list[Term]:
    """The penalties `train` turns on, as terms of D's loss."""
    terms = []
    for name, entry in PENALTIES.items():
        weight = getattr(train, entry.weight_key)
        if weight:
            every = getattr(train, entry.every_key) if entry.every_key else 1
            terms.append(Term(name, "D", partial(entry.penalty, weight=weight), every=every))
    return terms


__all__ = ["PENALTIES", "Regulariser", "config_terms"]
