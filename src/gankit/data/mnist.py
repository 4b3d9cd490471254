"""MNIST and Fashion-MNIST through torchvision, from its layout, loose IDX files or a download.

torchvision expects ROOT/MNIST/raw/<unpacked IDX files>. Loose files (gzip-compressed or not,
as in the original downloads) are unpacked once into gankit's cache in that layout.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import torchvision
from torchvision.datasets.mnist import read_image_file, read_label_file

from gankit.data.imageset import ImageSet
from gankit.data.locate import cache_dir, download_dir
from gankit.data.sources import DATASETS, Dataset
from gankit.errors import GankitError
from gankit.files import temporary_beside

log = logging.getLogger(__name__)

SPLIT_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TORCHVISION = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}
SUBFOLDERS = {"mnist": ("mnist", "MNIST"), "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST")}


def load_mnist(name: str, root: Path | None, *, train: bool = True) -> ImageSet:
    """The train (or test) split as uint8 images (N, 1, 28, 28) with labels."""
    dataset_cls = TORCHVISION[name]
    tv_root = torchvision_root(name, root, train=train)
    raw = tv_root / dataset_cls.__name__ / "raw"
    image_file, label_file = (raw / f for f in SPLIT_FILES[train])
    check_idx(image_file, 3)
    check_idx(label_file, 1)
    # torchvision's own IDX readers; its dataset class would also insist on the other split's files
    images, labels = read_image_file(str(image_file)), read_label_file(str(label_file))
    if images.shape[0] != labels.shape[0]:
        raise GankitError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels in {tv_root}")
    if images.shape[1:] != (28, 28):
        raise GankitError(f"{name}: images are {tuple(images.shape[1:])}, expected 28x28 in {tv_root}")
    if labels.numel() and int(labels.max()) >= len(dataset_cls.classes):
        raise GankitError(
            f"{name}: label {int(labels.max())} out of range 0..{len(dataset_cls.classes) - 1} in {tv_root}"
        )
    return ImageSet(images.unsqueeze(1).contiguous(), labels.long(), list(dataset_cls.classes), f"{name} ({tv_root})")


def torchvision_root(name: str, root: Path | None, *, train: bool = True) -> Path:
    """A folder torchvision's dataset class reads: ROOT/MNIST/raw/ (or ROOT/FashionMNIST/raw/)."""
    dataset_cls = TORCHVISION[name]
    if root is None:
        return _download(name, dataset_cls)
    return _find(name, dataset_cls.__name__, root, train)


def check_idx(path: Path, ndim: int) -> None:
    """Fail with the file's name unless it is a complete uint8 IDX file of `ndim` dimensions."""
    try:
        with open(path, "rb") as f:
            header = f.read(4 + 4 * ndim)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise GankitError(f"cannot read {path}: {exc.strerror}") from None
    if len(header) < 4 + 4 * ndim or header[:2] != b"\0\0" or header[2] != 0x08 or header[3] != ndim:
        raise GankitError(f"{path} is not a {ndim}-dimensional uint8 IDX file (bad header)")
    dims = np.frombuffer(header[4:], dtype=">u4")
    expected = len(header) + int(np.prod(dims.astype(np.int64)))
    if size != expected:
        raise GankitError(f"{path} is truncated or padded: {size} bytes, its header promises {expected}")


def _download(name: str, dataset_cls: type) -> Path:
    root = download_dir()
    if all((root / dataset_cls.__name__ / "raw" / f).exists() for f in SPLIT_FILES[True] + SPLIT_FILES[False]):
        return root
    log.info("downloading %s into %s", name, root)
    try:
        # torchvision prints every failed mirror; one line of ours says it better
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset_cls(str(root), train=True, download=True)
            dataset_cls(str(root), train=False, download=True)
    except Exception as exc:  # noqa: BLE001 - any download failure ends in the same advice
        raise GankitError(
            f"{name} is not in the cache ({root}) and could not be downloaded ({type(exc).__name__}); "
            f"name a folder holding {', '.join(SPLIT_FILES[True])}[.gz] with data_dir (or $GANKIT_DATA_DIR)",
            option="data_dir",
        ) from None
    return root


def _find(name: str, tv_folder: str, root: Path, train: bool) -> Path:
    """A root torchvision can read: `root` itself, or a cache copy unpacked from loose files."""
    needed = SPLIT_FILES[train]
    looked = []
    for candidate in [root, *(root / s for s in SUBFOLDERS[name])]:
        raw = candidate / tv_folder / "raw"
        if all((raw / f).is_file() for f in needed):
            return candidate
        for folder in (candidate, raw):
            looked.append(str(folder))
            sources = {f: _loose_file(folder, f) for f in SPLIT_FILES[True] + SPLIT_FILES[False]}
            if all(sources[f] is not None for f in needed):
                return _unpack(tv_folder, {f: p for f, p in sources.items() if p is not None})
    raise GankitError(
        f"no {name} files found (looked in {', '.join(dict.fromkeys(looked))}); "
        f"put {' and '.join(needed)} (optionally .gz) in the folder given as data_dir",
        option="data_dir",
    )


def _loose_file(folder: Path, filename: str) -> Path | None:
    for path in (folder / filename, folder / f"{filename}.gz"):
        if path.is_file():
            return path
    return None


def _unpack(tv_folder: str, sources: dict[str, Path]) -> Path:
    """Copy (gunzip) the files once into a cache folder keyed by their paths, sizes and times."""
    key = hashlib.sha256()
    for _name, path in sorted(sources.items()):
        stat = path.stat()
        key.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    tv_root = cache_dir() / "unpacked" / key.hexdigest()[:16]
    raw = tv_root / tv_folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for filename, path in sources.items():
        target = raw / filename
        if target.exists():
            continue
        tmp = temporary_beside(target)
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            tmp.unlink(missing_ok=True)
            raise GankitError(f"cannot unpack {path}: {exc}") from None
        try:
            check_idx(tmp, 3 if "images" in filename else 1)
        except GankitError as exc:  # named by the user's file, not by gankit's copy of it
            tmp.unlink(missing_ok=True)
            raise GankitError(str(exc).replace(str(tmp), str(path))) from None
        os.replace(tmp, target)
        log.info("unpacked %s into %s", path, raw)
    return tv_root


for _name, _tv in TORCHVISION.items():
    DATASETS.register(_name)(
        Dataset(
            load=lambda root, train, config: load_mnist(config.dataset, root, train=train),
            channels=1,
            size=28,
            paddable=True,
            classes=tuple(_tv.classes),
        )
    )
