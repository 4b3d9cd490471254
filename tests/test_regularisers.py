import torch

from conftest import train_tiny
from gankit.regularisers import r1_penalty


def test_r1_against_its_definition_on_a_linear_discriminator():
    # D(x) = x · w: ∇ₓ D = w for every image, so R1 = γ/2 · ‖w‖²
    w = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    D = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real = torch.randn(5, 1, 2, 2)
    term = r1_penalty(10.0)(D, real, real)["r1_penalty"]
    assert term.item() == torch.tensor(0.5 * 10.0 * (1 + 4 + 0.25 + 9)).item()


def test_r1_gradient_reaches_d_s_weights():
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    term = r1_penalty(1.0)(lambda x: D(x).squeeze(1), torch.randn(6, 1, 2, 2), None)["r1_penalty"]
    term.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D[1].parameters())


def test_r1_from_the_config_trains_and_is_reported(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=1", "train.r1_gamma=10")
    assert run.metrics()[-1]["r1_penalty"] > 0
