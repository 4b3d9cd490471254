"""Data larger than memory: the decoded cache mapped from disk, its parallel and resumable decoding, data.in_memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.config import DataConfig
from gankit.data import decoding, images, listing, load_images
from gankit.data.images import load_image_folder
from gankit.data.placement import place_images
from gankit.errors import GankitError

from conftest import tiny_config


def _many_images(root, n: int = 700):
    """n small images in 3 class folders, more than the pool's threshold."""
    rng = np.random.default_rng(1)
    for i in range(n):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def test_the_pool_decodes_what_one_process_does_and_an_interrupted_decode_resumes(tmp_path, monkeypatch, caplog):
    root = _many_images(tmp_path / "imgs")
    monkeypatch.setattr(decoding, "POOL_FROM", 10**9)  # one process
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "serial-cache"))
    serial = load_image_folder(root, train=True, size=8, channels=3)
    assert serial.mapped and len(serial) == 700

    monkeypatch.setattr(decoding, "POOL_FROM", 512)  # a pool of two, interrupted after 300 files
    monkeypatch.setattr(decoding, "decode_workers", lambda: 2)
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "pool-cache"))
    read_files, served = listing.read_files, []

    def interrupted(source, names):
        for item in read_files(source, names):
            if len(served) == 300:
                raise KeyboardInterrupt
            served.append(item[0])
            yield item

    monkeypatch.setattr(listing, "read_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root, train=True, size=8, channels=3)
    (partial,) = (tmp_path / "pool-cache" / "decoded").glob("*.partial")
    kept = int((np.load(partial / "status.npy") != 0).sum())
    assert 0 < kept <= 300  # what the pool finished before the interruption is kept

    monkeypatch.setattr(
        listing, "read_files", lambda source, names: (served.append(n) or (n, d) for n, d in read_files(source, names))
    )
    served.clear()
    with caplog.at_level("INFO"):
        resumed = load_image_folder(root, train=True, size=8, channels=3)
    assert "resuming an interrupted decode" in caplog.text
    assert len(served) == 700 - kept  # only what the first attempt had not decoded is read again
    assert torch.equal(resumed.images, serial.images) and torch.equal(resumed.labels, serial.labels)
    assert not list((tmp_path / "pool-cache" / "decoded").glob("*.partial"))


def test_a_bad_file_in_the_pool_fails_in_one_line_and_leaves_no_partial_cache(tmp_path, monkeypatch):
    root = _many_images(tmp_path / "imgs", 600)
    (root / "class0" / "0003.png").write_bytes(b"not a png")
    monkeypatch.setattr(decoding, "decode_workers", lambda: 2)  # a pool on any machine
    with pytest.raises(GankitError, match=r"cannot read image .*0003.png: not an image format Pillow reads"):
        load_image_folder(root, train=True, size=8, channels=3)
    assert not list(images.cache_dir().glob("decoded/*.partial"))
    skipped = load_image_folder(root, train=True, size=8, channels=3, skip_bad=True)
    assert len(skipped) == 599


def test_in_memory_choices_and_the_budget(mnist_dir, caplog):
    config = DataConfig(dataset="mnist", limit=512)
    data = load_images(config, mnist_dir)
    assert not data.mapped
    cpu = torch.device("cpu")
    kept = place_images(data, DataConfig(in_memory="auto"), cpu)
    assert kept is data
    with caplog.at_level("INFO"):
        mapped = place_images(data, DataConfig(in_memory="auto", memory_budget_gb=0.0001), cpu)  # 107 KB < 401 KB
    assert mapped.mapped and torch.equal(mapped.images, data.images)
    assert "more than the 0.00 GiB budget" in caplog.text
    assert place_images(data, DataConfig(in_memory="false"), cpu).mapped
    back = place_images(mapped, DataConfig(in_memory="true"), cpu)
    assert not back.mapped and torch.equal(back.images, data.images)


def test_training_from_disk_under_a_small_budget_equals_training_in_memory(mnist_dir, tmp_path, caplog):
    with caplog.at_level("INFO"):
        from_disk = gankit.train(
            tiny_config("train.epochs=2", "data.memory_budget_gb=0.0001"), tmp_path / "disk", data_dir=mnist_dir
        )
    assert "are read from disk as batches need them" in caplog.text
    in_memory = gankit.train(
        tiny_config("train.epochs=2", "data.in_memory=true"), tmp_path / "memory", data_dir=mnist_dir
    )
    for a, b in zip(from_disk.generator().parameters(), in_memory.generator().parameters()):
        assert torch.equal(a, b)
    assert from_disk.config.data.in_memory == "auto" and in_memory.config.data.in_memory == "true"
