import gzip
import shutil

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_images
from gankit.data.mnist import check_idx
from gankit.errors import GankitError


def test_mnist_from_the_gzip_files_as_given(mnist_dir):
    data = load_images(DataConfig(dataset="mnist"), mnist_dir)
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert torch.bincount(data.labels).tolist()[1] == 6742
    assert abs(data.images.float().mean().item() / 255 - 0.1307) < 0.001
    test = load_images(DataConfig(dataset="mnist"), mnist_dir, train=False)
    assert test.images.shape == (10000, 1, 28, 28)


def test_mnist_found_through_the_environment_and_a_parent_folder(mnist_dir, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA_DIR", str(mnist_dir.parent))
    data = load_images(DataConfig(dataset="mnist", limit=100), None)
    assert data.images.shape == (100, 1, 28, 28)


def test_mnist_padded_to_32(mnist_dir):
    data = load_images(DataConfig(dataset="mnist", image_size=32, limit=10), mnist_dir)
    assert data.images.shape == (10, 1, 32, 32)
    assert data.images[:, :, :2].sum() == 0 and data.images[:, :, :, -2:].sum() == 0


def test_padding_past_half_the_memory_is_refused_before_it_is_tried(mnist_dir, monkeypatch):
    import gankit.data

    monkeypatch.setattr(gankit.data, "device_memory", lambda device: 200 * 2**20)  # a machine of 200 MiB
    with pytest.raises(GankitError) as refused:
        load_images(DataConfig(dataset="mnist", image_size=64), mnist_dir)  # 60,000 x 64 x 64: 234 MiB
    assert str(refused.value) == (
        f"padding the 60,000 images of {load_images(DataConfig(), mnist_dir).source} from 28x28 to "
        "data.image_size 64 would take 0.2 GiB, more than half of this machine's 0.2 GiB; choose a smaller "
        "data.image_size, or fewer images (data.limit)"
    )
    # data.limit comes first: only the images a run keeps are padded
    assert load_images(DataConfig(dataset="mnist", image_size=64, limit=100), mnist_dir).images.shape[0] == 100


def _copy_mnist(src, dst, *, mutate=None):
    dst.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        data = gzip.decompress((src / f"{name}.gz").read_bytes())
        if mutate:
            data = mutate(name, data)
        (dst / name).write_bytes(data)
    return dst


def test_truncated_idx_file_is_named(mnist_dir, tmp_path):
    bad = _copy_mnist(mnist_dir, tmp_path / "m", mutate=lambda n, d: d[:-100] if "images" in n else d)
    with pytest.raises(GankitError, match="train-images-idx3-ubyte is truncated"):
        load_images(DataConfig(dataset="mnist"), bad)


def test_wrong_magic_is_named(mnist_dir, tmp_path):
    bad = _copy_mnist(
        mnist_dir, tmp_path / "m", mutate=lambda n, d: b"\x00\x00\x09\x03" + d[4:] if "images" in n else d
    )
    with pytest.raises(GankitError, match="not a 3-dimensional uint8 IDX file"):
        load_images(DataConfig(dataset="mnist"), bad)


def test_truncated_gzip_is_named(mnist_dir, tmp_path):
    bad = tmp_path / "m"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, bad / name)
    data = (bad / "train-images-idx3-ubyte.gz").read_bytes()
    (bad / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(GankitError, match="cannot unpack .*train-images-idx3-ubyte.gz"):
        load_images(DataConfig(dataset="mnist"), bad)


def test_label_count_mismatch(mnist_dir, tmp_path):
    def fewer_labels(name, data):
        if "labels" not in name:
            return data
        return data[:4] + (59990).to_bytes(4, "big") + data[8 : 8 + 59990]

    bad = _copy_mnist(mnist_dir, tmp_path / "m", mutate=fewer_labels)
    with pytest.raises(GankitError, match="60000 images but 59990 labels"):
        load_images(DataConfig(dataset="mnist"), bad)


def test_empty_folder_says_where_it_looked_and_what_to_put(tmp_path):
    with pytest.raises(GankitError, match=r"no mnist files found \(looked in .*\); put train-images-idx3-ubyte"):
        load_images(DataConfig(dataset="mnist"), tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_images(DataConfig(dataset="mnist"), tmp_path / "nowhere")


def test_offline_without_a_data_dir_gives_advice(monkeypatch):
    # the test machines are offline: the download fails and the message says what to do
    with pytest.raises(GankitError, match="could not be downloaded.*with data_dir"):
        load_images(DataConfig(dataset="fashion-mnist"), None)


def test_check_idx_accepts_the_real_files(mnist_dir, tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    check_idx(path, 1)
    with pytest.raises(GankitError):
        check_idx(path, 3)
