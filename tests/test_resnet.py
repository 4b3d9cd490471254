import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.checks import validate
from gankit.config import apply_overrides, load_preset
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.models import build_models, count_parameters
from gankit.models.resnet import DownBlock, UpBlock
from gankit.training.callbacks import Callback

from conftest import CIFAR_ARCHIVE


def _sngan(*overrides: str):
    return apply_overrides(load_preset("sngan-cifar10"), list(overrides))


def test_sngan_preset_is_mimicry_s_recipe():
    config = _sngan()
    t, m = config.train, config.model
    assert (m.arch, m.spectral_norm, m.noise_dim, config.data.image_size) == ("resnet", "d", 128, 32)
    assert (t.loss, t.d_steps, t.batch_size, t.lr_decay) == ("hinge", 5, 64, "linear")
    assert (t.lr_g, t.lr_d, t.beta1, t.beta2, t.beta1_d, t.beta2_d) == (2e-4, 2e-4, 0.0, 0.9, None, None)
    assert t.epochs * (50_000 // 64) // 5 == 99_968  # Mimicry's 100,000 G updates, to the epoch


def test_sngan_32_has_mimicry_s_layers_and_parameter_counts():
    G, D = build_models(_sngan())
    ups = [m for m in G.modules() if isinstance(m, UpBlock)]
    downs = [m for m in D.modules() if isinstance(m, DownBlock)]
    assert [(b.conv1.in_channels, b.conv1.out_channels) for b in ups] == [(256, 256)] * 3
    assert [(b.conv1.in_channels, b.conv1.out_channels, b.down) for b in downs] == [
        (3, 128, True),
        (128, 128, True),
        (128, 128, False),
        (128, 128, False),
    ]
    # by hand: G = Dense 128 -> 4096 + 3 blocks (2 BNs of 256, two 3x3 convs 256->256, 1x1 shortcut) + BN + conv 3x3 -> 3
    block = 2 * 2 * 256 + 2 * (256 * 256 * 9 + 256) + 256 * 256 + 256
    assert count_parameters(G) == 128 * 4096 + 4096 + 3 * block + 2 * 256 + 256 * 3 * 9 + 3
    # D = first block (3 -> 128, shortcut 1x1) + down block with shortcut + 2 plain blocks + Dense 128 -> 1
    plain = 2 * (128 * 128 * 9 + 128)
    first = 3 * 128 * 9 + 128 + 128 * 128 * 9 + 128 + 3 * 128 + 128
    assert count_parameters(D) == first + (plain + 128 * 128 + 128) + 2 * plain + 128 + 1
    # every layer: 8 convs 3x3, the 2 shortcuts and the Dense
    assert sum(1 for m in D.modules() if hasattr(m, "parametrizations")) == 11
    assert not any(hasattr(m, "parametrizations") for m in G.modules())


@pytest.mark.parametrize("size", [32, 64])
def test_resnet_shapes_and_ranges(size):
    torch.manual_seed(0)
    G, D = build_models(_sngan("data.dataset=folder", f"data.image_size={size}", "model.base_channels=4"))
    images = G.sample(3)
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    assert D(images, unlabelled(images)).shape == (3,)
    ups = [m for m in G.modules() if isinstance(m, UpBlock)]
    assert len(ups) == (3 if size == 32 else 4)  # from 4x4 to the image side
    if size == 64:  # widths halve from 16b in G and double to 16b in D, b = 4
        assert [b.conv1.out_channels for b in ups] == [32, 16, 8, 4]
        downs = [b for b in D.modules() if isinstance(b, DownBlock)]  # a block widens in its second conv
        assert [(b.conv1.out_channels, b.conv2.out_channels) for b in downs] == [
            (4, 4),
            (4, 8),
            (8, 16),
            (16, 32),
            (32, 64),
        ]


def test_an_unconditional_d_loads_a_checkpoint_that_names_its_last_linear_as_before():
    """Checkpoints written before D's last layers came from its conditioning name the Linear `linear`."""
    torch.manual_seed(0)
    _, D = build_models(_sngan("model.base_channels=4"))
    old = {key.replace("end.0.", "linear."): value for key, value in D.state_dict().items()}
    assert "linear.parametrizations.weight.original" in old and not any(key.startswith("end.") for key in old)
    torch.manual_seed(1)
    _, fresh = build_models(_sngan("model.base_channels=4"))
    fresh.load_state_dict(old)
    x = torch.randn(3, 3, 32, 32)
    D.eval(), fresh.eval()
    assert torch.equal(fresh(x, unlabelled(x)), D(x, unlabelled(x)))


def test_conditional_resnet_projection_and_acgan():
    torch.manual_seed(0)
    for conditioning in ("projection", "acgan"):
        G, D = build_models(
            _sngan("model.base_channels=4", f"model.conditioning={conditioning}", "model.num_classes=10")
        )
        labels = torch.tensor([0, 3, 9])
        images = G.sample(3, labels=labels)
        out = D(images, labels)
        if conditioning == "acgan":
            assert out[0].shape == (3,) and out[1].shape == (3, 10)
        else:
            assert out.shape == (3,)
        # G's norms are per class: another label, another image from the same noise
        z = torch.randn(1, 128)
        assert not torch.equal(
            G.sample(1, noise=z, labels=torch.tensor([0])), G.sample(1, noise=z, labels=torch.tensor([5]))
        )


def test_resnet_sizes_are_32_and_64():
    for size in (28, 128):
        with pytest.raises(GankitError, match=f"resnet makes images of side 32, 64; data.image_size is {size}"):
            validate(_sngan("data.dataset=folder", f"data.image_size={size}"))


class StopAfterEpochOne(Callback):  # an interruption: the linear decay still spans the run's 2 epochs
    def on_epoch_end(self, epoch):
        if epoch.state.epoch == 1:
            epoch.stop = "stopped for the test"


def test_sngan_recipe_trains_and_resumes_exactly(tmp_path):
    config = _sngan(
        "train.epochs=2",
        "model.base_channels=4",
        "train.batch_size=16",
        "data.limit=64",
        "output.progress=false",
        "output.report=false",
        "output.grid_every=100",
    )
    straight = gankit.train(config, tmp_path / "straight", data_dir=CIFAR_ARCHIVE)
    gankit.train(
        config, tmp_path / "split", data_dir=CIFAR_ARCHIVE, hooks=gankit.Hooks(callbacks=[StopAfterEpochOne()])
    )
    split = gankit.train(None, tmp_path / "split", resume=True)
    a, b = (load_checkpoint(r.checkpoint()) for r in (straight, split))
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    # 8 batches in all and G on every 5th batch of the run (batches 0 and 5): G updated twice, D 8 times
    assert {float(s["step"]) for s in a["opt_g"]["state"].values()} == {2.0}
    assert {float(s["step"]) for s in a["opt_d"]["state"].values()} == {8.0}
    assert straight.metrics()[-1]["d_loss"] > 0  # hinge: 2 at the start, above 0 until D is sure of every image
