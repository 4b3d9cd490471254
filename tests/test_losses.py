import math

import pytest
import torch

from gankit.config import TrainConfig
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.losses import LOSSES, LeastSquares, Minimax, NonSaturating, bce_discriminator_loss, build_loss

discriminator_loss = bce_discriminator_loss
minimax_generator_loss = Minimax().g_loss
nonsaturating_generator_loss = NonSaturating().g_loss

LN3 = math.log(3)
# D(x) = sigmoid(logit): logits 0 and ln 3 give probabilities 0.5 and 0.75; 0 and -ln 3 give 0.5 and 0.25
REAL = torch.tensor([0.0, LN3])
FAKE = torch.tensor([0.0, -LN3])


def test_discriminator_loss_by_hand():
    # -(mean(log 0.5, log 0.75) + mean(log(1 - 0.5), log(1 - 0.25)))
    expected = -((math.log(0.5) + math.log(0.75)) / 2 + (math.log(0.5) + math.log(0.75)) / 2)
    assert discriminator_loss(REAL, FAKE).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.980829, abs=1e-6)


def test_one_sided_label_smoothing_by_hand():
    # real target 0.9: -(0.9 log D + 0.1 log(1 - D)); fake target stays 0
    real = -((0.9 * math.log(0.5) + 0.1 * math.log(0.5)) + (0.9 * math.log(0.75) + 0.1 * math.log(0.25))) / 2
    fake = -(math.log(0.5) + math.log(0.75)) / 2
    assert discriminator_loss(REAL, FAKE, label_smoothing=0.1).item() == pytest.approx(real + fake, abs=1e-6)


def test_minimax_generator_loss_is_the_reports_formula():
    # E[log(1 - D(G(z)))] with D(G(z)) = 0.5, 0.25
    expected = (math.log(0.5) + math.log(0.75)) / 2
    assert minimax_generator_loss(FAKE).item() == pytest.approx(expected, abs=1e-6)


def test_nonsaturating_generator_loss_by_hand():
    # -E[log D(G(z))] with D(G(z)) = 0.5, 0.25
    expected = -(math.log(0.5) + math.log(0.25)) / 2
    assert nonsaturating_generator_loss(FAKE).item() == pytest.approx(expected, abs=1e-6)


def test_minimax_saturates_where_nonsaturating_does_not():
    # when D confidently rejects the fakes (D = sigmoid(-10)), minimax gives G almost no gradient
    logits = torch.full((4,), -10.0, requires_grad=True)
    minimax_generator_loss(logits).backward()
    weak = logits.grad.abs().max().item()
    logits.grad = None
    nonsaturating_generator_loss(logits).backward()
    strong = logits.grad.abs().max().item()
    assert weak < 1e-4 < 0.2 < strong


def test_losses_stay_finite_at_extreme_logits():
    extreme = torch.tensor([-200.0, 200.0])
    for value in (
        discriminator_loss(extreme, extreme),
        minimax_generator_loss(extreme),
        nonsaturating_generator_loss(extreme),
    ):
        assert torch.isfinite(value)


def test_both_bce_losses_share_the_discriminator_loss():
    for loss in (Minimax(label_smoothing=0.1), NonSaturating(label_smoothing=0.1)):
        assert loss.d_loss(REAL, FAKE).item() == pytest.approx(discriminator_loss(REAL, FAKE, 0.1).item(), abs=1e-7)


def test_losses_are_built_by_name_with_their_parameters():
    assert build_loss(TrainConfig(loss="minimax", label_smoothing=0.2)) == Minimax(label_smoothing=0.2)
    assert {"minimax", "nonsaturating"} <= set(LOSSES)
    with pytest.raises(GankitError, match="unknown loss 'wasserstein' \\(known: minimax, nonsaturating"):
        build_loss(TrainConfig(loss="wasserstein"))


