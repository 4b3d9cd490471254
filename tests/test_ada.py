"""ADA: the pipeline's changes, the adjustment of p by hand, its wiring into the step, and exact resume."""

import json
import math

import pytest
import torch

from gankit.augment.ada import AdaptiveAugment, _colour, _geometry, _rotate_about, augment
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.training.loop import config_step
from gankit.training.state import new_state

from conftest import straight_and_split, tiny_config


def test_at_p_zero_the_pipeline_changes_nothing():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    assert torch.allclose(augment(x, 0.0), x, atol=1e-5)
    assert torch.allclose(augment(x[:, :1], 0.0), x[:, :1], atol=1e-5)
    assert torch.equal(_colour(8, torch.tensor(0.0), x.device), torch.eye(4).expand(8, 4, 4))
    assert torch.allclose(_geometry(8, 16, torch.tensor(0.0), x.device), torch.eye(3).expand(8, 3, 3))


def test_at_p_one_every_image_changes_and_the_maps_flip_scale_and_shift_as_drawn():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    changed = (augment(x, 1.0) - x).abs().flatten(1).amax(1)
    assert (changed > 0.05).all()
    torch.manual_seed(1)
    maps = _geometry(4000, 16, torch.tensor(1.0), x.device)
    determinant = torch.linalg.det(maps[:, :2, :2])  # rotations keep it; the flip negates it; scales: 2^(2·0.2·N)
    assert 0.45 < (determinant < 0).float().mean() < 0.55
    assert torch.log2(determinant.abs()).std().item() == pytest.approx(0.4, rel=0.1)
    # shifts: integer ones up to 1/8 of the side, plus normal ones of σ 1/8 (in [-1, 1] coordinates: × 2)
    assert maps[:, :2, 2].abs().max() < 2.0 and maps[:, 0, 2].std().item() == pytest.approx(0.3, rel=0.2)


def test_hue_rotation_keeps_grey_and_the_length_of_a_colour():
    luma = torch.full((3,), 1 / math.sqrt(3))
    rotation = _rotate_about(luma, torch.tensor([0.3, -2.0, math.pi]))
    assert torch.allclose(rotation @ luma, luma.expand(3, 3), atol=1e-6)
    colour = torch.tensor([0.5, -0.2, 0.1])
    assert torch.allclose((rotation @ colour).norm(dim=1), colour.norm().expand(3), atol=1e-6)
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)


def test_a_grey_image_stays_grey_and_colour_changes_keep_mid_grey_at_mid_grey_on_average():
    torch.manual_seed(0)
    grey = torch.rand(32, 3, 8, 8).mean(1, keepdim=True).expand(32, 3, 8, 8) * 2 - 1
    out = augment(grey, 1.0)
    # hue and saturation turn about the grey axis, luma flip reflects across it: grey stays grey
    assert torch.allclose(out - out.mean(1, keepdim=True), torch.zeros_like(out), atol=1e-5)


def test_r1_gets_the_gradient_of_a_gradient_through_the_pipeline():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    out = torch.nn.functional.conv2d(augment(x, 1.0), w).square().sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    grad.square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_p_moves_by_the_images_seen_over_the_speed_in_the_direction_of_r_t():
    ada = AdaptiveAugment((-1.0, 1.0), target=0.6, speed_kimg=0.5, interval=2)
    confident = torch.tensor([2.0, 1.0, 3.0, -1.0])  # signs sum to 2 of 4: r_t 0.5 alone
    ada.observe(torch.ones(4))
    assert ada.p.item() == 0.0  # adjusted every 2 updates only
    ada.observe(torch.ones(4))  # r_t = 1 > 0.6: p rises by 8 images / 500
    assert ada.rt.item() == 1.0 and ada.p.item() == pytest.approx(8 / 500)
    ada.observe(confident), ada.observe(confident)  # r_t = 0.5 < 0.6: falls back by as much
    assert ada.rt.item() == 0.5 and ada.p.item() == pytest.approx(0.0)
    ada.observe(-torch.ones(4)), ada.observe(-torch.ones(4))
    assert ada.p.item() == 0.0  # never below 0
    for _ in range(400):
        ada.observe(torch.ones(4))
    assert ada.p.item() == 1.0  # nor above 1
    stats = ada.stats()
    assert set(stats) == {"ada_p", "ada_rt"} and stats["ada_p"].item() == 1.0


