"""The table of bad inputs: each gives one clear line, exit code 2, and writes or loses nothing."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from gankit.cli import main
from gankit.errors import GankitError

from conftest import CIFAR_ARCHIVE, MNIST_DIR, train_tiny


def _mnist_copy(tmp, mutate=None, gz=False):
    folder = tmp / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        data = gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())
        data = mutate(name, data) if mutate else data
        if gz:
            (folder / f"{name}.gz").write_bytes(
                gzip.compress(data, compresslevel=1)[:-200]
                if "images" in name
                else gzip.compress(data, compresslevel=1)
            )
        else:
            (folder / name).write_bytes(data)
    return folder


def _images(tmp, files):
    folder = tmp / "imgs"
    (folder / "cls").mkdir(parents=True)
    for name, data in files.items():
        (folder / "cls" / name).write_bytes(data)
    return folder


def _png(tmp):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp / "ok.png")
    return (tmp / "ok.png").read_bytes()


def _yaml(tmp, text):
    (tmp / "c.yaml").write_text(text)
    return str(tmp / "c.yaml")


def _a_run(tmp):
    return train_tiny(MNIST_DIR, tmp / "run", "train.epochs=1").path


MLP = ["train", "report-gan-mnist", "--out", "{out}"]
FOLDER = ["train", "report-gan-mnist", "--set", "data.dataset=folder", "--set", "data.channels=3", "--out", "{out}"]
# (id, setup(tmp) -> data dir or None, arguments ({data} and {out} filled in), words the error line holds)
CASES = [
    ("missing data dir", lambda t: t / "nowhere", [*MLP, "--data-dir", "{data}"], "does not exist"),
    (
        "truncated IDX",
        lambda t: _mnist_copy(t, lambda n, d: d[:-7] if "images" in n else d),
        [*MLP, "--data-dir", "{data}"],
        "is truncated",
    ),
    (
        "wrong IDX magic",
        lambda t: _mnist_copy(t, lambda n, d: b"\x01\x02\x08\x03" + d[4:] if "images" in n else d),
        [*MLP, "--data-dir", "{data}"],
        "bad header",
    ),
    (
        "IDX of wrong rank",
        lambda t: _mnist_copy(t, lambda n, d: d[:3] + b"\x02" + d[4:] if "images" in n else d),
        [*MLP, "--data-dir", "{data}"],
        "not a 3-dimensional",
    ),
    (
        "label count mismatch",
        lambda t: _mnist_copy(t, lambda n, d: d[:4] + (100).to_bytes(4, "big") + d[8:108] if "labels" in n else d),
        [*MLP, "--data-dir", "{data}"],
        "60000 images but 100 labels",
    ),
    ("truncated gzip", lambda t: _mnist_copy(t, gz=True), [*MLP, "--data-dir", "{data}"], "cannot unpack"),
    ("folder without MNIST", lambda t: t, [*MLP, "--data-dir", "{data}"], "no mnist files found"),
    (
        "empty image folder",
        lambda t: (t / "e").mkdir() or t / "e",
        [*FOLDER, "--data-dir", "{data}"],
        "holds no images",
    ),
    (
        "folder of text files",
        lambda t: _images(t, {"a.txt": b"hello"}),
        [*FOLDER, "--data-dir", "{data}"],
        "holds no images",
    ),
    (
        "corrupt image",
        lambda t: _images(t, {"a.png": _png(t), "b.png": b"\x89PNG\r\n\x1a\nnope"}),
        [*FOLDER, "--data-dir", "{data}"],
        "cannot read image",
    ),
    (
        "zero-byte image",
        lambda t: _images(t, {"a.png": _png(t), "b.jpg": b""}),
        [*FOLDER, "--data-dir", "{data}"],
        "cannot read image",
    ),
    (
        "folder data set without a folder",
        lambda t: None,
        FOLDER,
        "needs a folder or archive of images: name it with --data-dir",
    ),
    (
        "no CIFAR-10 in the folder",
        lambda t: t,
        ["train", "report-dcgan-cifar10", "--out", "{out}", "--data-dir", "{data}"],
        "no CIFAR-10 found",
    ),
    (
        "fewer images than a batch",
        lambda t: MNIST_DIR,
        [*MLP, "--data-dir", "{data}", "--limit", "10"],
        "fewer than one batch",
    ),
    (
        "unknown preset",
        lambda t: None,
        ["train", "seed-gan-mnits", "--out", "{out}"],
        "unknown preset 'seed-gan-mnits'",
    ),
    ("unknown --set key", lambda t: None, [*MLP, "--set", "train.lr=1"], "--set: unknown config key 'train.lr'"),
    ("unknown --set section", lambda t: None, [*MLP, "--set", "optim.lr=1"], "unknown config key 'optim'"),
    ("--set without =", lambda t: None, [*MLP, "--set", "train.epochs"], "--set 'train.epochs' must read key=value"),
    ("non-number for --epochs", lambda t: None, [*MLP, "--epochs", "ten"], "expected a whole number, got 'ten'"),
    ("zero epochs", lambda t: None, [*MLP, "--epochs", "0"], "expected a positive whole number"),
    ("negative epochs", lambda t: None, [*MLP, "--epochs", "-3"], "expected a positive whole number"),
    ("zero batch size", lambda t: None, [*MLP, "--set", "train.batch_size=0"], "train.batch_size must be positive"),
    ("negative image size", lambda t: None, [*MLP, "--set", "data.image_size=-1"], "data.image_size must be positive"),
    ("zero noise size", lambda t: None, [*MLP, "--set", "model.noise_dim=0"], "model.noise_dim must be positive"),
    ("NaN learning rate", lambda t: None, [*MLP, "--set", "train.lr_g=.nan"], "expected a finite number"),
    ("unknown loss", lambda t: None, [*MLP, "--set", "train.loss=wasserstein"], "train.loss must be one of"),
    (
        "a parameter the loss does not take",
        lambda t: None,
        [*MLP, "--set", "train.loss=lsgan", "--set", "train.label_smoothing=0.1"],
        "train.label_smoothing applies to the BCE losses, not to train.loss lsgan",
    ),
    ("string where a list goes", lambda t: None, [*MLP, "--set", "model.g_hidden=wide"], "expected a list"),
    (
        "config file with a wrong type",
        lambda t: _yaml(t, "train:\n  epochs: many\n"),
        ["train", "{data}", "--out", "{out}"],
        "train.epochs: expected int",
    ),
    (
        "config file that is not YAML",
        lambda t: _yaml(t, "train: [unclosed\n"),
        ["train", "{data}", "--out", "{out}"],
        "is not valid YAML",
    ),
    (
        "config file with an unknown field",
        lambda t: _yaml(t, "model:\n  depth: 3\n"),
        ["train", "{data}", "--out", "{out}"],
        "unknown config key 'model.depth'",
    ),
    ("no GPU for --device cuda", lambda t: None, [*MLP, "--device", "cuda"], "no CUDA GPU is available"),
    (
        "resume of a folder that is no run",
        lambda t: (t / "x").mkdir() or t / "x",
        ["train", "--resume", "--out", "{data}"],
        "is not a gankit run folder",
    ),
    ("unknown command", lambda t: None, ["fly"], "invalid choice: 'fly'"),
    (
        "an empty --out",
        lambda t: None,
        ["train", "report-gan-mnist", "--out", ""],
        "argument --out: expected a path, got an empty string",
    ),
]


@pytest.mark.parametrize("setup, args, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(setup, args, words, tmp_path, capsys):
    data = setup(tmp_path)
    out = tmp_path / "out"
    before = _snapshot(tmp_path)
    code = main([a.format(data=data, out=out) for a in args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("gankit: error:")]
    assert code == 2
    assert "Traceback" not in err
    assert len(errors) == 1 and words in errors[0], err
    assert not out.exists()
    assert _snapshot(tmp_path) == before  # nothing written, nothing lost


def test_existing_run_is_neither_overwritten_nor_changed(tmp_path, capsys):
    run = _a_run(tmp_path)
    before = _snapshot(run)
    for args in (
        ["train", "report-gan-mnist", "--data-dir", str(MNIST_DIR), "--out", str(run)],
        ["train", "--resume", "--out", str(run), "--set", "train.lr_g=0.1"],
        ["train", "report-dcgan-cifar10", "--resume", "--out", str(run), "--data-dir", str(CIFAR_ARCHIVE)],
    ):
        capsys.readouterr()
        assert main(args) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]
        assert len(errors) == 1
    assert _snapshot(run) == before


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


def _snapshot(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_yaml_aliases_are_refused_before_they_expand(tmp_path, capsys):
    # nine levels of nine aliases: 9^9 strings if expanded
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
    ]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"gankit: error: config {path} is not valid YAML: aliases (*name) are not accepted in a gankit config"
    ]


def test_a_config_that_is_not_text_is_named(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81 binary")
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"gankit: error: config {path} is not a text file"


def test_a_flag_and_a_set_of_the_same_key_must_agree(capsys):
    assert main(["train", "report-gan-mnist", "--epochs", "1", "--set", "train.epochs=5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gankit: error: train.epochs is set twice, by a flag (1) and by --set train.epochs=5: give it once"
    )


def test_a_file_that_is_no_image_is_named_without_python_internals(tmp_path, capsys):
    data = _images(tmp_path, {"a.png": _png(tmp_path), "b.png": b"GIF89a but not really"})
    assert main([*[a.format(out=tmp_path / "out") for a in FOLDER], "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("b.png: not an image format Pillow reads (set data.skip_bad_images=true to skip such files)")
    assert "BytesIO" not in err


def test_interrupting_a_command_that_is_not_training_does_not_suggest_resume(monkeypatch, capsys):
    import gankit.cli.commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(gankit.cli.commands, "cmd_presets", interrupted)
    assert main(["presets"]) == 130
    assert capsys.readouterr().err.strip() == "gankit: interrupted"


def test_a_users_files_are_not_replaced_without_force(tmp_path, capsys):
    run = _a_run(tmp_path)
    mine = {
        name: f"the user's {name}".encode() for name in ("s.png", "s.npy", "w.gif", "g.onnx", "g.pt.json", "page.html")
    }
    for name, data in mine.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "report.html").write_text("the user's page")
    cases = [
        (["sample", str(run), "--out", str(tmp_path / "s.png")], "s.png"),
        (["sample", str(run), "--format", "npy", "--out", str(tmp_path / "s.npy")], "s.npy"),
        (["interpolate", str(run), "--format", "gif", "--out", str(tmp_path / "w.gif")], "w.gif"),
        (["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "g.pt")], "g.pt.json"),
        (["report", str(run), "--out", str(tmp_path / "page.html")], "page.html"),
    ]
    for args, name in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"gankit: error: {tmp_path / name} already exists; name another file, or replace it with --force"
        ]
    assert main(["train", "report-gan-mnist", "--data-dir", str(MNIST_DIR), "--out", str(tmp_path / "folder")]) == 2
    assert "already holds files that are not a gankit run; choose a new or empty --out" in capsys.readouterr().err
    assert all((tmp_path / name).read_bytes() == data for name, data in mine.items())
    assert (tmp_path / "folder" / "report.html").read_text() == "the user's page"
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--force"]) == 0  # asked for: replaced
    assert (tmp_path / "s.png").read_bytes() != mine["s.png"]


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["sample", "{run}", "--n", "1000000000", "--format", "npy"],
            "--n 1000000000 asks for 1,000,000,000 images of 784 bytes; at most 2,739,",
        ),
        (["interpolate", "{run}", "--steps", "100000000"], "pairs 8 x steps 100000000 asks for 800,000,000 images"),
    ],
)
def test_huge_requests_are_refused_before_allocating(tmp_path, capsys, args, words):
    run = _a_run(tmp_path)
    assert main([a.format(run=run) for a in args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: error:")]
    assert len(errors) == 1 and words in errors[0], errors


def test_long_values_are_cut_in_error_lines(capsys):
    assert main(["train", "report-gan-mnist", "--set", "model.noise=" + "x" * 100_000]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err) < 300 and "..." in err
    assert main(["train", "report-gan-mnist", "--set", "output.grid_samples=1000000000"]) == 2
    assert "output.grid_samples is at most 4096" in capsys.readouterr().err


def test_a_number_too_large_for_its_type_is_one_line(capsys):
    assert main(["train", "report-gan-mnist", "--seed", "99999999999999999999"]) == 2
    assert capsys.readouterr().err.strip() == (
        "gankit: error: --set: train.seed: 99999999999999999999 is too large (whole numbers are below 2^63)"
    )
    assert main(["train", "report-gan-mnist", "--seed", str(2**40)]) == 2
    assert "train.seed must be in [0, 2^32)" in capsys.readouterr().err


def test_a_cache_variable_naming_a_file_or_an_impossible_path_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    for value in (tmp_path / "a-file", "/proc/no/such/place"):
        monkeypatch.setenv("GANKIT_CACHE_DIR", str(value))
        assert main(["train", "report-gan-mnist", "--data-dir", str(MNIST_DIR), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"gankit: error: gankit's cache {value} (from $GANKIT_CACHE_DIR) cannot be a folder"
        ), err
    assert not (tmp_path / "out").exists()


def test_a_damaged_grid_is_left_out_of_the_report(tmp_path, caplog):
    import logging

    run = _a_run(tmp_path)
    (run / "grids" / "epoch-0002.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(run)]) == 0
    assert "epoch-0002.png is damaged or not a PNG" in caplog.text
    assert "epoch 1" in (run / "report.html").read_text()


def test_a_bad_idx_file_is_named_by_the_users_file(tmp_path, capsys):
    data = _mnist_copy(tmp_path, lambda n, d: d[:-7] if "images" in n else d)
    assert main([*[a.format(out=tmp_path / "out") for a in MLP], "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gankit: error: {data / 'train-images-idx3-ubyte'} is truncated or padded"), err


def test_a_learning_rate_that_diverges_at_once_leaves_no_folder(tmp_path):
    with pytest.raises(GankitError, match="the losses became NaN or infinite at epoch 1"):
        train_tiny(MNIST_DIR, tmp_path / "r", "train.epochs=1", "train.lr_d=1e30", "train.lr_g=1e30")
    assert not (tmp_path / "r").exists()
    train_tiny(MNIST_DIR, tmp_path / "r", "train.epochs=1")  # corrected, the same folder is free


def test_set_values_take_no_aliases_and_force_never_replaces_a_device(tmp_path, capsys):
    assert main(["train", "report-gan-mnist", "--set", "model.g_hidden=[&a [1, 2], *a]"]) == 2
    # the aliases make it no YAML value, so it stays the text it was, which is no list of widths
    assert "model.g_hidden: expected a list, got '[&a [1, 2], *a]'" in capsys.readouterr().err
    run = _a_run(tmp_path)
    capsys.readouterr()
    assert main(["sample", str(run), "--out", "/dev/null", "--force"]) == 2
    assert (
        capsys.readouterr().err.strip() == "gankit: error: /dev/null exists and is not a plain file; name another file"
    )
    assert main(["report", str(run), "--out", ""]) == 2


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.seed", -1, "train.seed must be in [0, 2^32), got -1"),
        ("train.precision", "fp16", "train.precision must be one of fp32, bf16; got 'fp16'"),
        ("train.epochs", 0, "train.epochs must be positive, got 0"),
        ("train.epochs", 1.5, "train.epochs: expected int, got 1.5"),
        ("data.limit", -5, "data.limit must be positive, got -5"),
        ("train.batch_size", 0, "train.batch_size must be positive, got 0"),
        ("output.grid_samples", 0, "output.grid_samples must be positive, got 0"),
        ("train.lr_g", "fast", "train.lr_g: expected float, got 'fast'"),
    ],
)
def test_the_library_checks_a_config_built_in_python_before_any_folder_exists(tmp_path, key, value, message):
    import gankit

    from conftest import tiny_config

    config = tiny_config("train.epochs=1")
    section, name = key.split(".")
    setattr(getattr(config, section), name, value)
    with pytest.raises(GankitError) as error:
        gankit.train(config, tmp_path / "run", data_dir=MNIST_DIR)
    assert str(error.value) == message
    assert not (tmp_path / "run").exists()


def test_a_conditional_preset_on_a_folder_of_one_class_is_refused_before_training(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pictures" / "cat"
    folder.mkdir(parents=True)
    for i in range(70):
        Image.new("RGB", (32, 32), (i, 100, 200)).save(folder / f"{i:03d}.png")
    assert (
        main(
            [
                "train",
                "cgan-cifar10",
                "--data-dir",
                str(folder.parent),
                "--out",
                str(tmp_path / "run"),
                "--set",
                "data.dataset=folder",
                "--batch-size",
                "8",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gankit: error: model.conditioning projection needs at least 2 classes, and {folder.parent} (train) has 1 "
        "(['cat']); train an unconditional preset on it instead"
    )
    assert not (tmp_path / "run").exists()


def test_a_run_whose_config_yaml_is_broken_says_so_in_every_command(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(MNIST_DIR, run, "train.epochs=1")
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("  num_classes: 0\n", "  num_classes: 1\n"))
    for args in (["sample", str(run)], ["report", str(run)], ["train", "--resume", "--out", str(run), "--epochs", "2"]):
        capsys.readouterr()
        assert main(args) == 2, args
        assert (
            capsys.readouterr()
            .err.strip()
            .splitlines()[-1]
            .startswith(f"gankit: error: {run / 'config.yaml'}: model.num_classes must be 0")
        ), args


def test_too_few_samples_for_a_metric_are_refused_naming_it(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(MNIST_DIR, run, "train.epochs=1")
    assert main(["eval", str(run), "--n", "3"]) == 2
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "gankit: error: --n must be at least 4 (metric pr needs them), got 3"
    )
    assert (
        main(
            [
                "train",
                "report-gan-mnist",
                "--out",
                str(tmp_path / "new"),
                "--eval-every",
                "1",
                "--set",
                "output.eval_n=3",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "gankit: error: output.eval_n must be at least 4 (metric pr needs them), got 3"
    )
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("config", ["deep", "huge"])
def test_a_config_too_deep_or_too_large_is_refused_at_once(tmp_path, capsys, config):
    path = tmp_path / f"{config}.yaml"
    path.write_text("train:\n  lr_g: " + "[" * 5000 + "]" * 5000 + "\n" if config == "deep" else "a" * 2_000_000)
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gankit: error: config {path} is not valid YAML: values nested deeper than 8 levels are not accepted in a "
        "gankit config"
        if config == "deep"
        else f"gankit: error: config {path} has 2,000,000 bytes; a gankit config has at most 1,048,576"
    )


def _with_chunk_changed(png: bytes, kind: bytes, change) -> bytes:
    """The PNG with one chunk's data changed by `change` and its CRC made right again, so that only decoding can tell."""
    import struct
    import zlib

    at = png.index(kind)
    length = struct.unpack(">I", png[at - 4 : at])[0]
    data = change(png[at + 4 : at + 4 + length])
    chunk = kind + data
    return (
        png[: at - 4]
        + struct.pack(">I", len(data))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + png[at + 8 + length :]
    )


