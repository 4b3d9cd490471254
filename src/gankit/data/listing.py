"""Which images a folder or archive holds, read one file at a time without unpacking, and which split and class each
belongs to: a top-level `train/` and `test/` pair selects the split, a class-per-folder tree gives the classes."""

from __future__ import annotations

import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from gankit.errors import GankitError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
MAX_IMAGES = 5_000_000  # files in one folder or archive
MAX_IMAGE_BYTES = 256 * 2**20  # one image file, uncompressed
MAX_RATIO = 100  # an archive's images may unpack to at most this many times its size ...
RATIO_FLOOR_BYTES = 256 * 2**20  # ... once they pass this much


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _wanted(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS and not PurePosixPath(name).name.startswith(".")


def list_images(source: Path) -> dict[str, int]:
    """Relative posix path -> size in bytes (uncompressed) of every image file of a folder or archive.

    Only regular files count: links to elsewhere, pipes, sockets and devices are passed over.
    """
    try:
        if source.is_dir():
            found = {}
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source).as_posix()
                if _wanted(rel) and not path.is_symlink() and path.is_file():
                    found[rel] = path.stat().st_size
            return found
        if source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                found = {}
                for info in zf.infolist():
                    if not info.is_dir() and _wanted(info.filename):  # a name held twice counts twice
                        found[info.filename] = found.get(info.filename, 0) + info.file_size
                return found
        with tarfile.open(source, "r:*") as tf:
            return {m.name: m.size for m in tf if m.isfile() and _wanted(m.name)}
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise GankitError(f"cannot read {source}: {exc}") from None


def read_files(source: Path, names: set[str]) -> Iterator[tuple[str, bytes]]:
    """(relative posix path, bytes) of the named files, one at a time, in the source's own order."""
    try:
        if source.is_dir():
            for name in sorted(names):
                yield name, (source / name).read_bytes()
        elif source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                for info in zf.infolist():
                    if info.filename in names:
                        with zf.open(info) as member:  # read no further than the cap, whatever the header says
                            data = member.read(MAX_IMAGE_BYTES + 1)
                        if len(data) > MAX_IMAGE_BYTES:
                            raise GankitError(
                                f"{source}:{info.filename} unpacks to more than {MAX_IMAGE_BYTES:,} bytes"
                            )
                        yield info.filename, data
        else:
            with tarfile.open(source, "r:*") as tf:
                for entry in tf:
                    extracted = tf.extractfile(entry) if entry.isfile() and entry.name in names else None
                    if extracted is not None:
                        yield entry.name, extracted.read()
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise GankitError(f"cannot read {source}: {exc}") from None


def check_sizes(source: Path, sizes: dict[str, int]) -> None:
    """Refuse what would exhaust memory before reading it: too many files, a huge one, an archive bomb."""
    if len(sizes) > MAX_IMAGES:
        raise GankitError(f"{source} holds {len(sizes):,} images; gankit reads at most {MAX_IMAGES:,}")
    name, largest = max(sizes.items(), key=lambda item: item[1])
    if largest > MAX_IMAGE_BYTES:
        raise GankitError(f"{source}:{name} is {largest:,} bytes; an image file may have at most {MAX_IMAGE_BYTES:,}")
    total = sum(sizes.values())
    if is_archive(source) and total > RATIO_FLOOR_BYTES and total > MAX_RATIO * source.stat().st_size:
        raise GankitError(
            f"{source} would unpack to {total:,} bytes, {total / source.stat().st_size:,.0f} times its own "
            f"size; gankit refuses archives that expand more than {MAX_RATIO} times"
        )


class NoTestSplit(GankitError):
    """A folder of images with no test/ beside its train/: scoring compares against its training images."""


def select_split(names: list[str], train: bool, source: Path) -> dict[str, PurePosixPath]:
    """Map each file of the split to its path below the split's root."""
    paths = {n: PurePosixPath(n) for n in names}
    # strip folders every file shares (an archive's top folder), keeping the split folders
    while (
        all(len(p.parts) > 2 for p in paths.values())
        and len({p.parts[0] for p in paths.values()}) == 1
        and next(iter(paths.values())).parts[0] not in ("train", "test")
    ):
        paths = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items()}
    tops = {p.parts[0] for p in paths.values() if len(p.parts) > 1}
    if "train" in tops:
        split = "train" if train else "test"
        chosen = {n: PurePosixPath(*p.parts[1:]) for n, p in paths.items() if p.parts[0] == split and len(p.parts) > 1}
        if not chosen:
            raise GankitError(f"{source} has no images under {split}/")
        return chosen
    if not train:
        raise NoTestSplit(f"{source} has no test/ folder to hold out")
    return paths


def label_of(path: PurePosixPath, classes: list[str]) -> int:
    """An image's class: the index of its top folder among `classes`; 0 in an unlabelled folder (no classes)."""
    return classes.index(path.parts[0]) if classes else 0


def round_robin(chosen: dict[str, PurePosixPath], classes: list[str]) -> list[str]:
    """The images class by class in turn (each class's first, then each one's second, ...), by name within a class, so
    any first n hold the classes alike; an unlabelled folder's are in name order."""
    taken: Counter[int] = Counter()
    rank = {}
    for name in sorted(chosen):
        label = label_of(chosen[name], classes)
        rank[name] = (taken[label], label)
        taken[label] += 1
    return sorted(chosen, key=rank.__getitem__)
