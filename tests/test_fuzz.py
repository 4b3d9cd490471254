"""Fuzzing what a careless or hostile user can hand gankit: config files, image files, archives, flags.

Every case must end in a result or in a GankitError (the CLI's one line and exit 2), change no
existing file, and stay within a memory cap (Python allocations, measured with tracemalloc).
The case counts are the `max_examples` below; the docs' results page (Reliability) records them.
tracemalloc sees Python's allocations and numpy's, not Pillow's or torch's own: the cap bounds what
gankit itself builds from an input.
"""

from __future__ import annotations

import copy
import hashlib
import io
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit.cli import main
from gankit.config import known_keys, load_config_file
from gankit.data.images import load_image_folder
from gankit.errors import GankitError

from conftest import MNIST_DIR, train_tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damaged files it is fed

MEMORY_CAP = 256 * 2**20  # peak Python allocations of one case
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=30))
keys = st.one_of(st.sampled_from(known_keys()), st.text(max_size=12))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
configs = st.dictionaries(
    st.sampled_from(["name", "data", "model", "train", "schedule", "output", "extra"]),
    st.one_of(documents, st.dictionaries(keys.map(lambda k: k.rpartition(".")[2]), scalars, max_size=5)),
    max_size=5,
)


def _within_memory(call):
    """Run `call`; return its result or the GankitError it raised, checking the memory cap."""
    tracemalloc.start()
    try:
        return call()
    except GankitError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 2000, message
        return error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_CAP, peak


@FUZZ
@given(
    st.one_of(
        configs.map(lambda c: yaml.safe_dump(c).encode()),
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
    )
)
def test_config_files(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("config") / "c.yaml"
    path.write_bytes(content)
    _within_memory(lambda: load_config_file(path))


MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I;16", "I", "F"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tiff", "WEBP": ".webp"}


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    """A file named like an image: a real one in any mode and format, cut short, or garbage."""
    kind = draw(st.sampled_from(["image", "truncated", "garbage"]))
    suffix = draw(st.sampled_from(list(FORMATS.values())))
    if kind == "garbage":
        return suffix, draw(st.binary(max_size=200))
    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(list(FORMATS)))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    wide = {
        "I;16": lambda: Image.fromarray(rng.integers(0, 2**16, (h, w), dtype=np.uint16)),  # the full 16 bits
        "I": lambda: Image.fromarray(rng.integers(-(2**31), 2**31 - 1, (h, w), dtype=np.int32)),
        "F": lambda: Image.fromarray(rng.normal(0, draw(st.sampled_from([0.1, 1.0, 1e6])), (h, w)).astype(np.float32)),
    }
    buffer = io.BytesIO()
    try:
        image = wide[mode]() if mode in wide and draw(st.booleans()) else Image.fromarray(array).convert(mode)
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold: the raw bytes then
        return FORMATS[fmt], array.tobytes()
    data = buffer.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return FORMATS[fmt], data


@FUZZ
@given(st.lists(image_files(), min_size=1, max_size=4), st.sampled_from([1, 3]), st.booleans())
def test_image_folders(tmp_path_factory, files, channels, skip_bad):
    root = tmp_path_factory.mktemp("imgs")
    (root / "cls").mkdir()
    for i, (suffix, data) in enumerate(files):
        (root / "cls" / f"{i}{suffix}").write_bytes(data)
    result = _within_memory(lambda: load_image_folder(root, train=True, size=8, channels=channels, skip_bad=skip_bad))
    if not isinstance(result, GankitError):
        assert result.images.shape[1:] == (channels, 8, 8) and result.images.dtype.is_floating_point is False