@pytest.mark.parametrize("damage", ["corrupt compressed data", "a huge header"])
def test_report_leaves_out_a_grid_that_only_decoding_shows_is_damaged(tmp_path, capsys, caplog, damage):
    import struct

    run = tmp_path / "run"
    train_tiny(MNIST_DIR, run, "train.epochs=1")
    grid = run / "grids" / "epoch-0001.png"
    png = grid.read_bytes()
    if damage == "corrupt compressed data":
        png = _with_chunk_changed(png, b"IDAT", lambda d: d[:2] + bytes(b ^ 0x55 for b in d[2:40]) + d[40:])
    else:
        png = _with_chunk_changed(png, b"IHDR", lambda d: struct.pack(">II", 12000, 12000) + d[8:])
    grid.write_bytes(png)
    assert main(["report", str(run), "--out", str(tmp_path / "page.html")]) == 0
    assert f"{grid} is" in caplog.text and "left out of the report" in caplog.text
    assert (tmp_path / "page.html").is_file()


def test_a_damaged_cached_evaluator_is_trained_again_not_a_traceback(tmp_path, monkeypatch, caplog):
    from gankit import evaluators

    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    path = evaluators._cache_path("mnist", evaluators._real("mnist", MNIST_DIR, train=True))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a weights file")
    trained = []

    def quick(dataset, train, test, **options):  # stands in for the minutes of real training
        trained.append(dataset)
        return evaluators._build(dataset, 0.1307, 0.3081), {"test_accuracy": 0.0}

    monkeypatch.setattr(evaluators, "train_evaluator", quick)
    net, info = evaluators.load_evaluator("mnist", MNIST_DIR, progress=False)
    assert trained == ["mnist"] and info == {"test_accuracy": 0.0}
    assert f"the cached mnist evaluator {path} is damaged (UnpicklingError): training it again" in caplog.text
    assert evaluators.load_evaluator("mnist", MNIST_DIR, progress=False)[1] == info  # the new one is cached
    assert trained == ["mnist"]


