"""Every `gankit` command the README shows works as written: run in order in a fresh folder, those that train for a
step or two (of 600 images, so that a folder run can still be scored), the README's data paths pointed at the test
data."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
import sys
import urllib.request

import pytest
from PIL import Image
from test_readme import README, readme_commands

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load_images
from gankit.evaluators import contrastive

from conftest import SHARED_DATA, cached_encoders

# appended: the last of a repeated option wins, and a run ends at the first of its lengths
TRAINING = ["--limit", "600", "--epochs", "1", "--kimg", "0.128", "--no-progress"]


def as_tested(args: list[str]) -> list[str]:
    """The command with the README's data folder replaced by the test data, and training and scoring made short."""
    args = [arg.replace("../shared/data", str(SHARED_DATA)) for arg in args]
    if args[0] == "train":
        return [*args, *TRAINING]
    if args[0] == "eval":
        return [*args, "--n", "500"]
    return args


def test_commands_are_shortened_only_where_they_train_or_score():
    assert as_tested(["eval", "runs/a"]) == ["eval", "runs/a", "--n", "500"]
    assert as_tested(["train", "p", "--data-dir", "../shared/data/mnist"]) == [
        "train", "p", "--data-dir", f"{SHARED_DATA}/mnist", *TRAINING
    ]  # fmt: skip
    assert as_tested(["sample", "runs/a", "--n", "64"]) == ["sample", "runs/a", "--n", "64"]


@pytest.mark.usefixtures("one_epoch_evaluator")
def test_every_gankit_command_in_the_readme_runs(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(contrastive, "RECIPE", dataclasses.replace(contrastive.RECIPE, steps=10, batch=32, width=8))
    photos = tmp_path / "my photos"  # the README's folder of one's own images: 600 digits as PNG files
    photos.mkdir()
    for i, image in enumerate(load_images(DataConfig(dataset="mnist"), mnist_dir).head(600).images):
        Image.fromarray(image[0].numpy()).save(photos / f"photo {i:03d}.png")

    commands = [as_tested(args) for args in readme_commands(README.read_text())]
    for args in commands:
        if args[0] == "serve":
            assert serves(args), args
        elif args[:3] == ["evaluator", "train", "folder"]:  # after `eval runs/mine`: its encoder, not another
            before = cached_encoders()
            assert main(args) == 0, args
            assert cached_encoders() == before, args
        else:
            assert main(args) == 0, args
    assert Image.open(tmp_path / "digits.png").size[0] > 8 * 28
    assert len(list(tmp_path.glob("runs/*/eval/*.json"))) == sum(args[0] == "eval" for args in commands)


def serves(args: list[str], timeout: float = 120) -> bool:
    """`gankit ARGS` serves its page: started on a free port, the page answers, Ctrl-C stops it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gankit", *args, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert select.select([process.stderr], [], [], timeout)[0], "the server said nothing"
        line = process.stderr.readline()
        assert " at http://" in line, line
        url = line.split(" at ")[1].split(" ")[0].strip()
        with urllib.request.urlopen(url, timeout=60) as response:
            answered = response.status == 200 and b"<html" in response.read().lower()
        process.send_signal(signal.SIGINT)
        return answered and process.wait(timeout=180) == 0
    finally:
        process.kill()
