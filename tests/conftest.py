"""Shared fixtures: the real data sets in ../shared/data and a private gankit cache per session."""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
from pathlib import Path

import pytest
import torch

import gankit
from gankit import evaluators
from gankit.checks import validate
from gankit.config import Config, apply_overrides, load_preset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GANKIT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()
MNIST_DIR = SHARED_DATA / "mnist"
CIFAR_ARCHIVE = SHARED_DATA / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"

# A tiny seed-GAN variant: same code paths, seconds to train.
TINY = [
    "model.g_hidden=[32, 32]",
    "model.d_hidden=[32, 32]",
    "data.limit=512",
    "train.batch_size=64",
    "output.progress=false",
]
TINY_NETS = ["--set", "model.g_hidden=[32, 32]", "--set", "model.d_hidden=[32, 32]", "--no-progress"]
TINY_MLP = [*TINY_NETS, "--limit", "512", "--batch-size", "64"]  # TINY as `gankit train` flags


def tiny_config(*overrides: str, preset: str = "report-gan-mnist") -> Config:
    """The tiny seed-GAN variant, with `section.key=value` overrides, checked as a run checks it."""
    config = apply_overrides(load_preset(preset), [*TINY, *overrides])
    validate(config)
    return config


def train_tiny(mnist_dir: Path, out: Path, *overrides: str, **kwargs) -> gankit.Run:
    """Train the tiny variant into `out` through the library."""
    return gankit.train(tiny_config(*overrides), out, data_dir=mnist_dir, **kwargs)


def cached_encoders() -> dict[Path, int]:
    """The cached contrastive encoders, and when each was written."""
    return {
        path: path.stat().st_mtime_ns for path in evaluators.contrastive.cache_dir().glob("evaluators/contrastive-*")
    }


def straight_and_split(mnist_dir: Path, tmp_path: Path, *overrides: str) -> tuple[dict, dict]:
    """The last checkpoints of the tiny variant trained 2 epochs straight (tmp_path/straight) and trained 1 epoch,
    then resumed for the second (tmp_path/split): equal where resume is exact."""
    from gankit.checkpoint import list_checkpoints, load_checkpoint

    train_tiny(mnist_dir, tmp_path / "straight", "train.epochs=2", *overrides)
    train_tiny(mnist_dir, tmp_path / "split", "train.epochs=1", *overrides)
    gankit.train(tiny_config("train.epochs=2", *overrides), tmp_path / "split", resume=True)
    straight, split = (
        load_checkpoint(list_checkpoints(tmp_path / run / "checkpoints")[-1]) for run in ("straight", "split")
    )
    return straight, split


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["GANKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("gankit-cache"))
    os.environ.pop("GANKIT_DATA_DIR", None)
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_epoch_evaluator():
    """The MNIST evaluator trained for one epoch on the first 20,000 digits instead of four on all 60,000: the same
    code, a twelfth of the time, about 97% right. (The evaluator cache keys neither: every test module that scores
    uses this one.)"""
    train = evaluators.train_evaluator

    def on_fewer_digits(dataset, images, test, **kwargs):
        return train(dataset, images.head(20000) if dataset == "mnist" else images, test, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(evaluators.RECIPES, "mnist", dataclasses.replace(evaluators.RECIPES["mnist"], epochs=1))
        patch.setattr(evaluators, "train_evaluator", on_fewer_digits)
        yield


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright (Debian's chromium, which .ci/run installs)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"the MNIST copy is missing from {MNIST_DIR} (set GANKIT_TEST_DATA)")
    return MNIST_DIR


# The fast tier (`pytest -m fast`): tests on synthetic tensors, which need neither ../shared/data nor a browser.
# A test joins it unless it asks for one of these fixtures (directly or through another), its module names the data
# itself, or it is marked slow; CI runs the tier with no data directory, so a test that reads data anyway fails there.
NEEDS_DATA = {"mnist_dir", "one_epoch_evaluator", "browser"}
DATA_NAMES = ("MNIST_DIR", "CIFAR_ARCHIVE", "SHARED_DATA", "GANKIT_TEST_DATA")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    names_data: dict[str, bool] = {}
    for item in items:
        module = item.module.__name__ if item.module is not None else ""
        if module not in names_data:
            source = inspect.getsource(item.module) if item.module is not None else ""
            names_data[module] = any(name in source for name in DATA_NAMES)
        uses_data = NEEDS_DATA & set(getattr(item, "fixturenames", ())) or names_data[module]
        if not uses_data and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)
