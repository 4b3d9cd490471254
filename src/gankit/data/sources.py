"""The data sets gankit knows by name (`data.dataset`): how each loads, its image shape and its classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.data.imageset import ImageSet
from gankit.errors import GankitError
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    load: Callable[[Path | None, bool, DataConfig], ImageSet]  # (root or None for the cache, train split?, config)
    channels: int | None = None  # the images' channels; None: converted to data.channels
    size: int | None = None  # the images' side; None: resized to data.image_size
    paddable: bool = False  # smaller than data.image_size is zero-padded (MNIST 28 -> 32)
    classes: tuple[str, ...] | None = None  # class names by label; None: read from the source
    needs_dir: bool = False  # no download exists: a data directory must name the images

    def check(self, config: DataConfig) -> None:
        """Refuse a data config this data set cannot meet, naming the keys."""
        name = config.dataset
        if self.channels is not None and config.channels != self.channels:
            kind = "grey" if self.channels == 1 else "colour"
            raise GankitError(f"data.dataset {name} is {kind}: data.channels must be {self.channels}")
        if self.size is not None:
            if self.paddable and config.image_size < self.size:
                raise GankitError(
                    f"data.dataset {name} has {self.size}x{self.size} images: data.image_size must be >= {self.size}"
                )
            if not self.paddable and config.image_size != self.size:
                raise GankitError(
                    f"data.dataset {name} has {self.size}x{self.size} images: data.image_size must be {self.size}"
                )


DATASETS: Registry[Dataset] = Registry("data.dataset")
