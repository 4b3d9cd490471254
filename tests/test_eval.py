"""Scoring runs: the evaluator, `gankit eval`, `--eval-every`, and their bad inputs."""

import dataclasses
import json
import shutil

import pytest

import gankit
from conftest import train_tiny
from gankit import evaluators
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load_images


@pytest.fixture(scope="module", autouse=True)
def one_epoch_evaluator():
    """The MNIST evaluator trained for one epoch instead of four: the same code, a quarter of the time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(evaluators.RECIPES, "mnist", dataclasses.replace(evaluators.RECIPES["mnist"], epochs=1))
        yield


@pytest.fixture(scope="module")
def run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    train_tiny(mnist_dir, out, "train.epochs=1")
    return out


def _errors(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]


def test_the_evaluator_learns_mnist(mnist_dir):
    data = DataConfig(dataset="mnist")
    train, test = load_images(data, mnist_dir).head(6000), load_images(data, mnist_dir, train=False).head(2000)
    _, info = evaluators.train_evaluator("mnist", train, test, progress=False, epochs=1)
    assert info["test_accuracy"] > 0.9


def test_eval_writes_figures_beside_the_real_floor(run, capsys):
    assert main(["eval", str(run), "--n", "600"]) == 0  # no --data-dir: the run remembers where its data is
    out = capsys.readouterr().out
    assert "fid" in out and "real floor" in out
    result = json.loads((run / "eval" / "epoch-0001-evaluator-mnist-n600.json").read_text())
    assert result["features"] == "evaluator-mnist" and result["n_generated"] == result["n_real"] == 600
    metrics, floor = result["metrics"], result["floor"]
    assert set(metrics) == set(floor) >= {"fid", "kid_mean", "kid_std", "is_mean", "precision", "recall", "density",
                                          "coverage", "classes_covered", "class_kl", "class_histogram"}
    assert floor["fid"] < metrics["fid"]  # one epoch of a tiny GAN is far from the real images
    assert floor["classes_covered"] == 10 and sum(metrics["class_histogram"]) == 600


def test_eval_every_adds_metric_curves(mnist_dir, tmp_path):
    out = tmp_path / "run"
    train_tiny(mnist_dir, out, "train.epochs=2", "output.eval_every=1", "output.eval_n=300",
               "output.eval_metrics=[fid, coverage]")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all({"fid", "classes_covered", "class_kl"} <= r.keys() for r in records)
    assert "class_histogram" not in records[0]  # lists stay in RUN/eval/*.json
    assert sorted(p.name for p in (out / "eval").iterdir()) == ["epoch-0001-evaluator-mnist-n300.json",
                                                              "epoch-0002-evaluator-mnist-n300.json"]
    assert "FID" in (out / "report.html").read_text()
    result, path = gankit.load_run(out).evaluate(n=300, metrics=["fid"], progress=False)  # the library call
    assert path.name == "epoch-0002-evaluator-mnist-n300.json" and result["metrics"]["fid"] > result["floor"]["fid"]


def test_eval_bad_input(run, tmp_path, capsys):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    shutil.copy(run / "config.yaml", empty / "config.yaml")
    cases = [
        (["eval", str(empty)], "has no checkpoint yet"),
        (["eval", str(run), "--metrics", "fid,sharpness"], "unknown metric 'sharpness'"),
        (["eval", str(run), "--features", "inception", "--inception-weights", str(tmp_path / "none.pth")],
         "Inception-v3 weights not found at"),
        (["eval", str(run), "--n", "1"], "--n must be at least 2"),
        (["evaluator", "train", "svhn"], "invalid choice: 'svhn'"),
    ]
    capsys.readouterr()
    for args, words in cases:
        assert main(args) == 2, args
        errors = _errors(capsys)
        assert len(errors) == 1 and words in errors[0], (args, errors)


def test_evaluator_training_says_what_and_how_long_and_logs_progress_without_a_bar(mnist_dir, monkeypatch, caplog):
    import logging

    monkeypatch.setattr(evaluators, "LOG_EVERY_S", 0.0)  # a line after every step
    data = DataConfig(dataset="mnist")
    train, test = load_images(data, mnist_dir).head(1280), load_images(data, mnist_dir, train=False).head(200)
    with caplog.at_level(logging.INFO, logger="gankit"):
        evaluators.train_evaluator("mnist", train, test, progress=False, epochs=1)
    steps = [r.getMessage() for r in caplog.records if "evaluator: epoch 1/1, step" in r.getMessage()]
    assert len(steps) == 10 and steps[-1].startswith("mnist evaluator: epoch 1/1, step 10/10")
