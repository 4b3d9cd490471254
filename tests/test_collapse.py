"""Telling the user when D has won outright: marks in metrics.jsonl, one warning line, a banner, an optional stop."""

import json
import logging

import pytest

from gankit import collapse
from gankit.config import load_preset
from gankit.report import _collapse_banner
from gankit.training.callbacks import CollapseWatch, EpochEnd

from conftest import train_tiny


class _State:
    def __init__(self, config, epoch):
        self.config, self.epoch = config, epoch


def _watch(records, **train):
    config = load_preset("report-gan-mnist")
    for key, value in train.items():
        setattr(config.train, key, value)
    watch, history, stops = CollapseWatch(config), [], []
    for i, record in enumerate(records, 1):
        record["epoch"] = i
        history.append(record)
        event = EpochEnd(_State(config, i), None, record, history)
        watch.on_epoch_end(event)
        stops.append(event.stop)
    return history, stops


WON = {"d_acc_real": 1.0, "d_acc_fake": 0.9995, "g_loss": 15.0}
CLOSE = {"d_acc_real": 0.99, "d_acc_fake": 1.0, "g_loss": 9.0}  # D wins on the fakes only: not outright


def test_marks_every_epoch_and_warns_once_the_streak_is_long_enough(caplog):
    with caplog.at_level(logging.WARNING):
        history, stops = _watch([dict(CLOSE), dict(WON), dict(WON), dict(WON), dict(WON)])
    assert [r["collapsed"] for r in history] == [False, True, True, True, True]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("D has won outright since epoch 2 (D accuracy >= 0.999")
    assert "gan-mnist-tanh" in warnings[0]
    assert stops == [None] * 5  # train.on_collapse warn: the run goes on


def test_a_low_g_loss_or_a_broken_streak_is_no_collapse(caplog):
    with caplog.at_level(logging.WARNING):
        history, _ = _watch([dict(WON), dict(WON), {**WON, "g_loss": 2.0}, dict(WON), dict(WON)])
    assert [r["collapsed"] for r in history] == [True, True, False, True, True]
    assert not caplog.records


def test_a_win_goes_on_while_d_stays_all_but_sure():
    # a dead run's D can hover at 0.998 for good: once it has won outright, >= 0.99 on both sides keeps the mark,
    # but >= 0.99 alone never starts one (a live run's first epochs look like that)
    hovering = {"d_acc_real": 0.998, "d_acc_fake": 0.9985, "g_loss": 12.5}
    history, _ = _watch(
        [dict(hovering), dict(WON), dict(hovering), dict(hovering), {**hovering, "d_acc_real": 0.98}, dict(hovering)]
    )
    assert [r["collapsed"] for r in history] == [False, True, True, True, False, False]


def test_an_epoch_without_a_g_update_carries_the_win_as_it_stood():
    # train.d_steps longer than an epoch leaves some epochs without G's terms: D's accuracy alone decides nothing
    no_g = {"d_acc_real": 1.0, "d_acc_fake": 1.0}
    history, _ = _watch([dict(no_g), dict(WON), dict(no_g), {**no_g, "d_acc_fake": 0.5}, dict(no_g)])
    assert [r["collapsed"] for r in history] == [False, True, True, False, False]


def test_records_marked_by_an_older_rule_are_marked_afresh():
    # written when only >= 0.999 counted: the hovering epochs after the win carry no mark
    old = [{"epoch": 1, **WON, "collapsed": True}] + [
        {"epoch": e, "d_acc_real": 0.998, "d_acc_fake": 0.999, "g_loss": 12.0, "collapsed": False} for e in (2, 3)
    ]
    marked = collapse.remark_collapses(old, 5.0)
    assert [r["collapsed"] for r in marked] == [True, True, True] and not old[1]["collapsed"]
    assert collapse.collapse_stretches(marked, 3) == [(1, 3)]
    assert [r["collapsed"] for r in collapse.remark_collapses(old, 20.0)] == [False, False, False]  # G's loss too low


def test_stop_ends_the_run_after_the_streak():
    _, stops = _watch([dict(WON) for _ in range(4)], on_collapse="stop", collapse_epochs=2)
    assert stops[:1] == [None]
    assert stops[1] == "the run stopped after epoch 2: D has won outright since epoch 1 (train.on_collapse stop)"


@pytest.mark.parametrize(
    "loss, won, fighting",
    [
        ("minimax", -0.001, -0.2),  # E[log(1 - D(G(z)))] rises to 0 as D gets sure of every fake
        ("lsgan", 0.49, 0.2),  # ½E[(D(G(z)) - 1)²] rises to ½
    ],
)
def test_each_loss_has_its_own_g_loss_threshold(loss, won, fighting):
    history, _ = _watch([{**WON, "g_loss": won}, {**WON, "g_loss": fighting}], loss=loss)
    assert [r["collapsed"] for r in history] == [True, False]


def test_the_report_banner_names_the_stretches():
    records = [{"epoch": e, "collapsed": e in (2, 3, 4, 7, 9, 10, 11)} for e in range(1, 12)]
    banner = _collapse_banner(records, 3)
    assert "D won outright in epochs 2 to 4, epochs 9 to 11" in banner and "had not recovered" in banner
    early = _collapse_banner(records[:6], 3)
    assert "D won outright in epochs 2 to 4 (" in early and "had not recovered" not in early  # one stretch, over
    assert _collapse_banner([{"epoch": 1, "collapsed": False}], 3) == ""


def test_a_run_told_to_stop_on_collapse_stops_with_its_checkpoint_and_banner(mnist_dir, tmp_path, monkeypatch, caplog):
    for name in ("COLLAPSE_ACCURACY", "STILL_WON_ACCURACY"):  # every epoch counts as won outright
        monkeypatch.setattr(collapse, name, 0.0)
    with caplog.at_level(logging.WARNING):
        run = train_tiny(
            mnist_dir,
            tmp_path / "r",
            "train.epochs=5",
            "train.collapse_epochs=2",
            "train.collapse_g_loss=-100",
            "train.on_collapse=stop",
        )
    assert "the run stopped after epoch 2: D has won outright since epoch 1" in caplog.text
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["collapsed"]) for r in records] == [(1, True), (2, True)]
    assert (run.path / "checkpoints" / "epoch-0002.pt").is_file()
    assert "D won outright in epochs 1 to 2" in (run.path / "report.html").read_text()
