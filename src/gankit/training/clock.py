"""How long a run goes besides its epochs: thousands of images (train.kimg), minutes of training (train.minutes), and a
hook's request to stop, each ending a run between two steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gankit.config import Config

if TYPE_CHECKING:
    from gankit.training.state import TrainingState
    from gankit.training.step import GANStep

LIMIT_REACHED = "the run reached its length,"


class RunLimits:
    """The run's length in images (train.kimg) and in minutes of training (train.minutes) as well as in epochs, and a
    hook's request to stop (`GANStep.request_stop`): `should_stop` after each step says whether the run ends there,
    and `stopped` why."""

    def __init__(self, config: Config, step: GANStep):
        self.images = None if config.train.kimg is None else config.train.kimg * 1000
        self.seconds = None if config.train.minutes is None else config.train.minutes * 60
        self.step = step
        self.images_before, self.seconds_before = 0, 0.0
        self.stopped: str | None = None

    def begin_epoch(self, images_before: int, seconds_before: float) -> None:
        """The run's images and seconds of training before this epoch."""
        self.images_before, self.seconds_before, self.stopped = images_before, seconds_before, None

    def should_stop(self, epoch_images: int, epoch_seconds: float) -> bool:
        self.stopped = self.step.take_stop_request() or self.reached(
            self.images_before + epoch_images, self.seconds_before + epoch_seconds
        )
        return self.stopped is not None

    def reached(self, images: int, seconds: float) -> str | None:
        if self.images is not None and images >= self.images:
            return f"{LIMIT_REACHED} train.kimg {self.images / 1000:g}"
        if self.seconds is not None and seconds >= self.seconds:
            return f"{LIMIT_REACHED} train.minutes {self.seconds / 60:g}"
        return None


def position_images(state: TrainingState) -> int:
    """The images of an epoch left part-way, trained already."""
    return state.position["step"] * state.config.train.batch_size if state.position else 0


def position_seconds(state: TrainingState) -> float:
    return state.position["seconds"] if state.position else 0.0
