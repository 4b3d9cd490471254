import pytest
import torch

from gankit.config import apply_overrides, load_preset
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.models import build_models, count_parameters, to_uint8


def test_seed_gan_parameter_counts_match_the_layer_sizes():
    G, D = build_models(load_preset("report-gan-mnist"))
    # G: 100->256->512->1024->784, weights plus biases
    assert count_parameters(G) == (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
    assert count_parameters(G) == 1_486_352
    # D: 784->1024->512->256->1
    assert count_parameters(D) == (784 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + (256 + 1)
    assert count_parameters(D) == 1_460_225


def test_seed_gan_shapes_and_ranges():
    torch.manual_seed(0)
    G, D = build_models(load_preset("report-gan-mnist"))
    images = G.sample(16)
    assert images.shape == (16, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1  # sigmoid output, MNIST scaled to [0, 1]
    logits = D(images, unlabelled(images))
    assert logits.shape == (16,)
    assert torch.isfinite(logits).all()


def test_seed_gan_layers_are_the_reports():
    G, D = build_models(load_preset("report-gan-mnist"))
    linear = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [256, 512, 1024, 784]
    assert all(m.negative_slope == 0.2 for m in G.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert isinstance(list(G.modules())[-1], torch.nn.Sigmoid)
    assert [m.p for m in D.modules() if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3, 0.3]
    # Keras's Dense starts from zero biases
    assert all(m.bias.abs().sum() == 0 for m in linear)


def test_noise_distributions():
    config = load_preset("report-gan-mnist")
    G, _ = build_models(config)
    gen = torch.Generator().manual_seed(0)
    normal = G.sample_noise(20000, generator=gen)
    assert normal.shape == (20000, 100)
    assert abs(normal.mean()) < 0.01 and abs(normal.std() - 1) < 0.01
    config.model.noise = "uniform"
    G, _ = build_models(config)
    uniform = G.sample_noise(20000, generator=gen)
    assert uniform.min() >= -1 and uniform.max() <= 1
    assert abs(uniform.std() - (1 / 3) ** 0.5) < 0.01  # std of U(-1, 1)


def test_to_uint8_maps_both_ranges_once():
    assert to_uint8(torch.tensor([0.0, 0.5, 1.0]), (0.0, 1.0)).tolist() == [0, 128, 255]
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 3.0]), (-1.0, 1.0)).tolist() == [0, 128, 255, 255]


def test_the_output_activation_keeps_float32_gradients_under_bf16():
    # a saturating pixel: in bf16 sigmoid(7) rounds to exactly 1 and its gradient to exactly 0
    from gankit.models.base import Float32Output

    x = torch.full((4,), 7.0, dtype=torch.bfloat16, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    assert (x.grad == 0).all()
    x.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = Float32Output(torch.nn.Sigmoid())(x)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert torch.allclose(
        x.grad.float(),
        torch.full((4,), torch.sigmoid(torch.tensor(7.0)).item() * (1 - torch.sigmoid(torch.tensor(7.0)).item())),
        rtol=0.01,
    )


def test_the_report_s_models_keep_their_parameter_names_so_old_checkpoints_load():
    """Frozen: conditional models came later, and must not have renamed an unconditional model's weights."""
    mlp_g, mlp_d = build_models(load_preset("report-gan-mnist"))
    assert list(mlp_g.state_dict()) == [f"net.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")]
    assert list(mlp_d.state_dict()) == [f"net.{i}.{p}" for i in (1, 4, 7, 10) for p in ("weight", "bias")]
    conv_g, conv_d = build_models(load_preset("report-dcgan-cifar10"))
    norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    assert list(conv_g.state_dict()) == [
        "project.0.weight",
        *(f"project.1.{p}" for p in norm),
        *(k for i in (0, 3, 6) for k in (f"net.{i}.weight", *(f"net.{i + 1}.{p}" for p in norm))),
        "net.9.weight",
        "net.9.bias",
    ]
    assert list(conv_d.state_dict()) == [
        "net.0.weight",
        "net.0.bias",
        *(k for i in (2, 5, 8) for k in (f"net.{i}.weight", *(f"net.{i + 1}.{p}" for p in norm))),
        "net.12.weight",
        "net.12.bias",
    ]


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_each_arch_s_facts_match_the_nets_it_builds(arch):
    from gankit.models import ARCHS, has_batch_norm

    entry = ARCHS[arch]
    base = {"mlp": "report-gan-mnist", "dcgan": "report-dcgan-cifar10", "resnet": "sngan-cifar10"}[arch]
    for conditioning in entry.conditionings:
        config = apply_overrides(load_preset(base), [f"model.conditioning={conditioning}", "model.base_channels=4"])
        config.model.num_classes = 0 if conditioning == "none" else 10
        G, D = build_models(config)
        assert (has_batch_norm(G), has_batch_norm(D)) == (entry.g_batch_norm, entry.d_batch_norm), conditioning
        assert entry.sizes is None or config.data.image_size in entry.sizes


@pytest.mark.parametrize("preset", ["report-gan-mnist", "report-dcgan-cifar10", "sngan-cifar10"])
def test_an_unconditional_model_takes_labels_ignores_them_and_draws_none(preset):
    """The zero-class case of the one conditional path: G and D take labels, an unconditional pair's are all 0 and
    change nothing, and drawing them leaves every RNG as it was (so runs keep their random streams)."""
    config = apply_overrides(load_preset(preset), ["model.base_channels=4"] if preset != "report-gan-mnist" else [])
    torch.manual_seed(0)
    G, D = build_models(config)
    G.eval(), D.eval()
    generator = torch.Generator().manual_seed(3)
    state, torch_state = generator.get_state(), torch.get_rng_state()
    labels = G.sample_labels(5, generator=generator)
    assert labels.tolist() == [0] * 5 and labels.dtype == torch.int64
    assert torch.equal(generator.get_state(), state) and torch.equal(torch.get_rng_state(), torch_state)
    z = G.sample_noise(5, generator=generator)
    with torch.no_grad():
        images = G(z, labels)
        assert torch.equal(images, G(z, torch.arange(5)))
        assert torch.equal(D(images, labels), D(images, torch.arange(5)))


def test_an_unconditional_model_with_classes_is_refused_even_when_built_unvalidated():
    config = load_preset("report-gan-mnist")
    config.model.num_classes = 10  # set in Python, past the config's own checks
    with pytest.raises(GankitError, match="model.num_classes is for conditional models: set model.conditioning"):
        build_models(config)
