"""Watching and using a run: report, animation, TensorBoard, sample, interpolate, export."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.checkpoint import list_checkpoints
from gankit.cli import main
from gankit.data import unlabelled
from gankit.errors import GankitError
from gankit.models import build_models, to_uint8
from gankit.sampling import interpolate, sample_images, slerp

from conftest import train_tiny


@pytest.fixture(scope="module")
def run(mnist_dir, tmp_path_factory):
    """A tiny seed-GAN run of 3 epochs with a grid every epoch and TensorBoard on."""
    out = tmp_path_factory.mktemp("use") / "run"
    train_tiny(mnist_dir, out, "train.epochs=3", "output.grid_every=1", "output.tensorboard=true")
    return out


def _generator(run):
    return gankit.load_run(run).generator()


def _errors(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]


def test_training_writes_report_and_animation(run):
    page = (run / "report.html").read_text()
    assert "<svg" in page and "id='grid-view'" in page and "epoch 3" in page
    assert not re.search(r"""(src|href)=['"]https?:""", page)  # nothing to fetch: every picture is embedded
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 3
    if shutil.which("ffmpeg"):
        assert (run / "progress.mp4").stat().st_size > 0


def test_tensorboard_has_the_epoch_scalars_and_grids(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert {"train/d_loss", "train/g_loss", "train/d_acc_real", "train/d_acc_fake", "train/images_per_s"} <= set(
        events.Tags()["scalars"]
    )
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [e.value for e in events.Scalars("train/g_loss")]
    assert logged == pytest.approx([m["g_loss"] for m in metrics])
    assert [e.step for e in events.Images("samples")] == [1, 2, 3]


def test_sample_is_deterministic_and_in_range(run):
    G = _generator(run)
    a, b, c = sample_images(G, 10, seed=1), sample_images(G, 10, seed=1), sample_images(G, 10, seed=2)
    assert a.shape == (10, 1, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = G.sample_noise(300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        sample_images(G, 300, seed=1), to_uint8(G.sample(300, noise=noise), G.value_range)
    )  # batches of 256


def test_one_sampling_path_runs_in_eval_mode_restores_the_mode_and_refuses_labels():
    config = gankit.apply_overrides(gankit.load_preset("dcgan-mnist"), ["model.base_channels=4"])
    torch.manual_seed(0)
    G, _ = build_models(config)  # batch norm: training mode would use and update batch statistics
    G.train()
    running = [b.clone() for b in G.buffers()]
    z = G.sample_noise(4, generator=torch.Generator().manual_seed(0))
    images = G.sample(4, noise=z)
    assert G.training  # back in the mode it was in
    assert all(torch.equal(a, b) for a, b in zip(running, G.buffers()))  # no batch-norm update
    with torch.no_grad():
        assert torch.equal(images, G.eval()(z, unlabelled(z)))  # what eval mode computes
    assert images.min() >= -1 and images.max() <= 1 and images.dtype == torch.float32  # G's value range
    # an unconditional G is the zero-class case: its labels are all 0, and no other class is taken
    assert torch.equal(images, G.sample(4, noise=z, labels=torch.zeros(4, dtype=torch.long)))
    with pytest.raises(GankitError, match="this generator is unconditional: it takes no class"):
        sample_images(G, noise=z, labels=torch.tensor([0, 1, 0, 0]))


@pytest.mark.parametrize("fmt", ["grid", "files", "npy"])
def test_sample_command_formats(run, tmp_path, fmt):
    out = tmp_path / {"grid": "s.png", "files": "s", "npy": "s.npy"}[fmt]
    assert main(["sample", str(run), "--n", "6", "--seed", "3", "--format", fmt, "--out", str(out)]) == 0
    expected = sample_images(_generator(run), 6, seed=3)
    if fmt == "npy":
        assert np.array_equal(np.load(out), expected.permute(0, 2, 3, 1).numpy())
    elif fmt == "files":
        files = sorted(out.iterdir())
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(6)]
        assert np.array_equal(np.asarray(Image.open(files[4])), expected[4, 0].numpy())
    else:
        assert Image.open(out).size == (3 * 30 + 2, 2 * 30 + 2)  # 6 images, 3 per row


def test_slerp_ends_at_the_endpoints_and_keeps_the_norm():
    a, b = torch.randn(4, 100, generator=torch.Generator().manual_seed(0)), torch.randn(4, 100)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)
    z = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(z[:, 0], a, atol=1e-5) and torch.allclose(z[:, -1], b, atol=1e-5)
    assert torch.allclose(z.norm(dim=2), a.norm(dim=1, keepdim=True).expand(4, 5), rtol=1e-4)


def test_interpolate_command(run, tmp_path):
    G = _generator(run)
    walks = interpolate(G, 3, 5, mode="linear", seed=0)
    assert walks.shape == (3, 5, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)
    a, b = G.sample_noise(3, generator=gen, device="cpu"), G.sample_noise(3, generator=gen, device="cpu")  # as drawn
    assert torch.equal(walks[:, 0], sample_images(G, noise=a))
    assert torch.equal(walks[:, -1], sample_images(G, noise=b))
    assert main(["interpolate", str(run), "--pairs", "3", "--steps", "5", "--out", str(tmp_path / "w.png")]) == 0
    assert Image.open(tmp_path / "w.png").size == (5 * 30 + 2, 3 * 30 + 2)
    assert (
        main(
            [
                "interpolate",
                str(run),
                "--pairs",
                "2",
                "--steps",
                "4",
                "--format",
                "gif",
                "--out",
                str(tmp_path / "w.gif"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "w.gif").n_frames == 4 + 2  # there and back


def test_torchscript_export_gives_the_checkpoints_images(run, tmp_path):
    out = tmp_path / "g.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    G = _generator(run)
    z = G.sample_noise(7, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(z), G.sample(7, noise=z), atol=1e-6)
    description = json.loads((tmp_path / "g.pt.json").read_text())
    assert description["noise_dim"] == 100 and description["value_range"] == [0.0, 1.0]


def test_onnx_export_gives_the_checkpoints_images(run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "g.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    G = _generator(run)
    z = G.sample_noise(9, generator=torch.Generator().manual_seed(5))  # another batch size than the export's
    (images,) = ort.InferenceSession(str(out)).run(None, {"z": z.numpy()})
    assert np.allclose(images, G.sample(9, noise=z).numpy(), atol=1e-5)


def test_bad_input_for_the_using_commands(run, tmp_path, capsys):
    (tmp_path / "not-a-run").mkdir()
    cases = [
        (["sample", str(tmp_path / "not-a-run")], "is not a gankit run folder"),
        (["sample", str(run), "--n", "0"], "--n must be positive"),
        (["sample", str(run), "--out", "/proc/no/such/x.png"], "cannot write /proc/no/such/x.png"),
        (["sample", str(run), "--checkpoint", str(tmp_path / "missing.pt")], "does not exist"),
        (["interpolate", str(run), "--steps", "1"], "--steps must be at least 2"),
        (["interpolate", str(run), "--pairs", "0"], "--pairs must be positive"),
        (["sample", str(run), "--seed", str(2**64)], f"--seed must be in [0, 2^64), got {2**64}"),
        (["interpolate", str(run), "--seed", "99999999999999999999"], "--seed must be in [0, 2^64)"),
        (["export", str(run)], "the following arguments are required: --format"),
        (["report", str(tmp_path / "not-a-run")], "is not a gankit run folder"),
    ]
    capsys.readouterr()
    for args, words in cases:
        assert main(args) == 2, args
        errors = _errors(capsys)
        assert len(errors) == 1 and words in errors[0], (args, errors)


def test_checkpoint_of_another_model_is_refused(run, mnist_dir, tmp_path, capsys):
    dcgan = tmp_path / "dcgan"
    gankit.train(
        gankit.apply_overrides(
            gankit.load_preset("dcgan-mnist"),
            ["train.epochs=1", "data.limit=128", "model.base_channels=4", "output.progress=false"],
        ),
        dcgan,
        data_dir=mnist_dir,
    )
    capsys.readouterr()
    foreign = list_checkpoints(dcgan / "checkpoints")[-1]
    for command in ("sample", "interpolate", "export"):
        extra = ["--format", "onnx"] if command == "export" else []
        assert main([command, str(run), "--checkpoint", str(foreign), *extra]) == 2
        assert "holds a different model" in _errors(capsys)[0]


def test_report_in_a_real_browser(run, tmp_path, browser):
    """Headless Chromium opens the page from disk: every image loads at its natural size, the curves are drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((run / "report.html").as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) >= 3 + 3  # view, 3 strip thumbnails, animation, final samples
    for img_id, complete, width, height in images:
        assert complete and width > 0 and height > 0, img_id
    lines = page.eval_on_selector_all("svg path", "ps => ps.filter(p => p.getBBox().width > 50).length")
    assert lines >= 4  # G loss, D loss, two accuracy curves
    page.fill("#epoch-slider", "0")
    page.dispatch_event("#epoch-slider", "input")
    assert page.inner_text("#epoch-label") == "epoch 1"
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.close()
    assert all(url.startswith(("file://", "data:")) for url in requests)
    assert (tmp_path / "report.png").stat().st_size > 10_000
