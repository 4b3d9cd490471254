"""What D sees of every image, real or generated: an augmentation the training step applies before each of D's
forwards (in D's step, G's step and the penalties), told D's outputs on the real images of each D update so that an
adaptive one can tune itself, and saved in checkpoints with the rest of the run."""

from __future__ import annotations

from typing import Any

import torch


class Augmentation:
    """The identity: D sees the images as they are. Subclasses change `__call__` and, where they keep a state,
    the rest."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def observe(self, real_margins: torch.Tensor) -> None:
        """How rightly D called this rank's augmented real images real in a D update, as the loss reads D's outputs
        (`GANLoss.margins`; above 0: rightly). Under torchrun every rank observes its share of the same step."""

    def set_probability(self, p: float) -> None:
        """Apply each change with probability `p` from now on (a schedule's); only a pipeline of chance changes has one."""
        raise TypeError(f"{type(self).__name__} has no probability to set")

    def stats(self) -> dict[str, torch.Tensor]:
        """Named scalars for the step's stats (and so the records, curves and report)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


NO_AUGMENTATION = Augmentation()
