"""What a caller adds to a run, passed once: per-epoch callbacks, terms of the nets' losses, and functions that
run after each step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gankit.terms import Term
from gankit.training.callbacks import Callback

if TYPE_CHECKING:
    from gankit.training.step import GANStep


@dataclass(frozen=True)
class Hooks:
    """`callbacks` run after each epoch (after gankit's scoring, collapse watch and grid, before its checkpoint, so
    what they add to the record is saved); `terms` add to D's or G's loss (`gankit.terms.Term`) after the config's
    own; `after_step` functions get the step after each G update, both nets updated (an EMA of `step.G`, say)."""

    callbacks: Sequence[Callback] = ()
    terms: Sequence[Term] = ()
    after_step: Sequence[Callable[[GANStep], None]] = ()


NO_HOOKS = Hooks()
