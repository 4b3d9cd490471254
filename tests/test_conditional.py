"""Conditional GANs: labels through the data, the models, the step, sampling, scoring, export and the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.cli import main
from gankit.config import apply_overrides, load_preset
from gankit.data import load_images
from gankit.errors import GankitError
from gankit.metrics import compute
from gankit.metrics.features import FeatureSet
from gankit.models import build_models
from gankit.models.conditioning import ConditionalBatchNorm, ProjectionHead
from gankit.plots import grid_image
from gankit.sampling import class_rows, resolve_class
from gankit.training.loop import config_step
from gankit.training.state import new_state

from conftest import SHARED_DATA, TINY, train_tiny

pytestmark = pytest.mark.usefixtures("one_epoch_evaluator")


def tiny_cgan(*overrides: str):
    return apply_overrides(load_preset("cgan-mnist"), [*TINY, "model.num_classes=10", *overrides])


@pytest.fixture(scope="module")
def run(mnist_dir, tmp_path_factory):
    """A tiny cgan-mnist run of 2 epochs."""
    out = tmp_path_factory.mktemp("cgan") / "run"
    gankit.train(
        apply_overrides(load_preset("cgan-mnist"), [*TINY, "train.epochs=2", "output.grid_every=1"]),
        out,
        data_dir=mnist_dir,
    )
    return out


def test_labels_survive_the_loaders_and_the_folder_cache_in_order(mnist_dir, tmp_path, caplog):
    mnist = load_images(load_preset("cgan-mnist").data, mnist_dir)
    assert mnist.labels.shape == (60000,) and mnist.labels[:8].tolist() == [
        5,
        0,
        4,
        1,
        9,
        2,
        1,
        3,
    ]  # MNIST's known start
    assert mnist.classes[7] == "7 - seven"
    tree = tmp_path / "tree"
    for name, value in (("sandal", 30), ("bag", 130), ("coat", 230)):
        (tree / name).mkdir(parents=True)
        for i in range(2 if name == "bag" else 3):
            Image.fromarray(np.full((8, 8), value + i, dtype=np.uint8)).save(tree / name / f"{i}.png")
    data = apply_overrides(load_preset("cgan-mnist"), ["data.dataset=folder", "data.image_size=8"]).data
    decoded = load_images(data, tree)
    with caplog.at_level("INFO"):
        cached = load_images(data, tree)
    assert "from the cache" in caplog.text
    assert cached.classes == ["bag", "coat", "sandal"]  # sorted folder names
    assert cached.labels.tolist() == [0, 1, 2, 0, 1, 2, 1, 2]  # round-robin; bag has two images
    assert cached.images[:, 0, 0, 0].tolist() == [130, 230, 30, 131, 231, 31, 232, 32]  # each image with its label
    assert torch.equal(decoded.labels, cached.labels) and torch.equal(decoded.images, cached.images)
    assert all(type(name) is str for name in cached.classes)
    # a conditional run on the tree takes its classes by folder name (from the cache, here) and remembers them
    config = apply_overrides(
        load_preset("cgan-mnist"),
        [
            "data.dataset=folder",
            "data.image_size=8",
            "train.batch_size=4",
            "train.epochs=1",
            "output.progress=false",
            "output.report=false",
        ],
    )
    run = gankit.train(config, tmp_path / "run", data_dir=tree)
    assert gankit.load_run(run.path).classes == ["bag", "coat", "sandal"]
    assert run.sample(3, label="sandal").shape == (3, 1, 8, 8)


def test_a_label_changes_g_s_output_for_every_conditional_model():
    for preset in ("cgan-mnist", "cgan-cifar10"):
        G, _ = build_models(apply_overrides(load_preset(preset), ["model.num_classes=10", "model.base_channels=8"]))
        z = G.sample_noise(4, generator=torch.Generator().manual_seed(0))
        a = G.sample(4, noise=z, labels=torch.tensor([0, 1, 2, 3]))
        b = G.sample(4, noise=z, labels=torch.tensor([4, 5, 6, 7]))
        assert a.shape == b.shape and not torch.allclose(a, b)
        assert torch.equal(a, G.sample(4, noise=z, labels=torch.tensor([0, 1, 2, 3])))


def test_the_projection_logit_equals_its_formula():
    torch.manual_seed(0)
    head = ProjectionHead(5, 3)
    h, y = torch.randn(4, 5), torch.tensor([0, 2, 1, 2])
    expected = h @ head.linear.weight[0] + head.linear.bias[0] + (head.embed.weight[y] * h).sum(1)
    assert torch.allclose(head(h, y), expected, atol=1e-6)


def test_conditional_batch_norm_scales_and_shifts_by_class():
    norm = ConditionalBatchNorm(3, 2)
    with torch.no_grad():
        norm.scale.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]))
        norm.shift.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]))
    x = torch.randn(4, 3, 2, 2)
    out = norm(x, torch.tensor([0, 1, 0, 1]))
    plain = torch.nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(out[0], plain[0], atol=1e-5) and torch.allclose(out[1], 2 * plain[1] + 5, atol=1e-5)


def test_acgan_adds_class_losses_to_both_nets_by_hand():
    config = tiny_cgan("model.conditioning=acgan", "model.dropout=0.0")
    state = new_state(config, torch.device("cpu"))
    weights = torch.ones(10)
    step = config_step(state, torch.device("cpu"), class_weights=weights)
    real, labels = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(10, (64,))
    G_before, D_before = copy.deepcopy(state.G), copy.deepcopy(state.D)
    torch.manual_seed(1)
    stats = step(real, labels)
    torch.manual_seed(1)  # the step's own draws, again: noise, then G's classes
    z = G_before.sample_noise(64)
    asked = torch.multinomial(weights, 64, replacement=True)
    with torch.no_grad():
        fake = G_before(z, asked)
        _, real_classes = D_before(real, labels)
        _, fake_classes = D_before(fake, asked)
        _, fake_classes_after = state.D(fake, asked)  # G's step sees D after D's update
    expected_d = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, asked)
    assert stats["d_class_loss"] == pytest.approx(float(expected_d), rel=1e-5)
    assert stats["g_class_loss"] == pytest.approx(float(F.cross_entropy(fake_classes_after, asked)), rel=1e-5)
    assert stats["d_acc_class"] == pytest.approx(float((real_classes.argmax(1) == labels).float().mean()))


def test_g_draws_classes_in_the_data_s_mix():
    config = tiny_cgan()
    state = new_state(config, torch.device("cpu"))
    weights = torch.zeros(10)
    weights[[3, 7]] = torch.tensor([1.0, 3.0])
    seen = []
    step = config_step(state, torch.device("cpu"), class_weights=weights)
    original = state.G.forward
    state.G.forward = lambda z, y=None: (seen.append(y), original(z, y))[1]
    for _ in range(5):
        step(torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(10, (64,)))
    drawn = torch.cat(seen)
    assert set(drawn.tolist()) == {3, 7} and 0.65 < (drawn == 7).float().mean() < 0.85


def test_resume_is_bit_identical_with_labels(mnist_dir, tmp_path):
    config = apply_overrides(load_preset("cgan-mnist"), [*TINY, "train.epochs=2"])
    gankit.train(config, tmp_path / "straight", data_dir=mnist_dir)
    gankit.train(
        apply_overrides(load_preset("cgan-mnist"), [*TINY, "train.epochs=1"]), tmp_path / "split", data_dir=mnist_dir
    )
    # the same command again with more epochs: the run remembers its data and its classes
    gankit.train(apply_overrides(load_preset("cgan-mnist"), [*TINY, "train.epochs=2"]), tmp_path / "split", resume=True)
    a, b = (load_checkpoint(list_checkpoints(tmp_path / r / "checkpoints")[-1]) for r in ("straight", "split"))
    for net in ("generator", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), key
    assert gankit.load_run(tmp_path / "split").config.data.classes[7] == "7 - seven"


def test_the_training_grid_has_one_row_per_class(run):
    config = gankit.load_run(run).config
    per_row = config.output.grid_samples // 10
    grid = Image.open(run / "grids" / "epoch-0002.png")
    side = 28 + 2  # image and padding
    assert grid.size == (per_row * side + 2, 10 * side + 2)
    G = gankit.load_run(run).generator()
    noise, labels = class_rows(G, per_row, seed=config.train.seed + 1)
    assert labels.tolist() == [k for k in range(10) for _ in range(per_row)]
    expected = grid_image(gankit.sampling.sample_images(G, noise=noise, labels=labels), per_row)
    assert np.array_equal(np.asarray(grid.convert("RGB")), np.asarray(expected))  # row k is class k's samples


def test_class_by_name_and_by_index_give_the_same_images(run):
    loaded = gankit.load_run(run)
    by_index = loaded.sample(16, seed=4, label=7)
    assert torch.equal(by_index, loaded.sample(16, seed=4, label="seven"))
    assert torch.equal(by_index, loaded.sample(16, seed=4, label="7 - Seven"))
    assert not torch.equal(by_index, loaded.sample(16, seed=4, label=3))


def test_class_all_writes_one_row_per_class_and_walks_stay_in_their_class(run, tmp_path):
    assert main(["sample", str(run), "--class", "all", "--n", "30", "--out", str(tmp_path / "all.png")]) == 0
    assert Image.open(tmp_path / "all.png").size == (3 * 30 + 2, 10 * 30 + 2)
    assert main(["sample", str(run), "--class", "all", "--format", "npy", "--out", str(tmp_path / "all.npy")]) == 0
    images = np.load(tmp_path / "all.npy")
    rows = gankit.load_run(run).sample_classes(8, seed=0)
    assert images.shape == (80, 28, 28, 1) and np.array_equal(images, rows.permute(0, 2, 3, 1).numpy())
    walks = gankit.load_run(run).interpolate(2, 5, label="three")
    G = gankit.load_run(run).generator()
    gen = torch.Generator().manual_seed(0)
    a = G.sample_noise(2, generator=gen, device="cpu")
    b = G.sample_noise(2, generator=gen, device="cpu")
    for frame, noise in ((walks[:, 0], a), (walks[:, -1], b)):  # both ends in class 3
        ends = gankit.sampling.sample_images(G, noise=noise, labels=torch.tensor([3, 3]))
        assert (frame.int() - ends.int()).abs().max() <= 1  # slerp may move z by 1e-7: a pixel by one level at most


def test_a_class_is_found_by_name_before_index_and_an_int_is_always_an_index():
    folders = sorted(str(i) for i in range(12))  # a class-per-folder tree named 0..11 sorts as 0, 1, 10, 11, 2, ...
    assert resolve_class(folders, "10") == 2 and resolve_class(folders, "2") == 4  # text: the folder's name
    assert resolve_class(folders, 2) == 2  # an int: the index
    mnist = [
        f"{i} - {w}"
        for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    ]
    assert resolve_class(mnist, "7") == resolve_class(mnist, "Seven") == resolve_class(mnist, "7 - seven") == 7
    for bad in ("²", "10", "-1", "x" * 500, 10):
        with pytest.raises(GankitError, match="is not one of this run's classes") as error:
            resolve_class(mnist, bad)
        assert len(str(error.value)) < 200


def test_an_unconditional_run_or_a_foreign_class_is_refused_in_one_line(run, mnist_dir, tmp_path, capsys):
    plain = tmp_path / "plain"
    train_tiny(mnist_dir, plain, "train.epochs=1")
    assert main(["sample", str(plain), "--class", "7"]) == 2
    assert main(["interpolate", str(plain), "--class", "7"]) == 2
    assert main(["sample", str(run), "--class", "sandal"]) == 2
    assert main(["sample", str(run), "--class", "all", "--n", "15"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]
    assert errors == [
        f"gankit: error: {plain} is an unconditional run: it takes no --class",
        f"gankit: error: {plain} is an unconditional run: it takes no --class",
        "gankit: error: --class 'sandal' is not one of this run's classes: 0 - zero, 1 - one, 2 - two, 3 - three, "
        "4 - four, 5 - five, 6 - six, 7 - seven, 8 - eight, 9 - nine",
        "gankit: error: --n 15 does not split into one row per class: give a positive multiple of 10",
    ]


def test_a_conditional_preset_refuses_a_folder_without_classes(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(np.full((28, 28), 60 * i, dtype=np.uint8)).save(flat / f"{i}.png")
    config = apply_overrides(
        load_preset("cgan-mnist"), ["data.dataset=folder", "train.batch_size=2", "output.progress=false"]
    )
    with pytest.raises(GankitError, match="needs class labels, and .* has none: give a class-per-folder tree"):
        gankit.train(config, tmp_path / "r", data_dir=flat)
    assert not (tmp_path / "r").exists()


def test_class_accuracy_and_intra_fid_by_hand():
    probs = torch.eye(3).double()[[0, 1, 2, 0, 1, 1]]  # predicted classes 0 1 2 0 1 1
    features = torch.randn(6, 2, generator=torch.Generator().manual_seed(0)).double()
    generated = FeatureSet(features, probs, torch.tensor([0, 1, 2, 0, 1, 2]))  # the last sample asked for 2, looks 1
    real = FeatureSet(features, probs, torch.tensor([0, 1, 2, 0, 1, 2]))
    result = compute(["class_acc", "intra_fid"], real, generated)
    assert result["class_accuracy_per_class"] == [1.0, 1.0, 0.5]
    assert result["class_accuracy"] == pytest.approx(2.5 / 3)
    assert result["intra_fid"] == pytest.approx(0.0, abs=1e-6)  # the same features per class on both sides
    swapped = FeatureSet(features, probs, torch.tensor([1, 2, 0, 1, 2, 0]))  # the same images, asked as other classes
    regrouped = compute(["fid", "intra_fid"], real, swapped)
    assert regrouped["fid"] == pytest.approx(0.0, abs=1e-6) and regrouped["intra_fid"] > 0.1
    with pytest.raises(GankitError, match="needs the class of every image, and the samples have none"):
        compute(["class_acc"], real, FeatureSet(features, probs))


def test_eval_scores_classes_beside_their_floor(run):
    result, path = gankit.load_run(run).evaluate(n=200, metrics=["fid", "class_acc", "intra_fid"], progress=False)
    metrics, floor = result["metrics"], result["floor"]
    assert floor["class_accuracy"] > 0.9  # the evaluator on real images of known class
    assert 0.0 <= metrics["class_accuracy"] <= 1.0 and len(metrics["intra_fid_per_class"]) == 10
    assert json.loads(path.read_text())["metrics"]["intra_fid_per_class"] == metrics["intra_fid_per_class"]
    page = gankit.load_run(run).report(tmp := run.parent / "page.html", force=True).read_text()
    assert "id='per-class'" in page and "7 - seven" in page and "class accuracy" in page
    tmp.unlink()


def test_exports_take_z_and_labels_and_match_the_checkpoint(run, tmp_path):
    G = gankit.load_run(run).generator()
    z = G.sample_noise(6, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([0, 9, 3, 3, 7, 1])
    expected = G.sample(6, noise=z, labels=labels)
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "g.pt")]) == 0
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "g.pt"))(z, labels), expected, atol=1e-6)
    description = json.loads((tmp_path / "g.pt.json").read_text())
    assert description["input"] == ["z", "labels"] and description["classes"][7] == "7 - seven"
    ort = pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "g.onnx")]) == 0
    (images,) = ort.InferenceSession(str(tmp_path / "g.onnx")).run(None, {"z": z.numpy(), "labels": labels.numpy()})
    assert np.allclose(images, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_the_conditional_dcgan_trains_and_scores_its_classes(mnist_dir, tmp_path, conditioning):
    config = apply_overrides(
        load_preset("dcgan-mnist"),
        [
            f"model.conditioning={conditioning}",
            "model.spectral_norm=d",
            "train.loss=hinge",
            "model.base_channels=8",
            "data.limit=256",
            "train.batch_size=32",
            "train.epochs=1",
            "output.progress=false",
            "output.eval_every=1",
            "output.eval_n=100",
            "output.eval_metrics=[fid]",
        ],
    )
    run = gankit.train(config, tmp_path / "r", data_dir=mnist_dir)
    record = run.metrics()[-1]
    assert {"fid", "class_accuracy", "intra_fid"} <= set(record)  # a conditional run adds the class metrics
    assert ("d_class_loss" in record) == (conditioning == "acgan")
    images = run.sample(4, label="four")
    assert images.shape == (4, 1, 32, 32) and images.dtype == torch.uint8


def test_cgan_fashion_mnist_trains_with_its_projection_d_and_average_and_takes_garment_names(tmp_path):
    fashion = SHARED_DATA / "fashion-mnist"
    if not (fashion / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"the Fashion-MNIST copy is missing from {fashion} (set GANKIT_TEST_DATA)")
    config = apply_overrides(load_preset("cgan-fashion-mnist"), [*TINY, "train.epochs=1", "train.ema_warmup=2"])
    run = gankit.train(config, tmp_path / "r", data_dir=fashion)
    assert run.classes[5] == "Sandal" and run.config.model.num_classes == 10
    state = load_checkpoint(run.checkpoint())
    assert "generator_ema" in state and "head.embed.weight" in state["discriminator"]  # the projection's embedding
    sandals = run.sample(8, seed=1, label="sandal")
    assert torch.equal(sandals, run.sample(8, seed=1, label=5)) and not torch.equal(
        sandals, run.sample(8, seed=1, label=0)
    )


@pytest.mark.parametrize("preset, classes", [("gan-mnist-tanh", {0}), ("cgan-mnist", set(range(10)))])
def test_a_run_trains_on_the_data_s_labels_when_conditional_and_on_zeros_when_not(preset, classes, mnist_dir, tmp_path):
    """MNIST has classes either way; an unconditional run is the zero-class case, so its terms see 0 on both sides."""
    seen_labels: list[torch.Tensor] = []

    def watch(seen) -> torch.Tensor:
        seen_labels.extend([seen.real_labels, seen.fake_labels])
        return seen.real.new_zeros(())

    config = apply_overrides(load_preset(preset), [*TINY, "train.epochs=1", "data.limit=256"])
    hooks = gankit.Hooks(terms=[gankit.Term("watch", "D", watch)])
    gankit.train(config, tmp_path / "run", data_dir=mnist_dir, hooks=hooks)
    assert set(torch.cat(seen_labels).tolist()) == classes
