"""R3GAN's schedules: values against hand computation, what they set in a step, refusals, and exact resume."""

import json
import math

import pytest
import torch

from gankit.augment.ada import AdaptiveAugment
from gankit.errors import GankitError
from gankit.training.loop import config_step
from gankit.training.schedules import Schedules, progress
from gankit.training.state import EMAUpdate, new_state

from conftest import straight_and_split, tiny_config

# every schedule over 0.256 thousand images (4 steps of the tiny variant's 64), as R3GAN's CIFAR-10 config sets them
R3GAN_LIKE = (
    "schedule.kimg=0.256",
    "schedule.lr_end=0.25",
    "schedule.beta2_end=0.99",
    "train.beta2=0.9",
    "train.r1_gamma=0.05",
    "train.r2_gamma=0.05",
    "schedule.gamma_end=0.1",
    "schedule.ema_kimg_end=0.5",
    "schedule.augment_p_end=0.55",
)


def test_progress_is_half_a_cosine_wave_or_a_line_and_then_holds():
    assert progress("cosine", 0, 1000) == 0.0
    assert progress("cosine", 250, 1000) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)  # 0.1464
    assert progress("cosine", 500, 1000) == pytest.approx(0.5)
    assert progress("cosine", 1000, 1000) == pytest.approx(1.0)
    assert progress("cosine", 5000, 1000) == 1.0
    assert progress("linear", 250, 1000) == 0.25


def test_apply_sets_rates_betas_gammas_and_p_where_the_images_seen_put_them():
    config = tiny_config(*R3GAN_LIKE)
    state = new_state(config, torch.device("cpu"))
    step = config_step(state, torch.device("cpu"), augment=state.augment)
    schedules = Schedules.of(config)
    assert schedules is not None and isinstance(state.augment, AdaptiveAugment)
    schedules.apply(state, step, 128)  # half way: cosine progress 0.5
    for optimiser, start in ((state.opt_g, config.train.lr_g), (state.opt_d, config.train.lr_d)):
        (group,) = optimiser.param_groups
        assert group["lr"] == pytest.approx(start * (1 + 0.25) / 2)
        assert group["betas"] == (config.train.beta1, pytest.approx((0.9 + 0.99) / 2))
    assert step.term_weights == {"r1_penalty": pytest.approx(0.55), "r2_penalty": pytest.approx(0.55)}
    assert state.augment.p.item() == pytest.approx(0.275)
    schedules.apply(state, step, 10_000)  # past the end: the end values hold
    assert state.opt_g.param_groups[0]["lr"] == pytest.approx(config.train.lr_g * 0.25)
    assert step.term_weights["r1_penalty"] == pytest.approx(0.1)
    assert state.augment.p.item() == pytest.approx(0.55)


def test_the_moving_average_half_life_ramps_up_from_a_copy():
    config = tiny_config(*R3GAN_LIKE)
    schedules = Schedules.of(config)
    assert schedules is not None
    assert schedules.ema_decay(0, images_per_update=64) == 0.0  # half-life 0: G_ema copies G
    half_life = 0.5 * 500  # half way through the ramp to 0.5 kimg
    assert schedules.ema_decay(128, images_per_update=64) == pytest.approx(0.5 ** (64 / half_life))
    state = new_state(config, torch.device("cpu"))
    assert state.G_ema is not None  # kept without train.ema_decay
    with torch.no_grad():
        for p in state.G.parameters():
            p.add_(1.0)
    step = config_step(state, torch.device("cpu"))
    step.d_updates = 1  # the first step's D update: 0 images before it
    EMAUpdate(state)(step)
    assert all(torch.equal(a, g) for a, g in zip(state.G_ema.parameters(), state.G.parameters()))


def test_a_scheduled_gamma_scales_the_penalties_the_step_adds():
    config = tiny_config("schedule.kimg=1", "schedule.gamma_end=0", "train.r1_gamma=1", "schedule.shape=linear")
    real = torch.rand(8, 1, 28, 28)
    values = []
    for images in (0, 500):
        torch.manual_seed(0)
        state = new_state(config, torch.device("cpu"))
        step = config_step(state, torch.device("cpu"))
        Schedules(config).apply(state, step, images)
        torch.manual_seed(1)
        values.append(step(real, torch.zeros(8, dtype=torch.long))["r1_penalty"].item())
    assert values[0] > 0
    assert values[1] == pytest.approx(values[0] / 2, rel=1e-5)  # the same nets and batch at half the weight


def test_a_run_with_every_schedule_resumes_exactly_and_records_p(mnist_dir, tmp_path):
    a, b = straight_and_split(mnist_dir, tmp_path, *R3GAN_LIKE, "train.loss=relativistic")
    for net in ("generator", "generator_ema", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    assert a["opt_d"]["param_groups"][0]["betas"][1] == pytest.approx(0.99)  # 16 steps: past the schedule's 4
    assert torch.equal(torch.as_tensor(a["augment"]["p"]), torch.as_tensor(b["augment"]["p"]))
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    first_epoch = [0.55 * progress("cosine", 64 * i, 256) for i in range(8)]  # each step's p, set before it
    assert [r["ada_p"] for r in records] == pytest.approx([sum(first_epoch) / 8, 0.55])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("schedule.lr_end=0.25",), "schedule.lr_end needs schedule.kimg"),
        (("schedule.kimg=0",), "schedule.kimg must be positive"),
        (("schedule.kimg=10", "schedule.shape=step"), "schedule.shape must be one of cosine, linear"),
        (("schedule.kimg=10", "schedule.lr_end=-1"), "schedule.lr_end is a fraction"),
        (("schedule.kimg=10", "schedule.lr_end=0.5", "train.lr_decay=linear"), "choose one"),
        (("schedule.kimg=10", "schedule.beta2_end=1"), r"schedule.beta2_end must be in \[0, 1\)"),
        (("schedule.kimg=10", "schedule.gamma_end=0.1"), "set train.r1_gamma or train.r2_gamma"),
        (("schedule.kimg=10", "schedule.ema_kimg_end=5", "train.ema_decay=0.999"), "nor train.ema_warmup"),
        (("schedule.kimg=10", "schedule.ema_kimg_end=5", "train.ema_warmup=100"), "nor train.ema_warmup"),
        (("schedule.kimg=10", "schedule.augment_p_end=1.5"), r"schedule.augment_p_end is a probability in \[0, 1\]"),
        (("schedule.kimg=10", "schedule.augment_p_end=0.5", "train.ada_target=0.6"), "goes with neither"),
    ],
)
def test_bad_schedules_are_refused_in_one_line(overrides, message):
    with pytest.raises(GankitError, match=message):
        tiny_config(*overrides)