def test_a_run_folder_inside_its_own_image_folder_is_refused(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(70):
        Image.new("RGB", (32, 32), (i, 100, 200)).save(folder / f"{i:03d}.png")
    assert main(["train", "dcgan-small-data", "--data-dir", str(folder), "--out", str(folder / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gankit: error: the run folder {folder / 'run'} is inside the data folder {folder}: its grids would be read "
        "as training images; choose a run folder outside it"
    )
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:03d}.png" for i in range(70)]


@pytest.mark.parametrize("setting", ["model.g_hidden=[100000000]", "model.noise_dim=1000000000"])
def test_nets_that_cannot_fit_in_memory_are_refused_before_any_weight(tmp_path, capsys, setting):
    assert (
        main(
            [
                "train",
                "report-gan-mnist",
                "--data-dir",
                str(MNIST_DIR),
                "--out",
                str(tmp_path / "run"),
                "--set",
                setting,
            ]
        )
        == 2
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("gankit: error: the model has ") and last.endswith(
        "GiB of cpu memory here; choose smaller model widths"
    ), last
    assert not (tmp_path / "run").exists()


def test_the_memory_check_leaves_the_weights_a_seed_gives_unchanged():
    import torch

    from gankit.models import build_models
    from gankit.training.state import check_fits

    from conftest import tiny_config

    config = tiny_config()
    torch.manual_seed(0)
    check_fits(config, torch.device("cpu"), 2**40)
    checked = build_models(config)[0].state_dict()
    torch.manual_seed(0)
    plain = build_models(config)[0].state_dict()
    assert all(torch.equal(checked[key], plain[key]) for key in plain)


def test_a_sample_grid_too_large_for_one_picture_is_refused_before_sampling(tmp_path, capsys):
    run = tmp_path / "run"
    train_tiny(MNIST_DIR, run, "train.epochs=1")
    assert main(["sample", str(run), "--n", "16385"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "gankit: error: a grid holds at most 16,384 images, and --n is 16,385: write them with --format files or npy"
    )
    assert not (run / "samples").exists()
    assert main(["sample", str(run), "--n", "16385", "--format", "npy", "--out", str(tmp_path / "many.npy")]) == 0
    import numpy as np

    assert np.load(tmp_path / "many.npy").shape == (16385, 28, 28, 1)


def test_a_config_built_in_python_may_use_paths_and_tuples():
    from pathlib import Path

    from gankit.checks import validate

    from conftest import tiny_config

    config = tiny_config()
    config.data.dir, config.model.g_hidden = Path("/somewhere"), (16, 16)
    validate(config)
    assert config.data.dir == "/somewhere" and config.model.g_hidden == [16, 16]
    config.output.eval_n = 2  # unused while the run does not score (older run folders hold such values)
    validate(config)
