"""Quality per compute: `gankit compare` of runs scored while training, and the report's figure of one run."""

from __future__ import annotations

import itertools
import shutil

import pytest
from PIL import Image

import gankit
import gankit.training.trainer
from gankit.cli import main
from gankit.quality import Curve, quality_curve, quality_figure, quality_svg
from gankit.training import callbacks

from conftest import SHARED_DATA, tiny_config, train_tiny


def _made_up_scores(monkeypatch, figures, features="made-up", n=100):
    """Scores without an evaluator: the same callback path, figures chosen by the test."""
    it = iter(figures)

    def score(scorer, G, seed=0):
        return {"features": features, "n_generated": n, "metrics": {"fid": next(it)}}

    monkeypatch.setattr(callbacks, "score", score)
    monkeypatch.setattr(gankit.training.trainer, "make_scorer", lambda *args, **kwargs: object())


def _scored_run(mnist_dir, path, monkeypatch, figures, **kwargs):
    _made_up_scores(monkeypatch, figures, **kwargs)
    train_tiny(mnist_dir, path, f"train.epochs={len(figures)}", "output.eval_every=1")
    return path


@pytest.fixture(scope="module")
def two_runs(mnist_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        first = _scored_run(mnist_dir, root / "first", patch, [9.0, 4.0, 6.0])
        second = _scored_run(mnist_dir, root / "second", patch, [8.0, 7.0, 5.0])
    return first, second


def test_compare_tables_and_plots_runs_against_images_and_minutes(two_runs, tmp_path, capsys):
    first, second = two_runs
    out = tmp_path / "plots" / "compare.png"
    assert main(["compare", str(first), str(second), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fid scored during training with made-up features on 100 samples"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    # run, scores, best fid, its kimg and minutes, last fid, its kimg and minutes
    assert rows[str(first)][1:4] == ["3", "4", "1.0"] and rows[str(first)][5:7] == ["6", "1.5"]
    assert rows[str(second)][1:4] == ["3", "5", "1.5"]
    assert lines[-1] == f"plot: {out}"
    with Image.open(out) as image:
        assert image.size[0] > image.size[1] > 100  # two panels side by side

    report = gankit.load_run(first).report()
    page = report.read_text()
    assert "<section id='quality'><h2>Quality per compute</h2>" in page and "<svg" in page.split("id='quality'")[1]


def test_compare_refuses_what_it_cannot_compare_and_writes_nothing(two_runs, mnist_dir, tmp_path, monkeypatch, capsys):
    first, _ = two_runs
    other_features = _scored_run(mnist_dir, tmp_path / "inception", monkeypatch, [3.0], features="inception-v3")
    other_n = _scored_run(mnist_dir, tmp_path / "fewer", monkeypatch, [3.0], n=50)
    unscored = tmp_path / "unscored"
    train_tiny(mnist_dir, unscored, "train.epochs=1")
    fashion = tmp_path / "fashion"
    _made_up_scores(monkeypatch, itertools.repeat(3.0))
    config = tiny_config("data.dataset=fashion-mnist", "train.epochs=1", "output.eval_every=1")
    gankit.train(config, fashion, data_dir=SHARED_DATA / "fashion-mnist")
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"mine")
    out = tmp_path / "c.png"
    cases = [
        (
            [other_features],
            f"runs scored differently cannot be compared: {first} with made-up features on 100 "
            f"samples, {other_features} with inception-v3 on 100",
        ),
        ([other_n], "runs scored differently cannot be compared"),
        ([unscored], f"{unscored} has no fid scores from training: score while training with output.eval_every"),
        ([fashion], f"runs of different data: {first} trains on mnist, {fashion} on fashion-mnist"),
        ([tmp_path / "nowhere"], "nowhere"),
    ]
    capsys.readouterr()
    for others, words in cases:
        assert main(["compare", str(first), *map(str, others), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (others, err)
    assert not out.exists()
    assert main(["compare", str(first), "--out", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"mine"
    assert main(["compare", str(first), "--metric", "precision"]) == 2
    damaged = shutil.copytree(first, tmp_path / "damaged")
    next((damaged / "eval").glob("*.json")).write_text("{not json")
    assert main(["compare", str(damaged), "--out", str(out)]) == 2
    assert "is not a score gankit wrote (JSONDecodeError)" in capsys.readouterr().err


def test_records_from_before_the_clock_have_no_place_on_the_curve():
    records = [{"epoch": 1, "fid": 9.0}, {"epoch": 2, "fid": 5.0, "kimg": 1.0, "elapsed_seconds": 90.0}]
    curve = quality_curve(records)
    assert (curve.kimg, curve.minutes, curve.values) == ([1.0], [1.5], [5.0])
    assert quality_svg(records[:1]) == ""  # the report leaves the figure out


def test_the_figure_names_what_each_panel_is_plotted_against():
    figure = quality_figure([Curve("a run", [1.0, 2.0], [0.5, 1.0], [9.0, 5.0])], key="fid")
    assert [ax.get_title() for ax in figure.axes] == ["fid against images seen", "fid against minutes of training"]
    assert [ax.get_xlabel() for ax in figure.axes] == ["thousand images seen", "minutes of training"]
