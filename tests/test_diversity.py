"""The sample-spread watch: how different G's samples are from one another, against the real images, so a collapse
to a few images is told even where D's accuracy looks healthy."""

import logging

import pytest
import torch

from gankit.collapse import ALIKE_EPOCHS, ALIKE_SPREAD
from gankit.config import load_preset
from gankit.diversity import SampleSpread, feature_network, mean_pairwise_distance
from gankit.models import Generator
from gankit.report import _alike_banner
from gankit.training.callbacks import EpochEnd, Grids, SpreadWatch

from conftest import train_tiny


def test_mean_pairwise_distance_by_hand():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])  # distances 5, 4, 3
    assert mean_pairwise_distance(points) == pytest.approx((5 + 4 + 3) / 3)
    assert mean_pairwise_distance(points[[0, 0, 0]]) == 0.0


def test_real_images_score_one_and_copies_of_one_image_zero():
    torch.manual_seed(0)
    real = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    rng = torch.get_rng_state()
    spread = SampleSpread(real)
    assert torch.equal(torch.get_rng_state(), rng)  # the feature network's weights come from a private seed
    assert spread.fractions(real) == {"spread_pixels": pytest.approx(1.0), "spread_features": pytest.approx(1.0)}
    copies = real[:1].expand(64, -1, -1, -1)
    assert spread.fractions(copies) == {"spread_pixels": 0.0, "spread_features": 0.0}
    half = torch.cat([real[:32], real[:1].expand(32, -1, -1, -1)])  # half the batch one image: less spread
    assert 0.0 < spread.fractions(half)["spread_features"] < 1.0
    assert all(torch.equal(a, b) for a, b in zip(feature_network(1).parameters(), feature_network(1).parameters()))


class _State:
    def __init__(self, config, epoch, G):
        self.config, self.epoch, self.sampler = config, epoch, G


class _Constant(Generator):
    """A G collapsed for good: the same image (with a faint ripple) for every noise vector."""

    num_classes, value_range, noise_dim, image_shape = 0, (0.0, 1.0), 8, (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.image = torch.nn.Parameter(torch.rand(1, 1, 28, 28))

    def sample_noise(self, n, generator=None, device=None):
        return torch.randn(n, self.noise_dim, generator=generator)

    def sample(self, n, noise=None, labels=None, generator=None):
        return self.image.detach().expand(n, -1, -1, -1) + 1e-3 * noise[:, :1, None, None]


def _watch(G, epochs, real):
    config = load_preset("report-gan-mnist")
    grids = Grids(config, G)
    watch, history = SpreadWatch(config, grids, real), []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch}
        history.append(record)
        watch.on_epoch_end(EpochEnd(_State(config, epoch, G), None, record, history))
    return history


def test_a_collapsed_g_is_told_after_its_streak_and_real_looking_samples_are_not(caplog, monkeypatch):
    from gankit.training import callbacks

    real = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with caplog.at_level(logging.WARNING):
        history = _watch(_Constant(), ALIKE_EPOCHS + 1, real)
    assert all(r["spread_features"] < ALIKE_SPREAD and r["samples_alike"] for r in history)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("G's samples have been nearly all alike since epoch 1")

    caplog.clear()
    monkeypatch.setattr(callbacks, "sample_images", lambda G, noise, labels: real)  # samples as varied as the data
    with caplog.at_level(logging.WARNING):
        history = _watch(_Constant(), ALIKE_EPOCHS + 1, real)
    assert all(r["spread_features"] == pytest.approx(1.0) and not r["samples_alike"] for r in history)
    assert not caplog.records


def test_the_report_marks_the_alike_stretches():
    records = [{"epoch": i, "samples_alike": i >= 3} for i in range(1, 3 + ALIKE_EPOCHS)]
    banner = _alike_banner(records, ALIKE_EPOCHS)
    assert f"G's samples were nearly all alike in epochs 3 to {2 + ALIKE_EPOCHS}" in banner
    assert "It had not recovered by the last epoch" in banner
    assert _alike_banner(records[:-1], ALIKE_EPOCHS) == ""  # one epoch short of the streak


def test_a_run_records_its_samples_spread(mnist_dir, tmp_path):
    run = train_tiny(mnist_dir, tmp_path / "r", "train.epochs=2")
    for record in run.metrics():
        assert 0.0 < record["spread_pixels"] and 0.0 < record["spread_features"]
        assert isinstance(record["samples_alike"], bool)
