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


def test_spectral_norm_makes_each_layer_s_largest_singular_value_one():
    from gankit.config import apply_overrides, load_preset
    from gankit.models import build_models

    torch.manual_seed(0)
    G, D = build_models(apply_overrides(load_preset("dcgan-mnist"), ["model.spectral_norm=d", "model.base_channels=8"]))
    D.train()
    x = torch.rand(4, 1, 32, 32)
    for _ in range(30):  # power iterations run in training-mode forwards
        D(x)
    layers = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(layers) == 5 and not any(hasattr(m, "parametrizations") for m in G.modules())
    for layer in layers:
        weight = layer.weight.detach().flatten(1)  # the normalised weight
        assert abs(torch.linalg.matrix_norm(weight, ord=2).item() - 1.0) < 0.01


def test_spectral_norm_trains_and_resumes_exactly(mnist_dir, tmp_path):
    import gankit
    from conftest import tiny_config
    from gankit.checkpoint import list_checkpoints, load_checkpoint

    train_tiny(mnist_dir, tmp_path / "straight", "train.epochs=2", "model.spectral_norm=both", "train.r1_gamma=1")
    train_tiny(mnist_dir, tmp_path / "split", "train.epochs=1", "model.spectral_norm=both", "train.r1_gamma=1")
    gankit.train(tiny_config("train.epochs=2", "model.spectral_norm=both", "train.r1_gamma=1"), tmp_path / "split",
                 resume=True)
    a, b = (load_checkpoint(list_checkpoints(p / "checkpoints")[-1]) for p in (tmp_path / "straight", tmp_path / "split"))
    for net in ("generator", "discriminator"):
        assert any("parametrizations" in key for key in a[net])
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