def test_least_squares_by_hand():
    # D outputs 0.5 and 2 on real, 0 and -1 on fake: D loss ½·mean((0.5-1)², (2-1)²) + ½·mean(0², (-1)²)
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([0.0, -1.0])
    loss = LeastSquares()
    assert loss.d_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 1.0) / 2 + 0.5 * (0.0 + 1.0) / 2)
    assert loss.g_loss(fake).item() == pytest.approx(0.5 * (1.0 + 4.0) / 2)  # ½·mean((0-1)², (-1-1)²)
    assert loss.decision_threshold == 0.5


def test_least_squares_is_a_choice_of_the_config_and_trains(mnist_dir, tmp_path):
    from conftest import train_tiny

    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.loss=lsgan")
    assert run.config.train.loss == "lsgan" and "lsgan" in LOSSES
    assert 0 < run.metrics()[-1]["d_loss"] < 1
    with pytest.raises(GankitError, match="train.label_smoothing applies to the BCE losses, not to train.loss lsgan"):
        build_loss(TrainConfig(loss="lsgan", label_smoothing=0.1))


def test_keras_probability_clip_by_hand_and_its_dead_gradient():
    # p = 0.5 and 0.25 (logits 0 and -ln 3), well inside the clip: the same values as without it
    loss = NonSaturating(probability_clip=1e-7)
    assert loss.g_loss(FAKE).item() == pytest.approx(nonsaturating_generator_loss(FAKE).item(), abs=1e-6)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(discriminator_loss(REAL, FAKE).item(), abs=1e-6)
    # D sure the fake is fake (p = sigmoid(-30) < 1e-7): the loss is -log(1e-7) and G's gradient exactly 0
    sure = torch.tensor([-30.0], requires_grad=True)
    value = loss.g_loss(sure)
    value.backward()
    assert value.item() == pytest.approx(-math.log(1e-7), rel=1e-5) and sure.grad.item() == 0.0
    minimax = Minimax(probability_clip=1e-7)
    assert minimax.g_loss(FAKE).item() == pytest.approx(minimax_generator_loss(FAKE).item(), abs=1e-6)


def test_hinge_by_hand():
    # D outputs 0.5 and 2 on real, 0 and -3 on fake: mean(max(0, 1 - 0.5), max(0, 1 - 2)) + mean(max(0, 1 + 0), max(0, 1 - 3))
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([0.0, -3.0])
    loss = build_loss(TrainConfig(loss="hinge"))
    assert loss.d_loss(real, fake).item() == pytest.approx((0.5 + 0.0) / 2 + (1.0 + 0.0) / 2)
    assert loss.g_loss(fake).item() == pytest.approx(1.5)  # -mean(0, -3)


def test_wasserstein_loss_by_hand():
    loss = LOSSES["wgan"]()
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 0.0, 4.0])
    assert loss.d_loss(real, fake).item() == pytest.approx(1.0 - 3.0)  # E[D(G(z))] − E[D(x)]
    assert loss.g_loss(fake).item() == pytest.approx(-1.0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_runs_a_step_of_a_conv_gan_in_both_precisions(name, precision):
    from gankit.training.loop import config_step
    from gankit.training.state import new_state

    from conftest import tiny_config

    critic = ["train.gp_lambda=10"] if name == "wgan" else []  # WGAN-GP: its double backward in bf16 too
    config = tiny_config(
        f"train.loss={name}", f"train.precision={precision}", "model.base_channels=4", *critic, preset="dcgan-mnist"
    )
    torch.manual_seed(0)
    state = new_state(config, torch.device("cpu"))
    before = [p.detach().clone() for net in (state.G, state.D) for p in net.parameters()]
    step = config_step(state, torch.device("cpu"), precision=precision)
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    stats = step(real, unlabelled(real))
    assert {"d_loss", "g_loss"} <= set(stats) and all(torch.isfinite(v) for v in stats.values())
    assert ("gradient_penalty" in stats) == bool(critic)
    after = [p.detach() for net in (state.G, state.D) for p in net.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after) if a.dim() > 1)  # every weight matrix moved


