"""The contrastive evaluator: SimCLR's views and loss, its training and cache, and scoring a folder offline."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.checks import validate
from gankit.cli import main
from gankit.config import DataConfig, config_from_dict
from gankit.data import load_images
from gankit.errors import GankitError
from gankit.evaluate import make_scorer
from gankit.evaluators import contrastive
from gankit.evaluators.contrastive import load_contrastive, nt_xent, train_contrastive, views
from gankit.metrics import EXTRACTORS, scored_metrics
from gankit.metrics.features import Extractor
from gankit.resizing import resize_like_pil

from conftest import cached_encoders, tiny_config

QUICK = dataclasses.replace(contrastive.RECIPE, steps=10, batch=32, width=8)  # the same code, seconds to train


@pytest.fixture
def quick_recipe(monkeypatch):
    monkeypatch.setattr(contrastive, "RECIPE", QUICK)


def test_views_are_per_image_random_crops_in_range_and_reproducible():
    pixels = torch.rand(16, 3, 32, 32)
    first = views(pixels, QUICK, torch.Generator().manual_seed(0))
    again = views(pixels, QUICK, torch.Generator().manual_seed(0))
    other = views(pixels, QUICK, torch.Generator().manual_seed(1))
    assert first.shape == pixels.shape and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again) and not torch.allclose(first, other)
    grey = views(torch.rand(4, 1, 28, 28), QUICK, torch.Generator().manual_seed(0))
    assert grey.shape == (4, 1, 28, 28)


def test_views_crop_stretch_and_mirror_without_mixing_rows():
    ramp = torch.linspace(0, 1, 16).expand(32, 3, 16, 16).contiguous()  # brighter to the right
    plain = dataclasses.replace(QUICK, jitter=0.0, grey=0.0)
    out = views(ramp, plain, torch.Generator().manual_seed(0))
    steps = out[..., 1:] - out[..., :-1]
    rising, falling = (steps >= -1e-5).flatten(1).all(1), (steps <= 1e-5).flatten(1).all(1)
    assert bool((rising | falling).all()) and rising.any() and falling.any()  # a crop of the ramp, or its mirror
    assert torch.allclose(out, out[:, :, :1].expand_as(out), atol=1e-5)  # rows stay alike
    assert (out[..., -1] - out[..., 0]).abs().min() < 0.99  # some views are crops, not the whole ramp


def test_nt_xent_matches_the_formula_by_hand():
    z1, z2 = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), torch.randn(3, 4)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    t, total = 0.5, 0.0
    for i in range(6):
        partner = (i + 3) % 6
        others = [math.exp(float(z[i] @ z[k]) / t) for k in range(6) if k != i]
        total -= math.log(math.exp(float(z[i] @ z[partner]) / t) / sum(others))
    assert nt_xent(z1, z2, t).item() == pytest.approx(total / 6, rel=1e-5)
    assert nt_xent(z1, z1 * 2, t) < nt_xent(z1, z2, t)  # partners alike lose less


@pytest.mark.parametrize("side, size", [(64, 32), (32, 299)])  # the encoder's shrinking, Inception's growing
def test_resizing_for_a_feature_network_follows_pils_bicubic(side, size):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (side // 4, side // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    pil = np.asarray(Image.fromarray(smooth).resize((size, size), Image.BICUBIC)).astype(np.float64)
    ours = resize_like_pil(torch.from_numpy(smooth).permute(2, 0, 1)[None], size)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - pil).mean() < 1.0  # grey levels


def test_too_few_images_are_refused_in_one_line():
    with pytest.raises(GankitError, match="needs at least 500 real images to learn from, got 10"):
        load_contrastive(torch.zeros(10, 3, 32, 32, dtype=torch.uint8), progress=False)


def test_the_encoder_learns_to_pair_views_of_mnist(mnist_dir):
    images = load_images(DataConfig(dataset="mnist"), mnist_dir).head(600).images
    net, info = train_contrastive(images, recipe=dataclasses.replace(QUICK, steps=60, batch=64), progress=False)
    assert info["final_loss"] < 0.8 * info["first_loss"]  # chance is log(127) = 4.8
    assert net.features(images[:5]).shape == (5, 8 * QUICK.width)


def _mnist_folder(mnist_dir, root, count):
    root.mkdir()
    images = load_images(DataConfig(dataset="mnist"), mnist_dir).head(count).images
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(root / f"digit {i:04d}.png")
    return root


@pytest.mark.usefixtures("quick_recipe")
def test_a_folder_run_is_scored_offline_in_a_contrastive_encoders_features(mnist_dir, tmp_path, capsys):
    folder = _mnist_folder(mnist_dir, tmp_path / "my digits", 600)
    # the encoder trained ahead of the run, at the run's size, is the one its scoring then finds
    assert (
        main(["evaluator", "train", "folder", "--data-dir", str(folder), "--image-size", "28", "--channels", "1"]) == 0
    )
    said = capsys.readouterr().out
    assert said.startswith("folder evaluator contrastive-")
    assert "for runs at data.image_size=28, data.channels=1: 10 steps on 600 images" in said
    run = tmp_path / "run"
    gankit.train(tiny_config("data.dataset=folder", "data.limit=null", "train.epochs=1"), run, data_dir=folder)
    encoders = cached_encoders()
    assert main(["eval", str(run), "--n", "500"]) == 0
    assert cached_encoders() == encoders  # none trained again, nor another
    result = json.loads(next((run / "eval").glob("*.json")).read_text())
    assert result["features"] == said.split()[2]
    assert result["real"] == "training images (no test split)" and "half" in result["floor_is"]
    metrics = result["metrics"]
    assert {"fid", "kid_mean", "precision", "recall", "density", "coverage"} <= set(metrics)
    assert not {"is_mean", "classes_covered"} & set(metrics)  # the encoder knows no classes
    assert result["floor"]["fid"] < metrics["fid"]  # one epoch of a tiny MLP is far from the real digits

    capsys.readouterr()
    assert main(["eval", str(run), "--n", "500", "--metrics", "is"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "gankit: error: metric is reads class probabilities, which gankit's evaluator of folder "
        "(a contrastive encoder: the data set has no classifier) cannot give"
    ]
    for flag in (["--image-size", "64"], ["--channels", "3"], ["--skip-bad-images"]):
        assert main(["evaluator", "train", "mnist", *flag]) == 2
        assert capsys.readouterr().err.strip() == (
            f"gankit: error: {flag[0]} is for a folder's evaluator; mnist's reads the data set as it is"
        )
    few = _mnist_folder(mnist_dir, tmp_path / "ten", 10)
    assert main(["eval", str(run), "--n", "10", "--data-dir", str(few), "--out", str(tmp_path / "few.json")]) == 2
    assert "needs at least 500 real images to learn from, got 10" in capsys.readouterr().err
    assert not (tmp_path / "few.json").exists()


@pytest.mark.usefixtures("quick_recipe")
def test_the_encoder_is_cached_by_content_and_a_damaged_cache_is_retrained(mnist_dir, caplog):
    images = load_images(DataConfig(dataset="mnist"), mnist_dir).head(520).images
    net, info, name = load_contrastive(images, progress=False)
    again, info_again, name_again = load_contrastive(images, progress=False)
    assert (info_again, name_again) == (info, name)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    other = load_contrastive(images.flip(3), progress=False)[2]
    assert other != name  # other pixels, another encoder
    path = next(contrastive.cache_dir().glob(f"evaluators/{name}*.pt"))
    path.write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING"):
        assert load_contrastive(images, progress=False)[2] == name
    assert "is damaged" in caplog.text


class _MeanColour(Extractor):
    """Each image's mean colour and brightness spread: enough to test the scorer's choice of images."""

    name = "mean-colour"

    def batch(self, images):
        pixels = images.float().flatten(2)
        features = torch.cat([pixels.mean(2), pixels.std(2)], 1)
        return features, features.new_zeros(len(features), 0)


def test_a_folder_without_a_test_split_is_scored_against_its_training_images_and_halves(tmp_path, monkeypatch):
    monkeypatch.setitem(EXTRACTORS._entries, "mean-colour", lambda data, weights, progress: _MeanColour())
    folder = tmp_path / "eleven"
    folder.mkdir()
    for i in range(11):
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(folder / f"{i}.png")
    config = tiny_config("data.dataset=folder", f"data.dir={folder}", "data.channels=3", "data.image_size=8")
    scorer = make_scorer(config, n=11, metrics=["fid"], features="mean-colour", progress=False)
    assert scorer.n == 11 and scorer.real.features.shape == (11, 6)
    assert scorer.real_is == "training images (no test split)"
    assert scorer.floor_is.startswith("one half of the training images against the other (5 each")
    assert scorer.floor["fid"] > 0  # two different halves
    with pytest.raises(GankitError, match="the real images number 3, and metric fid needs at least 2 per side"):
        make_scorer(config, n=3, metrics=["fid"], features="mean-colour", progress=False)
    with pytest.raises(GankitError, match="metric is reads class probabilities, which mean-colour features cannot"):
        make_scorer(config, n=11, metrics=["is"], features="mean-colour", progress=False)


def test_an_old_run_config_with_the_old_default_metrics_still_validates_on_a_folder(tmp_path):
    old = {
        "data": {"dataset": "folder", "dir": str(tmp_path), "channels": 3, "image_size": 32},
        "model": {"arch": "dcgan", "base_channels": 8},
        "output": {"eval_metrics": ["fid", "kid", "is", "pr", "coverage"], "eval_every": 1},
    }
    config = config_from_dict(old)
    validate(config)  # the old default list is read as today's: every default metric that applies
    assert config.output.eval_metrics == [] and scored_metrics(config) == ["fid", "kid", "pr"]
