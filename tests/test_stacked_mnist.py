"""Stacked MNIST: three real digits per image with the stack's label, the same images every time, MNIST's evaluator
read channel by channel, and the modes metric against a hand count."""

import math

import pytest
import torch

import gankit
from gankit.config import apply_overrides, load_preset
from gankit.data.mnist import load_mnist
from gankit.data.stacked_mnist import load_stacked_mnist
from gankit.errors import GankitError
from gankit.evaluate import Scorer, score
from gankit.evaluators import load_evaluator
from gankit.metrics import METRICS, compute
from gankit.metrics.features import Extractor, FeatureSet
from gankit.models.mlp import MLPGenerator

pytestmark = pytest.mark.usefixtures("one_epoch_evaluator")


def test_each_channel_is_an_mnist_digit_of_the_label_s_place(mnist_dir):
    stacks, digits = load_stacked_mnist(mnist_dir, train=False), load_mnist("mnist", mnist_dir, train=False)
    assert stacks.images.shape == (10_000, 3, 28, 28) and stacks.images.dtype == torch.uint8
    assert stacks.labels.min() >= 0 and stacks.labels.max() < 1000 and len(stacks.classes) == 1000
    flat = digits.images.flatten(1)
    for image, label in zip(stacks.images[:20], stacks.labels[:20]):
        for channel, place in zip(image, (100, 10, 1)):
            same = (flat == channel.flatten()).all(1)
            assert same.any() and bool((digits.labels[same] == int(label) // place % 10).all())
    again = load_stacked_mnist(mnist_dir, train=False)
    assert torch.equal(again.images, stacks.images) and torch.equal(again.labels, stacks.labels)
    assert len(stacks.labels.unique()) > 990  # 10,000 draws over 1,000 modes miss few


def test_stacked_mnist_without_mnist_names_the_missing_files(tmp_path):
    with pytest.raises(GankitError, match="(?i)mnist"):
        load_stacked_mnist(tmp_path, train=True)


def test_modes_and_their_kl_against_a_hand_count():
    real = FeatureSet(torch.zeros(4, 2), torch.eye(4, dtype=torch.float64))
    generated = FeatureSet(torch.zeros(4, 2), torch.eye(4, dtype=torch.float64)[[0, 0, 1, 1]])
    result = compute(["modes"], real, generated)
    assert result["modes"] == 2
    assert result["modes_kl"] == pytest.approx(math.log(2))  # two classes at 1/2 each against 1/4: 2·(1/2)·log 2
    assert compute(["modes"], real, real)["modes_kl"] == pytest.approx(0.0)


def test_mnist_s_evaluator_reads_each_channel_and_the_stack_s_class_is_their_product(mnist_dir):
    net, info = load_evaluator("stacked-mnist", mnist_dir, progress=False)
    assert info["channel_evaluator"] == "mnist" and info["test_accuracy"] > 0.85  # a 1-epoch evaluator, cubed
    stacks = load_stacked_mnist(mnist_dir, train=False)
    with torch.no_grad():
        features = net.features(stacks.images[:200])
        joint = net.head(features)
        grey = [net.grey.head(f).argmax(1) for f in features.chunk(3, dim=1)]
    assert features.shape == (200, 3 * 128) and joint.shape == (200, 1000)
    assert torch.equal(joint.argmax(1), 100 * grey[0] + 10 * grey[1] + grey[2])
    assert torch.allclose(joint.exp().sum(1), torch.ones(200), atol=1e-4)


def test_a_run_on_stacked_mnist_trains_and_counts_its_modes(mnist_dir, tmp_path):
    config = apply_overrides(
        load_preset("dcgan-mnist"),
        [
            "data.dataset=stacked-mnist",
            "data.channels=3",
            "model.base_channels=8",
            "data.limit=256",
            "train.epochs=1",
            "output.progress=false",
            "output.report=false",
        ],
    )
    run = gankit.train(config, tmp_path / "run", data_dir=mnist_dir)
    result, _ = run.evaluate(n=500, metrics=["modes"], progress=False)
    scores, floor = result["metrics"], result["floor"]
    assert 1 <= scores["modes"] <= 500 and scores["modes_kl"] >= 0
    assert floor["modes"] > 350 and floor["modes"] > scores["modes"]  # 500 real stacks span far more of the 1,000


def test_modes_scores_as_many_samples_as_asked_past_the_real_ones():
    """PacGAN's protocol scores 26,000 samples, more than the 10,000 real test stacks: modes reads the samples alone,
    so the scorer makes as many as asked (other metrics are cut to the real count)."""

    class Grey(Extractor):  # each image's class is its first pixel's value, of 4
        name = "grey"

        def batch(self, images):
            values = images[:, 0, 0, 0].long() % 4
            return torch.zeros(len(images), 2), torch.nn.functional.one_hot(values, 4).float()

    real = FeatureSet(torch.zeros(8, 2), torch.eye(4).repeat(2, 1).double())
    scorer = Scorer(Grey(), real, {}, ["modes"], n=8, n_generated=30, real_is="test", floor_is="-")
    G = MLPGenerator(noise_dim=4, hidden=[8], image_shape=(1, 2, 2), output="tanh")
    result = score(scorer, G)
    assert (result["n_generated"], result["n_real"]) == (30, 8)
    assert 1 <= result["metrics"]["modes"] <= 4
    assert METRICS["modes"].samples_only and not any(m.samples_only for n, m in METRICS.items() if n != "modes")
