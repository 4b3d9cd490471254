"""`gankit serve`: the page driven in headless Chromium against small trained runs, and its bad requests."""

from __future__ import annotations

import base64
import builtins
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from conftest import train_tiny
from gankit.cli import main
from gankit.config import apply_overrides, load_preset
from gankit.metrics import EXTRACTORS
from gankit.serve import _allowed_hosts, make_server, serve
from gankit.serve.playground import MAX_SAMPLES

pytestmark = pytest.mark.usefixtures("one_epoch_evaluator")


class Served:
    """A run's page on a free port, in a thread, until `stop`."""

    def __init__(self, run: Path):
        self.run = run
        self.server, sock = make_server(run, port=0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def served(mnist_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("serve") / "run"
    train_tiny(mnist_dir, run, "train.epochs=1", "output.eval_every=1", "output.eval_n=100",
               "output.eval_metrics=[fid]")
    page = Served(run)
    yield page
    page.stop()


@pytest.fixture(scope="module")
def conditional(mnist_dir, tmp_path_factory):
    """A small cgan-mnist, pushed hard (4,000 steps at lr 1e-3): about 60% of its samples are of the class asked for."""
    run = tmp_path_factory.mktemp("serve") / "cgan"
    config = apply_overrides(load_preset("cgan-mnist"), [
        "model.g_hidden=[128, 256]", "model.d_hidden=[256, 128]", "data.limit=12800", "train.batch_size=32",
        "train.epochs=10", "train.lr_g=1e-3", "train.lr_d=1e-3", "output.progress=false", "output.report=false"])
    gankit.train(config, run, data_dir=mnist_dir)
    page = Served(run)
    yield page
    page.stop()


def _open(browser, served):
    """The page, loaded, and the samples image it first showed (PNG bytes)."""
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(served.url)
    page.wait_for_function("document.getElementById('walk-frame').naturalWidth > 0")  # drawn after the samples
    return page, bytes(page.evaluate(SHOWN))


SHOWN = """async () => {
  const image = document.getElementById('samples');
  return Array.from(new Uint8Array(await (await fetch(image.src)).arrayBuffer()));
}"""


def _samples_after(page, action) -> bytes:
    """The PNG bytes of the samples image the page shows after `action` (read back from the page itself)."""
    before = page.get_attribute("#samples", "src") or ""
    action()
    page.wait_for_function(f"document.getElementById('samples').src !== {before!r}")
    return bytes(page.evaluate(SHOWN))


def _set(page, selector, value):
    page.fill(selector, value)
    page.dispatch_event(selector, "change")


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def test_the_page_loads_with_the_run_s_facts(browser, served):
    page, first = _open(browser, served)
    assert page.inner_text("#name") == "seed-gan-mnist"
    assert "epoch-0001.pt (epoch 1)" in page.inner_text("#where")
    assert "fid" in page.inner_text("#scores")
    page.wait_for_function("document.getElementById('samples').naturalWidth > 0")
    width = page.eval_on_selector("#samples", "img => img.naturalWidth")
    assert width == 8 * 30 + 2 == Image.open(io.BytesIO(first)).width  # 8x8 images of 28x28, 2-pixel padding
    assert page.is_hidden("#class-label")  # an unconditional run has no class picker
    page.close()


def test_new_samples_change_the_image_and_the_same_seed_gives_the_same_image(browser, served):
    page, first = _open(browser, served)
    first_seed = page.input_value("#seed")
    new = _samples_after(page, lambda: page.click("#new-samples"))
    assert page.input_value("#seed") != first_seed and new != first
    five, six, five_again = (_samples_after(page, lambda seed=seed: _set(page, "#seed", seed)) for seed in ("5", "6", "5"))
    assert five == five_again != six
    assert page.get_attribute("#download-png", "download") == "samples-seed5.png"
    page.close()


def test_the_walk_slider_s_ends_are_the_two_seeds_samples(browser, served):
    page, _ = _open(browser, served)
    page.fill("#walk-from", "3")
    page.fill("#walk-to", "8")
    page.fill("#walk-steps", "6")
    page.click("#walk")
    page.wait_for_function("document.getElementById('walk-label').textContent === 'step 1 of 6'")
    ends = []
    for position in ("0", "5"):
        page.fill("#walk-slider", position)
        page.dispatch_event("#walk-slider", "input")
        ends.append(base64.b64decode(page.get_attribute("#walk-frame", "src").split(",", 1)[1]))
    for seed, frame in zip((3, 8), ends):
        status, single = served.get(f"api/samples?seed={seed}&n=1")
        assert status == 200
        difference = np.abs(_pixels(frame) - _pixels(single))
        assert difference.max() <= 1  # the same noise; only batch-size rounding may move a pixel by one level
    assert _pixels(ends[0]).shape == (28, 28) and not np.array_equal(_pixels(ends[0]), _pixels(ends[1]))
    page.click("#play")
    page.wait_for_function("document.getElementById('walk-slider').value !== '0'")
    page.click("#play")
    page.close()


def test_a_bad_request_shows_its_error_on_the_page_and_as_json(browser, served):
    page, _ = _open(browser, served)
    _set(page, "#n", str(MAX_SAMPLES + 1))
    page.wait_for_selector("#error", state="visible")
    assert page.inner_text("#error") == f"n must be a whole number from 1 to {MAX_SAMPLES}, got {MAX_SAMPLES + 1}"
    page.close()


def test_the_routes_answer_plain_http_and_bad_requests_get_one_json_line(served):
    for path, message in [
        ("api/samples?seed=-1", "seed must be a whole number from 0 to 4294967295, got -1"),
        ("api/samples?seed=1e9999", "seed must be a whole number from 0 to 4294967295, got '1e9999'"),
        ("api/samples?n=0", f"n must be a whole number from 1 to {MAX_SAMPLES}, got 0"),
        ("api/walk?steps=1", "steps must be a whole number from 2 to 64, got 1"),
        ("api/walk?steps=100000", "steps must be a whole number from 2 to 64, got 100000"),
    ]:
        status, body = served.get(path)
        assert status == 400 and json.loads(body) == {"error": message}, path
    status, body = served.get("api/samples?class=3")
    assert status == 400 and json.loads(body)["error"].endswith("is an unconditional run: it takes no class")
    status, body = served.get("api/info")
    info = json.loads(body)
    assert status == 200 and info["name"] == "seed-gan-mnist" and info["epoch"] == 1 and info["classes"] == []
    assert set(info["scores"]) == {"fid"} and info["limits"] == {"n": MAX_SAMPLES, "steps": 64, "seed": 2**32 - 1}
    status, body = served.get("api/samples?seed=2&n=3")
    assert status == 200 and Image.open(io.BytesIO(body)).size == (2 * 30 + 2, 2 * 30 + 2)  # 3 images, 2 per row
    request = urllib.request.Request(served.url + "api/info", headers={"Host": "attacker.example:7860"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # DNS rebinding: a page elsewhere naming this machine
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"].endswith("not to the host 'attacker.example'")


def test_the_generator_download_is_the_checkpoint_as_onnx(served):
    ort = pytest.importorskip("onnxruntime")
    status, body = served.get("api/generator.onnx")
    assert status == 200
    G = gankit.load_run(served.run).generator()
    z = G.sample_noise(3, generator=torch.Generator().manual_seed(1))
    (images,) = ort.InferenceSession(body).run(None, {"z": z.numpy()})
    assert np.allclose(images, G.sample(3, noise=z).numpy(), atol=1e-5)


def test_picking_a_class_shows_that_class(browser, conditional, mnist_dir):
    page, _ = _open(browser, conditional)
    names = page.eval_on_selector_all("#class option", "options => options.map(o => o.textContent)")
    assert names == ["any", *(f"{k} - {w}" for k, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]))]
    evaluator = EXTRACTORS["evaluator"]("mnist", mnist_dir, None, False)
    for k in (0, 7):
        shown = _samples_after(page, lambda k=k: page.select_option("#class", names[k + 1]))
        status, asked = conditional.get(f"api/samples?seed=0&n=64&class={k}")
        assert status == 200 and shown == asked  # the page shows exactly class k's samples
        grid = torch.from_numpy(_pixels(shown).astype(np.uint8))
        images = torch.stack([grid[2 + 30 * r:30 + 30 * r, 2 + 30 * c:30 + 30 * c] for r in range(8) for c in range(8)])
        share = float((evaluator(images[:, None]).probs.argmax(1) == k).float().mean())
        assert share > 0.5, (k, share)
    if os.environ.get("GANKIT_SCREENSHOTS"):  # the README's picture of the page
        page.screenshot(path=str(Path(os.environ["GANKIT_SCREENSHOTS"]) / "serve.png"), full_page=True)
    page.close()


def test_serve_refuses_what_it_cannot_do_in_one_line(served, mnist_dir, tmp_path, capsys, monkeypatch):
    port = served.url.rsplit(":", 1)[1].strip("/")
    folder = tmp_path / "plain"
    train_tiny(mnist_dir, folder, "train.epochs=1")
    assert main(["serve", str(folder), "--port", port]) == 2  # the port is taken by the running page
    assert main(["serve", str(folder), "--checkpoint", "best"]) == 2
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]
    assert errors[0] == f"gankit: error: cannot listen on 127.0.0.1 --port {port}: Address already in use"
    assert errors[1].startswith(f"gankit: error: {folder} has no best checkpoint")
    assert len(errors) == 3
    real_import = builtins.__import__

    def no_uvicorn(name, *args, **kwargs):
        if name == "uvicorn":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert main(["serve", str(folder)]) == 2
    assert capsys.readouterr().err.strip() == "gankit: error: gankit serve needs its extra: pip install 'gankit[serve]'"


def test_ctrl_c_stops_the_server_and_leaves_nothing_behind(served, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(served.run), "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stderr.readline()
        assert line.startswith(f"gankit: serving {served.run} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split(" ")[0]
        with urllib.request.urlopen(url + "api/generator.onnx") as response:  # exported through a temporary folder
            assert response.status == 200 and len(response.read()) > 1000
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read().strip() == "gankit: stopped"
    finally:
        process.kill()
    assert list(scratch.iterdir()) == []


def test_listening_beyond_this_machine_warns_and_admits_any_host_name(served, monkeypatch, caplog):
    monkeypatch.setattr("uvicorn.Server.run", lambda self, sockets=None: None)  # bind, warn, return at once
    with caplog.at_level("WARNING", logger="gankit"):
        serve(served.run, host="0.0.0.0", port=0)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("listening on 0.0.0.0: anyone who can reach this machine on port ") and " 0 " not in message
    assert _allowed_hosts("0.0.0.0") == ["*"] and "attacker.example" not in _allowed_hosts("127.0.0.1")
