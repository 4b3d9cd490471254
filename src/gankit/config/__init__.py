"""Typed run configuration: YAML presets plus `section.key=value` overrides, validated.

schema.py holds the sections and their defaults; reading.py builds a Config from presets, files and overrides;
coerce.py and values.py check what it holds; resume.py says what a resumed run may change."""

from gankit.config.reading import (
    apply_overrides,
    config_from_dict,
    known_keys,
    load_config_file,
    load_preset,
    preset_names,
)
from gankit.config.resume import check_resume, maths_change, model_difference
from gankit.config.schema import (
    DEVICES,
    ON_NAN,
    PRECISIONS,
    RENAMED_PRESETS,
    Config,
    DataConfig,
    Every,
    ModelConfig,
    OutputConfig,
    ScheduleConfig,
    TrainConfig,
    every,
)
from gankit.config.values import check_values, choice, positive

__all__ = [
    "DEVICES",
    "ON_NAN",
    "PRECISIONS",
    "RENAMED_PRESETS",
    "Config",
    "DataConfig",
    "Every",
    "ModelConfig",
    "OutputConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "check_resume",
    "check_values",
    "choice",
    "config_from_dict",
    "every",
    "known_keys",
    "load_config_file",
    "load_preset",
    "maths_change",
    "model_difference",
    "positive",
    "preset_names",
]