@FUZZ
@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=20), image_files()), min_size=1, max_size=4),
    st.sampled_from(["a.zip", "a.tar", "a.tar.gz"]),
)
@pytest.mark.filterwarnings("ignore:Duplicate name")  # a zip may hold one name twice: gankit must cope
def test_archives(tmp_path_factory, members, name):
    path = tmp_path_factory.mktemp("archive") / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as zf:
            for member, (suffix, data) in members:
                zf.writestr(f"cls/{member}{suffix}", data)
    else:
        with tarfile.open(path, "w:gz" if name.endswith(".gz") else "w") as tf:
            for member, (suffix, data) in members:
                info = tarfile.TarInfo(f"cls/{member}{suffix}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    _within_memory(lambda: load_image_folder(path, train=True, size=8, channels=3, skip_bad=True))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(MNIST_DIR, tmp_path_factory.mktemp("fuzz") / "run", "train.epochs=1").path


REWRITTEN = {".lock", "report.html", "progress.gif", "progress.mp4"}  # gankit's own pages, rewritten by `report`


def _snapshot(folder: Path) -> dict[Path, str]:
    """The run's files that no using command may change (its samples and exports are new files it writes)."""
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in REWRITTEN and "samples" not in p.parts and "export" not in p.parts
    }


flags = st.lists(
    st.one_of(
        st.sampled_from(
            ["--n", "--seed", "--pairs", "--steps", "--mode", "--format", "--checkpoint", "--out", "--force"]
        ),
        st.sampled_from(
            [
                "0",
                "-1",
                "3",
                "2",
                "99999999999999999999",
                "1e9",
                "",
                "nan",
                "grid",
                "gif",
                "npy",
                "files",
                "onnx",
                "slerp",
                "/dev/null",
                "/proc/x",
            ]
        ),
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["sample", "interpolate", "export", "report"]), flags)
def test_command_flags(run, capsys, tmp_path, monkeypatch, command, extra):
    monkeypatch.chdir(tmp_path)  # a relative --out (say "-1") lands here, not in the repository
    before = _snapshot(run)
    code = main([command, str(run), *extra])
    err = capsys.readouterr().err
    assert code in (0, 2), (command, extra, err)
    assert "Traceback" not in err
    if code == 2:
        assert len([line for line in err.splitlines() if line.startswith("gankit: error:")]) == 1, err
    assert _snapshot(run) == before


ODDITIES = [
    "fifo",
    "broken link",
    "link loop",
    "link to a device",
    "folder named like an image",
    "empty file",
    "link to an image elsewhere",
    "deep folder",
]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(ODDITIES), min_size=1, max_size=4))
def test_file_system_oddities(tmp_path_factory, oddities):
    import os

    root = tmp_path_factory.mktemp("odd")
    (root / "cls").mkdir()
    Image.new("RGB", (8, 8), "red").save(root / "cls" / "real.png")
    for i, kind in enumerate(oddities):
        entry = root / "cls" / f"odd{i}.png"
        if kind == "fifo":
            os.mkfifo(entry)
        elif kind == "broken link":
            entry.symlink_to(root / "nowhere.png")
        elif kind == "link loop":
            (root / "cls" / f"loop{i}").symlink_to(root / "cls", target_is_directory=True)
        elif kind == "link to a device":
            entry.symlink_to("/dev/zero")
        elif kind == "folder named like an image":
            entry.mkdir()
        elif kind == "empty file":
            entry.write_bytes(b"")
        elif kind == "link to an image elsewhere":
            entry.symlink_to(root / "cls" / "real.png")
        else:
            (root / "cls" / f"d{i}" / "e" / "f").mkdir(parents=True)
    result = _within_memory(lambda: load_image_folder(root, train=True, size=8, channels=3, skip_bad=True))
    assert isinstance(result, GankitError) or len(result) >= 1


@FUZZ
@given(
    assignments=st.lists(
        st.tuples(st.sampled_from(known_keys()), st.one_of(scalars, documents)), min_size=1, max_size=4
    )
)
def test_fuzzed_configs_built_in_python_end_in_one_line_before_any_folder(tmp_path, assignments):
    """The library's own door: a Config whose fields a caller set to anything is checked as a file is, and refused
    before a run folder exists (the data folder is missing, so a config that passes stops there, also in one line)."""
    import gankit
    from gankit.checks import validate
    from gankit.config import Config

    config = Config()
    for key, value in assignments:
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
    run = tmp_path / "fuzzed-run"
    result = _within_memory(lambda: gankit.train(config, run, data_dir=tmp_path / "no-such-data"))
    assert isinstance(result, GankitError)
    assert not run.exists()
    if "no-such-data" in str(result):  # only a config that passes every check gets as far as the data
        validate(copy.deepcopy(config))
