"""Scoring runs: the evaluator, `gankit eval`, `--eval-every`, and their bad inputs."""

import json
import shutil

import pytest

import gankit
import gankit.training.trainer
from gankit import evaluators
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load_images
from gankit.training import callbacks

from conftest import train_tiny

pytestmark = pytest.mark.usefixtures("one_epoch_evaluator")


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
    assert (
        set(metrics)
        == set(floor)
        >= {
            "fid",
            "kid_mean",
            "kid_std",
            "is_mean",
            "precision",
            "recall",
            "density",
            "coverage",
            "classes_covered",
            "class_kl",
            "class_histogram",
        }
    )
    assert floor["fid"] < metrics["fid"]  # one epoch of a tiny GAN is far from the real images
    assert floor["classes_covered"] == 10 and sum(metrics["class_histogram"]) == 600


def test_eval_every_adds_metric_curves(mnist_dir, tmp_path):
    out = tmp_path / "run"
    train_tiny(
        mnist_dir,
        out,
        "train.epochs=2",
        "output.eval_every=1",
        "output.eval_n=300",
        "output.eval_metrics=[fid, coverage]",
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all({"fid", "classes_covered", "class_kl"} <= r.keys() for r in records)
    assert "class_histogram" not in records[0]  # lists stay in RUN/eval/*.json
    assert sorted(p.name for p in (out / "eval").iterdir()) == [
        "epoch-0001-evaluator-mnist-n300.json",
        "epoch-0002-evaluator-mnist-n300.json",
    ]
    assert "FID" in (out / "report.html").read_text()
    result, path = gankit.load_run(out).evaluate(n=300, metrics=["fid"], progress=False)  # the library call
    assert path.name == "epoch-0002-evaluator-mnist-n300.json" and result["metrics"]["fid"] > result["floor"]["fid"]


def test_best_pt_follows_the_lowest_finite_fid(mnist_dir, tmp_path, monkeypatch):
    figures = iter([float("nan"), 5.0, 3.0, 4.0])

    def made_up_score(scorer, G, seed=0):
        return {"features": "made-up", "n_generated": 1, "metrics": {"fid": next(figures)}}

    monkeypatch.setattr(callbacks, "score", made_up_score)
    monkeypatch.setattr(gankit.training.trainer, "make_scorer", lambda *args, **kwargs: object())
    out = tmp_path / "run"
    train_tiny(
        mnist_dir, out, "train.epochs=4", "output.eval_every=1", "output.eval_metrics=[fid]", "output.report=false"
    )
    assert [r["fid"] for r in gankit.load_run(out).metrics()][1:] == [5.0, 3.0, 4.0]
    assert load_checkpoint(out / "checkpoints" / "best.pt")["epoch"] == 3  # not the NaN, not the last


def test_stop_on_plateau_ends_the_run_with_a_checkpoint_and_keeps_the_best(mnist_dir, tmp_path, monkeypatch, caplog):
    figures = iter([5.0, 3.0, 4.0, 3.0, 2.0, 1.0])  # a tie is no new best

    def made_up_score(scorer, G, seed=0):
        return {"features": "made-up", "n_generated": 1, "metrics": {"fid": next(figures)}}

    monkeypatch.setattr(callbacks, "score", made_up_score)
    monkeypatch.setattr(gankit.training.trainer, "make_scorer", lambda *args, **kwargs: object())
    out = tmp_path / "run"
    with caplog.at_level("WARNING"):
        train_tiny(
            mnist_dir,
            out,
            "train.epochs=6",
            "output.eval_every=1",
            "output.stop_on_plateau=2",
            "output.checkpoint_every=3",
            "output.report=false",
        )
    assert [r["fid"] for r in gankit.load_run(out).metrics()] == [5.0, 3.0, 4.0, 3.0]
    assert load_checkpoint(out / "checkpoints" / "best.pt")["epoch"] == 2
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["epoch-0003.pt", "epoch-0004.pt"]
    assert (out / "grids" / "epoch-0004.png").is_file()  # the end of a run draws its grid
    assert "the run stopped after epoch 4: 2 scorings without a lower FID than 3 (epoch 2, 1.024 kimg)" in caplog.text
    with pytest.raises(gankit.GankitError, match="output.stop_on_plateau needs scores during training"):
        train_tiny(mnist_dir, tmp_path / "unscored", "output.stop_on_plateau=2")
    assert not (tmp_path / "unscored").exists()


def test_stop_on_plateau_counts_a_nan_as_no_better_and_needs_fid(mnist_dir, tmp_path, monkeypatch, caplog):
    figures = iter([float("nan"), float("nan"), 1.0])

    def made_up_score(scorer, G, seed=0):
        return {"features": "made-up", "n_generated": 1, "metrics": {"fid": next(figures)}}

    monkeypatch.setattr(callbacks, "score", made_up_score)
    monkeypatch.setattr(gankit.training.trainer, "make_scorer", lambda *args, **kwargs: object())
    with caplog.at_level("WARNING"):
        train_tiny(mnist_dir, tmp_path / "nan", "train.epochs=3", "output.eval_every=1", "output.stop_on_plateau=2")
    assert "the run stopped after epoch 2: 2 scorings and not one finite FID" in caplog.text
    with pytest.raises(gankit.GankitError, match="output.stop_on_plateau watches FID: add fid to output.eval_metrics"):
        train_tiny(
            mnist_dir, tmp_path / "kid", "output.eval_every=1", "output.eval_metrics=[kid]", "output.stop_on_plateau=2"
        )


def test_the_lowest_fid_is_kept_as_the_best_checkpoint(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    train_tiny(
        mnist_dir,
        out,
        "train.epochs=4",
        "output.eval_every=1",
        "output.eval_n=200",
        "output.eval_metrics=[fid]",
        "output.keep_checkpoints=1",
    )
    records = gankit.load_run(out).metrics()
    best_epoch = min(records, key=lambda r: r["fid"])["epoch"]
    best = gankit.load_run(out).checkpoint("best")
    assert best == out / "checkpoints" / "best.pt" and load_checkpoint(best)["epoch"] == best_epoch
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["epoch-0004.pt"]  # best.pt is not pruned
    assert main(["sample", str(out), "--checkpoint", "best", "--out", str(tmp_path / "best.png")]) == 0
    plain = tmp_path / "plain"
    train_tiny(mnist_dir, plain, "train.epochs=1")
    assert main(["sample", str(plain), "--checkpoint", "best"]) == 2
    assert _errors(capsys) == [
        f"gankit: error: {plain} has no best checkpoint: checkpoints/best.pt is kept when a run "
        "scores FID during training (output.eval_every)"
    ]


def test_eval_out_writes_the_result_there_and_keeps_an_existing_file(run, tmp_path, capsys):
    out = tmp_path / "scores" / "fid.json"
    assert main(["eval", str(run), "--n", "200", "--metrics", "fid", "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    first = json.loads(out.read_text())
    assert first["n_generated"] == 200 and set(first["metrics"]) == {"fid"}
    assert main(["eval", str(run), "--n", "300", "--metrics", "fid", "--out", str(out)]) == 2
    assert "already exists" in _errors(capsys)[0] and json.loads(out.read_text()) == first
    assert main(["eval", str(run), "--n", "300", "--metrics", "fid", "--out", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["n_generated"] == 300


def test_eval_bad_input(run, tmp_path, capsys):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    shutil.copy(run / "config.yaml", empty / "config.yaml")
    cases = [
        (["eval", str(empty)], "has no checkpoint yet"),
        (["eval", str(run), "--metrics", "fid,sharpness"], "unknown metric 'sharpness'"),
        (
            ["eval", str(run), "--metrics", "fid,class_acc"],
            "metric class_acc scores class-conditional samples; this generator is unconditional",
        ),
        (
            ["eval", str(run), "--features", "inception", "--inception-weights", str(tmp_path / "none.pth")],
            "no Inception-v3 weight file at",
        ),
        (["eval", str(run), "--n", "1"], "--n must be at least 4 (metric pr needs them), got 1"),
        (["eval", str(run), "--n", "1", "--metrics", "fid"], "--n must be at least 2 (metric fid needs them), got 1"),
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
