"""R2: R1's penalty on generated images, one file of gankit.regularisers."""

import pytest
import torch

from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.regularisers import config_terms
from gankit.regularisers.r2 import r2_penalty
from gankit.terms import Seen

from conftest import tiny_config, train_tiny


def _seen(D, real, fake, fake_labels=None):
    fake_labels = unlabelled(fake) if fake_labels is None else fake_labels
    return Seen(lambda x, labels: (D(x, labels), None), real, unlabelled(real), fake, fake_labels)


def test_r2_is_taken_at_the_generated_images_only():
    # D(x) = ½‖x‖²: ∇ₓ D = x, so R2 = γ/2 · mean ‖fake‖², whatever the real images are
    D = lambda x, labels: 0.5 * x.flatten(1).square().sum(1)  # noqa: E731
    real, fake = 10 + torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    term = r2_penalty(_seen(D, real, fake), 4.0)
    assert term.item() == pytest.approx(0.5 * 4.0 * fake.flatten(1).square().sum(1).mean().item(), rel=1e-6)


def test_r2_asks_d_about_the_generated_images_classes_and_reaches_d_s_weights():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    asked = []
    D = lambda x, labels: asked.append(labels) or net(x).squeeze(1)  # noqa: E731
    fake_labels = torch.tensor([1, 0, 1])
    r2_penalty(_seen(D, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), fake_labels), 1.0).backward()
    assert asked == [fake_labels]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net[1].parameters())


def test_r2_from_the_config_is_a_lazy_term_of_d_s_loss_after_r1():
    config = tiny_config("train.r1_gamma=1", "train.r2_gamma=2", "train.r2_every=4")
    assert [(t.name, t.net, t.every) for t in config_terms(config.train)] == [
        ("r1_penalty", "D", 1),
        ("r2_penalty", "D", 4),
    ]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.r2_gamma=-1", "train.r2_gamma must be >= 0, got -1"),
        ("train.r2_every=0", "train.r2_every must be positive"),
        ("train.r2_every=4", "train.r2_every 4 makes the R2 penalty lazy, but train.r2_gamma is 0 (no penalty)"),
    ],
)
def test_r2_options_are_checked(override, message):
    with pytest.raises(GankitError, match=None) as err:
        tiny_config(override)
    assert message in str(err.value)


def test_r2_trains_and_is_reported(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.r2_gamma=10")
    record = run.metrics()[-1]
    assert record["r2_penalty"] > 0 and "r1_penalty" not in record