def test_the_state_round_trips_mid_interval():
    ada = AdaptiveAugment((-1.0, 1.0), target=0.6, speed_kimg=0.5, interval=4)
    for logits in (torch.ones(4), torch.ones(4), torch.ones(4), torch.ones(4), -torch.ones(4)):
        ada.observe(logits)
    copy = AdaptiveAugment((-1.0, 1.0), target=0.6, speed_kimg=0.5, interval=4)
    copy.load_state_dict(ada.state_dict())
    for a in (ada, copy):
        for _ in range(3):
            a.observe(torch.ones(4))
    assert ada.p.item() == copy.p.item() and ada.rt.item() == copy.rt.item() == 0.5


def test_ada_trains_with_r1_records_p_and_resumes_exactly(mnist_dir, tmp_path):
    ada = ("train.ada_target=0.6", "train.ada_kimg=0.5", "train.ada_interval=2", "train.r1_gamma=1")
    a, b = straight_and_split(mnist_dir, tmp_path, *ada)
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    assert set(a["augment"]) == {"p", "rt", "signs", "seen", "updates"}
    assert all(torch.equal(torch.as_tensor(a["augment"][k]), torch.as_tensor(b["augment"][k])) for k in a["augment"])
    assert a["augment"]["rt"].item() != 0  # the sums were running, not left at their start
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["ada_p"] <= 1.0 and -1.0 <= r["ada_rt"] <= 1.0 for r in records)


def test_the_step_tells_ada_d_s_real_outputs_on_every_d_update():
    config = tiny_config("train.ada_target=0.6", "train.ada_kimg=0.5", "train.ada_interval=2")
    torch.manual_seed(0)
    state = new_state(config, torch.device("cpu"))
    with torch.no_grad():  # D calls everything real: r_t = 1
        [m for m in state.D.modules() if isinstance(m, torch.nn.Linear)][-1].bias.fill_(100.0)
    step = config_step(state, torch.device("cpu"), augment=state.augment)
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    assert step(real, unlabelled(real))["ada_p"].item() == 0.0  # one D update: not adjusted yet
    assert step(real, unlabelled(real))["ada_p"].item() == pytest.approx(8 / 500)  # 8 images over 0.5 kimg
    assert state.augment.rt.item() == 1.0


def test_under_the_relativistic_loss_ada_reads_pair_gaps_not_the_level_of_d_s_outputs():
    rates = []
    for level in (100.0, -100.0):  # D's level alone would read as r_t = 1 or -1
        config = tiny_config("train.loss=relativistic", "train.ada_target=0.6", "train.ada_interval=2")
        torch.manual_seed(0)
        state = new_state(config, torch.device("cpu"))
        with torch.no_grad():
            [m for m in state.D.modules() if isinstance(m, torch.nn.Linear)][-1].bias.fill_(level)
        step = config_step(state, torch.device("cpu"), augment=state.augment)
        real = torch.rand(64, 1, 28, 28) * 2 - 1
        step(real, unlabelled(real))
        stats = step(real, unlabelled(real))
        assert stats["d_acc_real"].item() == stats["d_acc_fake"].item()  # both sides are the pairs' one call
        rates.append(state.augment.rt.item())
    assert rates[0] == rates[1] and abs(rates[0]) < 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("train.ada_target=1.2",), r"train.ada_target must be in \(0, 1\)"),
        (("train.ada_target=0",), r"train.ada_target must be in \(0, 1\)"),
        (("train.ada_target=0.6", "train.ada_kimg=0"), "train.ada_kimg must be > 0"),
        (("train.ada_target=0.6", "train.ada_interval=0"), "train.ada_interval must be >= 1"),
        (("train.ada_target=0.6", "train.diffaugment=color"), "choose one"),
    ],
)
def test_bad_ada_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(GankitError, match=message):
        tiny_config(*overrides)
