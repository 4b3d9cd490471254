import hashlib
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import load_images
from gankit.data.decoding import CHUNK, CHUNK_BYTES, _chunks, _decode
from gankit.data.images import load_image_folder
from gankit.errors import GankitError

from conftest import CIFAR_ARCHIVE


def _make_folder(root):
    """cats and dogs of mixed sizes and modes: RGB, RGBA, grey, palette; PNG and JPEG."""
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(root / "cat" / "a.png")
    Image.fromarray(rng.integers(0, 255, (50, 50, 4), dtype=np.uint8), "RGBA").save(root / "cat" / "b.png")
    Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8), "L").save(root / "dog" / "a.png")
    Image.fromarray(rng.integers(0, 255, (64, 32), dtype=np.uint8), "L").convert("P").save(root / "dog" / "b.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "dog" / "c.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_mixed_folder_is_resized_and_round_robin_ordered(tmp_path):
    data = load_image_folder(_make_folder(tmp_path / "imgs"), train=True, size=16, channels=3)
    assert data.images.shape == (5, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.classes == ["cat", "dog"]
    assert data.labels.tolist() == [0, 1, 0, 1, 1]  # cat a, dog a, cat b, dog b, dog c
    grey = load_image_folder(tmp_path / "imgs", train=True, size=8, channels=1)
    assert grey.images.shape == (5, 1, 8, 8)


def test_an_unlabelled_folder_is_the_zero_class_case_with_its_fingerprint_as_before(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / name)
    data = load_image_folder(root, train=True, size=8, channels=3)
    assert data.classes == [] and data.labels.dtype == torch.int64 and data.labels.tolist() == [0, 0, 0]
    # an unlabelled set's fingerprint is its shape's alone, as runs trained before it carried labels recorded it
    assert data.fingerprint() == hashlib.sha256(b"(3, 3, 8, 8)").hexdigest()[:16]
    assert data.head(2).labels.tolist() == [0, 0]


def test_centre_crop_keeps_the_middle(tmp_path):
    # a 30x10 image: left third black, middle white, right third black -> square crop is all white
    array = np.zeros((10, 30), dtype=np.uint8)
    array[:, 10:20] = 255
    (tmp_path / "flat").mkdir()
    Image.fromarray(array, "L").save(tmp_path / "flat" / "x.png")
    data = load_image_folder(tmp_path / "flat", train=True, size=10, channels=1)
    assert data.labels.tolist() == [0] and data.classes == []  # unlabelled: the zero-class case
    assert data.images.min() == 255


def test_corrupt_image_is_named_or_skipped(tmp_path, caplog):
    root = _make_folder(tmp_path / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "cat" / "empty.jpg").write_bytes(b"")
    with pytest.raises(GankitError, match=r"cannot read image .*(broken.png|empty.jpg)"):
        load_image_folder(root, train=True, size=16, channels=3)
    with caplog.at_level("WARNING"):
        data = load_image_folder(root, train=True, size=16, channels=3, skip_bad=True)
    assert len(data) == 5
    assert "skipped 2 unreadable images of 7" in caplog.text


def test_empty_and_imageless_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="holds no images"):
        load_image_folder(tmp_path / "empty", train=True, size=8, channels=3)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hi")
    with pytest.raises(GankitError, match="holds no images"):
        load_images(DataConfig(dataset="folder", image_size=8, channels=3), tmp_path / "text")


def test_archive_and_decoded_cache(tmp_path, caplog):
    root = _make_folder(tmp_path / "tree" / "train")
    (tmp_path / "tree" / "test" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "tree" / "test" / "cat" / "t.png")
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "tree", arcname="top")
    with caplog.at_level("INFO"):
        first = load_image_folder(archive, train=True, size=16, channels=3)
        second = load_image_folder(archive, train=True, size=16, channels=3)
    assert "decoded 5 images" in caplog.text and "loaded 5 decoded images from the cache" in caplog.text
    assert torch.equal(first.images, second.images)
    folder = load_image_folder(root.parent, train=True, size=16, channels=3)
    assert torch.equal(folder.images, first.images)
    test = load_image_folder(archive, train=False, size=16, channels=3)
    assert len(test) == 1 and test.images[0, 0].float().mean() > 250  # the red test image


def test_cifar10_jpeg_archive():
    data = load_images(DataConfig(dataset="cifar10", image_size=32, channels=3, limit=20), CIFAR_ARCHIVE)
    assert data.images.shape == (20, 3, 32, 32)
    assert data.classes[:3] == ["airplane", "automobile", "bird"] and len(data.classes) == 10
    assert data.labels[:10].tolist() == list(range(10))  # round-robin: one of each class first
    mean = data.images.float().mean().item() / 255
    assert 0.3 < mean < 0.7


