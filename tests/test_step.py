"""The training step: one screen of maths, checked for what it must and must not touch."""

import json

import pytest
import torch

import gankit
from gankit.data import unlabelled
from gankit.losses import LOSSES
from gankit.plots import history_panels
from gankit.terms import Term
from gankit.training.loop import step_terms
from gankit.training.state import new_state
from gankit.training.step import GANStep

from conftest import tiny_config, train_tiny


def _step(*overrides, terms=(), loss=None, **kwargs):
    """A step of the tiny config, with extra `terms`, or with its loss's terms replaced by `loss`'s."""
    config = tiny_config(*overrides)
    state = new_state(config, torch.device("cpu"))
    config_terms = step_terms(config, terms)
    if loss is not None:
        config_terms = [*loss.terms(), *(t for t in config_terms if t.name not in ("d_loss", "g_loss"))]
    return GANStep(state.G, state.D, state.opt_g, state.opt_d, config_terms, device=torch.device("cpu"), **kwargs)


def _batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """n random MNIST-shaped images and their labels (an unconditional model's, all 0)."""
    real = torch.rand(n, 1, 28, 28)
    return real, unlabelled(real)


def _grads(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def _same(a, b):
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b)
    )


def test_a_joint_discriminator_forward_equals_two_separate_ones():
    step = _step("model.dropout=0.0")
    real, fake = torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28)
    assert step.joint_d
    joint = step.discriminate(real, unlabelled(real), fake, unlabelled(fake))
    step.joint_d = False
    separate = step.discriminate(real, unlabelled(real), fake, unlabelled(fake))
    for (a, a_classes), (b, b_classes) in zip(joint, separate):
        assert a.shape == (16,) and torch.allclose(a, b, atol=1e-6)
        assert a_classes is None and b_classes is None


def test_each_net_s_update_leaves_the_other_net_s_gradients_alone():
    step = _step()
    updates = []

    def recording_update(optimiser, loss):
        before = _grads(step.G), _grads(step.D)
        GANStep._update(optimiser, loss)
        updates.append((optimiser, before, (_grads(step.G), _grads(step.D))))

    step._update = recording_update
    real = torch.rand(64, 1, 28, 28)
    step(real, unlabelled(real))
    step(real, unlabelled(real))  # the second D update starts with G's gradients from the first G update in place
    for optimiser, (g_before, d_before), (g_after, d_after) in updates:
        if optimiser is step.opt_d:
            assert _same(g_before, g_after)  # D's step: G's gradients untouched
            assert all(g is not None for g in d_after)
        else:
            assert _same(d_before, d_after)  # G's step: D's gradients untouched (no gradient for D's weights)
            assert all(g is not None for g in g_after)
    assert [u[0] for u in updates] == [step.opt_d, step.opt_g] * 2


def test_d_requires_grad_is_restored_after_g_s_step_even_when_it_fails():
    class Broken(LOSSES["nonsaturating"]):
        def g_loss(self, fake):
            raise RuntimeError("a loss that fails")

    step = _step(loss=Broken())
    step(*_batch(), update_g=False)
    assert all(p.requires_grad for p in step.D.parameters())
    with pytest.raises(RuntimeError, match="a loss that fails"):
        step(*_batch())
    assert all(p.requires_grad for p in step.D.parameters())


def test_stats_are_named_device_scalars():
    stats = _step()(*_batch())
    assert list(stats) == ["d_loss", "g_loss", "d_acc_real", "d_acc_fake"]
    assert all(v.shape == () and v.dtype == torch.float32 and not v.requires_grad for v in stats.values())


def test_a_penalty_s_term_appears_everywhere_without_edits(mnist_dir, tmp_path):
    toy_penalty = Term(
        "toy_penalty", "D", lambda seen: 1e-3 * seen.logits(seen.real_images, seen.real_labels).square().mean()
    )

    step = _step(terms=[toy_penalty])
    stats = step(*_batch())
    assert list(stats) == ["d_loss", "toy_penalty", "g_loss", "d_acc_real", "d_acc_fake"]
    assert stats["toy_penalty"] > 0

    run = train_tiny(
        mnist_dir, tmp_path / "r", "train.epochs=2", "output.tensorboard=true", hooks=gankit.Hooks(terms=[toy_penalty])
    )
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["toy_penalty"] > 0 for r in records)
    assert ("toy_penalty", ["toy_penalty"]) in history_panels(records)
    assert "toy_penalty (last epoch)" in (run.path / "report.html").read_text()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert "train/toy_penalty" in EventAccumulator(str(run.path / "tensorboard")).Reload().Tags()["scalars"]


def test_after_step_hooks_get_the_step_after_both_updates(mnist_dir, tmp_path):
    seen = []

    def hook(step):  # both optimisers have stepped as often as the hook has run
        steps = [int(next(iter(o.state.values()))["step"]) for o in (step.opt_d, step.opt_g)]
        seen.append(steps)

    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", hooks=gankit.Hooks(after_step=[hook]))
    assert seen == [[i, i] for i in range(1, 512 // 64 + 1)] and run.metrics()[-1]["epoch"] == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_runs_a_step(loss, precision):
    from gankit.device import cpu_supports_bf16

    if precision == "bf16" and not cpu_supports_bf16():
        pytest.skip("this CPU has no bf16 support")
    critic = ["model.spectral_norm=d"] if loss == "wgan" else []  # a Wasserstein critic needs a Lipschitz constraint
    step = _step(f"train.loss={loss}", *critic, precision=precision)
    stats = step(*_batch())
    assert all(torch.isfinite(v) for v in stats.values()), stats


@pytest.mark.parametrize("g_noise", ["shared", "fresh"])
def test_g_learns_from_the_images_d_saw_or_from_fresh_noise(g_noise):
    step = _step(fresh_g_noise=g_noise == "fresh")
    seen = []
    forward = step.G.forward
    step.G.forward = lambda z, y=None: seen.append(z.clone()) or forward(z, y)
    real = torch.rand(64, 1, 28, 28)
    torch.manual_seed(5)
    expected = [step.G.sample_noise(64) for _ in range(2)]  # the stream's first two noise batches
    torch.manual_seed(5)
    step(real, unlabelled(real))
    if g_noise == "shared":  # one forward: D's images, reused for G's update
        assert len(seen) == 1 and torch.equal(seen[0], expected[0])
    else:  # D's images, then a second batch for G's update, drawn before either forward
        assert len(seen) == 2 and torch.equal(seen[0], expected[0]) and torch.equal(seen[1], expected[1])