def test_a_new_wasserstein_critic_without_a_lipschitz_constraint_is_refused(mnist_dir, tmp_path):
    import gankit

    from conftest import tiny_config

    with pytest.raises(GankitError, match="train.loss wgan needs D kept Lipschitz: set train.gp_lambda"):
        gankit.train(tiny_config("train.loss=wgan"), tmp_path / "r", data_dir=mnist_dir)
    assert not (tmp_path / "r").exists()
    run = gankit.train(
        tiny_config("train.loss=wgan", "model.spectral_norm=d", "train.epochs=1", "output.report=false"),
        tmp_path / "sn",
        data_dir=mnist_dir,
    )
    assert run.metrics()[-1]["epoch"] == 1


def test_a_gradient_penalty_on_a_batch_norm_critic_warns_when_the_run_starts(mnist_dir, tmp_path, caplog):
    import logging

    import gankit

    from conftest import tiny_config

    config = tiny_config(
        "train.loss=wgan",
        "train.gp_lambda=10",
        "model.base_channels=4",
        "train.epochs=1",
        "data.limit=128",
        "output.report=false",
        preset="dcgan-mnist",
    )
    warning = "train.gp_lambda with batch norm in D (model.arch dcgan)"
    with caplog.at_level(logging.WARNING):
        gankit.train(config, tmp_path / "r", data_dir=mnist_dir)
    assert warning in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # not again on resume: the run was warned when it started
        gankit.train(gankit.apply_overrides(config, ["train.epochs=2"]), tmp_path / "r", resume=True)
    assert warning not in caplog.text and gankit.load_run(tmp_path / "r").metrics()[-1]["epoch"] == 2


def test_relativistic_loss_by_hand_pairs_each_real_logit_with_a_generated_one():
    loss = LOSSES["relativistic"]()
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 1.0])
    softplus = lambda t: math.log1p(math.exp(t))  # noqa: E731
    assert loss.d_loss(real, fake).item() == pytest.approx((softplus(0.0 - 2.0) + softplus(1.0 + 1.0)) / 2)
    assert loss.paired_g_loss(fake, real).item() == pytest.approx((softplus(2.0 - 0.0) + softplus(-1.0 - 1.0)) / 2)


def test_margins_are_d_s_outputs_past_the_decision_threshold_and_the_relativistic_loss_s_are_pair_gaps():
    real, fake = torch.tensor([2.0, -1.0, 0.7]), torch.tensor([0.0, 1.0, 0.2])
    for name, threshold in (("nonsaturating", 0.0), ("hinge", 0.0), ("lsgan", 0.5)):
        real_margin, fake_margin = LOSSES[name]().margins(real, fake)
        assert torch.allclose(real_margin, real - threshold) and torch.allclose(fake_margin, threshold - fake)
    gaps = torch.tensor([2.0, -2.0, 0.5])
    for name in ("relativistic", "wgan"):
        for shift in (0.0, 100.0, -100.0):  # the loss cannot see a level added to every logit; neither can its margins
            real_margin, fake_margin = LOSSES[name]().margins(real + shift, fake + shift)
            assert torch.allclose(real_margin, gaps) and torch.allclose(fake_margin, gaps)


def test_the_relativistic_g_step_sees_d_on_real_images_and_others_do_not():
    from gankit.terms import Seen

    asked = []

    def critic(images, labels):
        asked.append(images)
        return images.flatten(1).sum(1), None

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    for name, sides in (("relativistic", [fake, real]), ("nonsaturating", [fake])):
        asked.clear()
        (g_term,) = [t for t in LOSSES[name]().terms() if t.net == "G"]
        value = g_term.fn(Seen(critic, real, unlabelled(real), fake, unlabelled(fake)))
        assert len(asked) == len(sides) and all(torch.equal(a, b) for a, b in zip(asked, sides))
        assert torch.isfinite(value)
