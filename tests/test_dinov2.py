"""DINOv2 features from a weights file, offline: randomly initialised weights of the same architecture stand in for
Meta's, in Meta's layout and in timm's; files of another model are refused in one line."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics import EXTRACTORS, check_applicable

from conftest import train_tiny

pytest.importorskip("timm")
from gankit.metrics.dinov2 import DinoExtractor, build_vit  # noqa: E402


@pytest.fixture(scope="module")
def vits_weights(tmp_path_factory):
    """A randomly initialised ViT-S/14 saved in timm's layout and in Meta's (a mask token, positions for 518x518)."""
    torch.manual_seed(0)
    state = build_vit("dinov2-vits14").state_dict()
    folder = tmp_path_factory.mktemp("dinov2")
    torch.save(state, folder / "timm.pth")
    grid = state["pos_embed"][:, 1:].reshape(1, 16, 16, -1).permute(0, 3, 1, 2)
    wide = torch.nn.functional.interpolate(grid, size=(37, 37), mode="bicubic").permute(0, 2, 3, 1).reshape(1, -1, 384)
    meta = {**state, "mask_token": torch.zeros(1, 384), "pos_embed": torch.cat([state["pos_embed"][:, :1], wide], 1)}
    torch.save(meta, folder / "meta.pth")
    return folder


def test_features_are_the_class_token_of_any_image_size_in_either_layout(vits_weights):
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    extractor = DinoExtractor("dinov2-vits14", vits_weights / "timm.pth")
    features = extractor(images)
    assert features.features.shape == (3, 384) and features.probs.shape == (3, 0)
    assert torch.isfinite(features.features).all()
    assert torch.equal(extractor(images).features, features.features)  # eval mode: no randomness
    grey = extractor(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))
    assert grey.features.shape == (2, 384)
    meta = DinoExtractor("dinov2-vits14", vits_weights / "meta.pth")
    for name, tensor in extractor.net.state_dict().items():
        if name != "pos_embed":  # Meta's positions are resampled from 37x37 to 16x16
            assert torch.equal(tensor, meta.net.state_dict()[name]), name


def test_a_wrong_missing_or_hostile_file_is_refused_in_one_line(vits_weights, tmp_path):
    with pytest.raises(GankitError, match=r"timm.pth is not a dinov2-vitb14 weights file \(RuntimeError"):
        DinoExtractor("dinov2-vitb14", vits_weights / "timm.pth")
    with pytest.raises(GankitError, match="dinov2_vits14/dinov2_vits14_pretrain.pth and name it with weights"):
        DinoExtractor("dinov2-vits14", tmp_path / "none.pth")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(GankitError, match="hostile.pth is not a dinov2-vits14 weights file"):
        DinoExtractor("dinov2-vits14", hostile)
    with pytest.raises(GankitError, match="metric is reads class probabilities, which dinov2-vits14 features cannot"):
        check_applicable(["fid", "is"], False, "dinov2-vits14", "mnist")


def test_eval_scores_a_run_in_dinov2_features(mnist_dir, vits_weights, tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(mnist_dir, run, "train.epochs=1")
    weights = str(vits_weights / "timm.pth")
    assert main(["eval", str(run), "--features", "dinov2-vits14", "--weights", weights, "--n", "20"]) == 0
    result = json.loads(next((run / "eval").glob("*dinov2-vits14-n20.json")).read_text())
    assert set(result["metrics"]) == {"fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
    assert EXTRACTORS.names()[-4:] == ("dinov2-vits14", "dinov2-vitb14", "dinov2-vitl14", "dinov2-vitg14")