def test_archive_bombs_and_huge_files_are_refused_before_reading(tmp_path, monkeypatch):
    import zipfile

    from gankit.data import listing

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"cls/{i}.png", b"\0" * (2 * 2**20))  # 2 MiB of zeros each, a few KiB compressed
    monkeypatch.setattr(listing, "RATIO_FLOOR_BYTES", 2**20)
    with pytest.raises(GankitError, match=r"would unpack to 6,291,456 bytes, .* times its own size; gankit refuses"):
        load_image_folder(bomb, train=True, size=8, channels=3)
    monkeypatch.setattr(listing, "MAX_IMAGE_BYTES", 2**20)
    with pytest.raises(GankitError, match=r"cls/0.png is 2,097,152 bytes; an image file may have at most 1,048,576"):
        load_image_folder(bomb, train=True, size=8, channels=3)


def test_links_pipes_and_broken_links_in_a_folder_are_passed_over(tmp_path):
    import os

    root = _make_folder(tmp_path / "imgs")
    os.mkfifo(root / "cat" / "pipe.png")  # reading it would block forever
    (root / "dog" / "gone.png").symlink_to(tmp_path / "missing.png")
    (root / "dog" / "elsewhere.png").symlink_to(root / "cat" / "a.png")
    data = load_image_folder(root, train=True, size=16, channels=3)
    assert len(data) == 5  # the five real images of _make_folder


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I;16", "I", "F"])
def test_every_image_mode_converts_with_its_values_kept(tmp_path, mode):
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))  # 16x16, 0..240 across
    if mode == "I;16":
        image = Image.fromarray(ramp.astype(np.uint16) * 257)  # 16-bit: 0..61680
    elif mode == "I":
        image = Image.fromarray(ramp.astype(np.int32) * 1000)  # a wide integer range: scaled from its min to max
    elif mode == "F":
        image = Image.fromarray(ramp.astype(np.float32) / 255)  # floats in [0, 1]
    else:
        image = Image.fromarray(ramp).convert(mode)
    (tmp_path / "imgs" / "c").mkdir(parents=True)
    image.save(tmp_path / "imgs" / "c" / "x.tiff")
    grey = load_image_folder(tmp_path / "imgs", train=True, size=16, channels=1).images[0, 0].numpy().astype(int)
    if mode == "1":
        assert set(np.unique(grey)) <= {0, 255} and grey[0, 0] == 0 and grey[0, -1] == 255
    elif mode == "I":
        assert grey[0, 0] == 0 and grey[0, -1] == 255 and (np.diff(grey[0]) > 0).all()
    elif mode == "CMYK":
        assert (np.diff(grey[0]) > 0).all()  # a ramp still, through CMYK's own conversion
    else:
        assert np.abs(grey[0] - ramp[0]).max() <= 1, (mode, grey[0])


def test_flat_pictures_are_named_in_a_warning(tmp_path, caplog):
    import logging

    (tmp_path / "imgs" / "c").mkdir(parents=True)
    Image.new("RGB", (8, 8), "white").save(tmp_path / "imgs" / "c" / "white.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
        tmp_path / "imgs" / "c" / "noise.png"
    )
    with caplog.at_level(logging.WARNING):
        load_image_folder(tmp_path / "imgs", train=True, size=8, channels=3)
    assert (
        "1 of the images in" in caplog.text
        and "are a single flat colour" in caplog.text
        and "c/white.png" in caplog.text
    )


def test_decoded_images_larger_than_the_free_disk_are_refused(tmp_path, monkeypatch):
    from gankit.data import decoding

    root = _make_folder(tmp_path / "imgs")
    monkeypatch.setattr(decoding, "free_disk_bytes", lambda path: 1000)
    with pytest.raises(
        GankitError, match=r"5 images of 3x16x16 take 0.0 GiB decoded, more than the 0.0 GiB free in the cache"
    ):
        load_image_folder(root, train=True, size=16, channels=3)


def test_a_large_jpeg_is_decoded_small_and_looks_as_the_full_decode_does():
    import io

    from PIL import ImageOps

    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((2400, 1800), Image.BICUBIC)
    buffer = io.BytesIO()
    smooth.save(buffer, "JPEG", quality=95)
    small = _decode(buffer.getvalue(), "RGB", 32)  # decoded at 1/8 of the side, then fitted to 32x32
    full = np.asarray(ImageOps.fit(Image.open(buffer).convert("RGB"), (32, 32), Image.Resampling.BICUBIC))
    assert small.shape == (3, 32, 32)
    assert np.abs(small.astype(int) - full.transpose(2, 0, 1).astype(int)).mean() < 3


def test_chunks_of_large_files_hold_fewer_images():
    rows = {f"{i}.jpg": i for i in range(200)}
    small = list(_chunks(((name, b"x" * 1000) for name in rows), rows))
    assert [len(c) for c in small] == [CHUNK, CHUNK, CHUNK, 200 - 3 * CHUNK]
    large = list(_chunks(((name, b"x" * (CHUNK_BYTES // 4)) for name in rows), rows))
    assert {len(c) for c in large} == {4} and [row for c in large for row, _, _ in c] == list(range(200))
