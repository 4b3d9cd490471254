"""The run's clock: how long a run goes besides its epochs (train.kimg, train.minutes, a hook's request to stop), and
when the schedules of grids, scores and checkpoints fall due (output.grid_every, eval_every, checkpoint_every) in
epochs, thousands of images or minutes of training. Marks in images or minutes pause the epoch at the first step at or
past them, so the work due is done there, part-way through the epoch; the training goes on as a resume would."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gankit.config import Config, Every, every

if TYPE_CHECKING:
    from gankit.training.state import TrainingState
    from gankit.training.step import GANStep

LIMIT_REACHED = "the run reached its length,"


class Schedule:
    """When one kind of work falls due: at the end of every n-th epoch, or at the first step at or past each multiple
    of its thousands of images or minutes, counted over the whole run (so a resumed run keeps the same marks)."""

    def __init__(self, when: Every):
        self.when = when
        self.size = {"kimg": 1000.0, "minutes": 60.0}.get(when.unit, 0.0) * when.amount  # images or seconds
        self.next = math.inf

    @property
    def in_epochs(self) -> bool:
        return self.when.unit == "epochs"

    def start(self, images: int, seconds: float) -> None:
        """The next mark after the run's images and seconds so far."""
        if self.size:
            done = images if self.when.unit == "kimg" else seconds
            self.next = (math.floor(done / self.size) + 1) * self.size

    def passed(self, images: int, seconds: float) -> bool:
        return (images if self.when.unit == "kimg" else seconds) >= self.next

    def due(self, epoch: int, whole: bool, images: int, seconds: float) -> bool:
        """Whether the work is due at this point of the run (`whole`: at the end of `epoch`), moving on to the next
        mark if it is."""
        if self.in_epochs:
            return whole and bool(self.when) and epoch % int(self.when.amount) == 0
        if not self.passed(images, seconds):
            return False
        self.start(images, seconds)
        return True


class RunClock:
    """The run's length in images (train.kimg) and minutes of training (train.minutes) as well as in epochs, a hook's
    request to stop (`GANStep.request_stop`), and the schedules: `should_pause` after each step says whether the epoch
    pauses there (the run stops, or work falls due), `stopped` why the run stops, and `due` what work is due."""

    def __init__(self, config: Config, step: GANStep):
        t, o = config.train, config.output
        self.images = None if t.kimg is None else t.kimg * 1000
        self.seconds = None if t.minutes is None else t.minutes * 60
        self.step = step
        self.schedules = {
            "grid": Schedule(every(o.grid_every)),
            "score": Schedule(every(o.eval_every)),
            "checkpoint": Schedule(every(o.checkpoint_every)),
        }
        self.timed = [s for s in self.schedules.values() if not s.in_epochs and s.when]
        self.images_before, self.seconds_before = 0, 0.0
        self.stopped: str | None = None

    def start(self, images: int, seconds: float) -> None:
        """Where the run's clock stands as this session starts (or after a rollback)."""
        for schedule in self.timed:
            schedule.start(images, seconds)

    def begin_epoch(self, images_before: int, seconds_before: float) -> None:
        """The run's images and seconds of training before this epoch."""
        self.images_before, self.seconds_before, self.stopped = images_before, seconds_before, None

    def should_pause(self, epoch_images: int, epoch_seconds: float) -> bool:
        images, seconds = self.images_before + epoch_images, self.seconds_before + epoch_seconds
        self.stopped = self.step.take_stop_request() or self.reached(images, seconds)
        return self.stopped is not None or any(s.passed(images, seconds) for s in self.timed)

    def due(self, epoch: int, whole: bool, images: int, seconds: float) -> frozenset[str]:
        """The work due where the epoch ended or paused (`whole`: at its end), each timed schedule moved past it."""
        return frozenset(name for name, s in self.schedules.items() if s.due(epoch, whole, images, seconds))

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
