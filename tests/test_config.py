import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit.checks import validate
from gankit.config import apply_overrides, config_from_dict, known_keys, load_preset, preset_names
from gankit.errors import GankitError


def test_seed_gan_preset_is_spec_section_1():
    c = load_preset("report-gan-mnist")
    assert (c.data.dataset, c.data.image_size, c.data.channels) == ("mnist", 28, 1)
    assert (c.model.arch, c.model.noise_dim, c.model.noise) == ("mlp", 100, "normal")
    assert c.model.g_hidden == [256, 512, 1024] and c.model.d_hidden == [1024, 512, 256]
    assert c.model.dropout == 0.3
    assert c.train.epochs == 200 and c.train.loss == "nonsaturating"
    assert (c.output.grid_every, c.output.grid_first_epoch) == (20, True)


def test_every_preset_loads_and_passes_the_checks_a_run_makes():
    assert {"report-gan-mnist", "report-dcgan-cifar10"} <= set(preset_names())
    for name in preset_names():
        config = load_preset(name)
        assert config.name == name
        validate(config)


def test_overrides_parse_yaml_values():
    c = apply_overrides(
        load_preset("report-gan-mnist"),
        ["train.lr_g=1e-4", "model.g_hidden=[8, 16]", "data.limit=100", "model.noise=uniform"],
    )
    assert c.train.lr_g == 1e-4 and c.model.g_hidden == [8, 16] and c.data.limit == 100 and c.model.noise == "uniform"
    assert apply_overrides(c, ["data.limit=null"]).data.limit is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.nope=1", "unknown config key 'train.nope'"),
        ("nope.lr=1", "unknown config key 'nope'"),
        ("train.epochs=ten", "train.epochs: expected int, got 'ten'"),
        ("train.epochs=0", "train.epochs must be positive"),
        ("train.epochs=true", "expected int"),
        ("train.loss=wasserstein", "train.loss must be one of minimax, nonsaturating"),
        ("model.g_hidden=5", "expected a list"),
        ("model.dropout=1.5", "model.dropout must be in [0, 1)"),
        ("train.lr_d=-1", "train.lr_d must be positive"),
        ("data.channels=3", "mnist is grey"),
        ("noequals", "override 'noequals' must read key=value"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(GankitError, match=None) as err:
        validate(apply_overrides(load_preset("report-gan-mnist"), [override]))
    assert message in str(err.value)


def test_config_from_dict_rejects_non_mappings():
    with pytest.raises(GankitError, match="expected a mapping"):
        config_from_dict(["a"])
    with pytest.raises(GankitError, match="section 'train' must be a mapping"):
        config_from_dict({"train": 3})


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(known_keys()),
    st.one_of(
        st.integers(-5, 5),
        st.floats(allow_nan=True),
        st.text(max_size=8),
        st.booleans(),
        st.none(),
        st.lists(st.integers(-3, 300), max_size=3),
    ),
)
def test_any_override_either_applies_or_fails_cleanly(key, value):
    config = load_preset("report-gan-mnist")
    try:
        apply_overrides(config, [f"{key}={value}"])
    except GankitError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        section, field = key.split(".")
        assert getattr(getattr(config, section), field) is not None or value is None


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10_000), st.floats(1e-6, 1.0))
def test_valid_numbers_round_trip(epochs, lr):
    config = apply_overrides(load_preset("report-gan-mnist"), [f"train.epochs={epochs}", f"train.lr_g={lr!r}"])
    assert config.train.epochs == epochs and config.train.lr_g == lr
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_fast_mnist_trains_as_gan_mnist_tanh_with_ema_in_bf16():
    # the results page measured fast-mnist as this pair of overrides: only the nominal length (no schedule reads it) differs
    fast = load_preset("fast-mnist").to_dict()
    measured = apply_overrides(
        load_preset("gan-mnist-tanh"), ["train.ema_decay=0.999", "train.precision=bf16", "train.epochs=90"]
    ).to_dict()
    assert all(fast[section] == measured[section] for section in ("data", "model", "train"))
    assert fast["train"]["lr_decay"] == "none"


def test_renamed_presets_and_keys_keep_working_and_say_their_new_names(caplog):
    import logging

    from gankit.config import maths_change

    caplog.set_level(logging.WARNING, logger="gankit")
    old = load_preset("seed-gan-mnist")
    assert "preset seed-gan-mnist is now called report-gan-mnist" in caplog.text
    assert old.to_dict() == load_preset("report-gan-mnist").to_dict()
    assert "seed-gan-mnist" not in preset_names()
    assert apply_overrides(old, ["train.sampling=replacement"]).train.batch_order == "replacement"
    assert "train.sampling is now called train.batch_order" in caplog.text
    caplog.clear()
    written_before = {
        "name": "seed-gan-mnist",
        "train": {"sampling": "replacement"},
    }  # a run folder of an earlier version
    config = config_from_dict(written_before)
    assert config.train.batch_order == "replacement" and caplog.text == ""
    assert maths_change(written_before, old.to_dict()) is None  # the same name and value, named as they are now
    assert maths_change(written_before, config.to_dict()) is None  # the old run's own config, resumed as it is
    new = load_preset("report-gan-mnist")
    assert maths_change(written_before, new.to_dict()) == ("train.batch_order", "replacement", "epochs")
