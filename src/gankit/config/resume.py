"""What a resumed run may change (how long it runs, where it reads and writes) and what it may not (its maths)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gankit.config.schema import RENAMED_KEYS, RENAMED_PRESETS, Config, ModelConfig
from gankit.errors import GankitError, short

# keys a resumed run may change: they alter how long it runs, where it reads and what it writes, not its maths
# (but a linear lr decay spans train.epochs, so a longer run's rate steps up where it resumes; the trainer warns)
RESUMABLE = (
    "train.epochs",
    "train.kimg",
    "train.minutes",
    "train.device",
    "train.compile",
    "train.on_nan",
    "train.on_collapse",
    "train.collapse_",
    "data.dir",
    "data.in_memory",
    "data.memory_budget_gb",
    "output.",
    "description",
)


def check_resume(stored: Config, wanted: Config) -> None:
    """Refuse a resumed run whose config changes the maths; equal values and `RESUMABLE` keys pass."""
    change = maths_change(stored.to_dict(), wanted.to_dict())
    if change:
        key, old, new = change
        raise GankitError(
            f"cannot change {key} from {short(old)} to {short(new)} when resuming: "
            "it would change the run's maths (start a new run)"
        )


def maths_change(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key of `old` (a config as a dict) whose value `new` changes, other than `RESUMABLE` keys, with both
    values; None where they agree. A key `old` lacks (written before it existed) is not compared."""
    flat_new = _flatten(new)
    for old_key, value in _flatten(old).items():
        key = RENAMED_KEYS.get(old_key, old_key)  # a checkpoint may name keys by their old names
        new_value = flat_new.get(key)
        if key == "name":  # either side may name a preset by its old name
            value, new_value = _current_name(value), _current_name(new_value)
        if new_value != value and not key.startswith(RESUMABLE):
            return key, value, new_value
    return None


def _current_name(name: Any) -> Any:
    return RENAMED_PRESETS.get(name, name) if isinstance(name, str) else name


def model_difference(saved: Any, config: Config) -> str | None:
    """What differs between a checkpoint's model config and `config`'s, in words; None if they agree.

    A key the checkpoint lacks (written before the key existed) counts as its default."""
    ours = config.to_dict()["model"]
    theirs = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(theirs, dict):
        return "it records no model"
    theirs = {**dataclasses.asdict(ModelConfig()), **theirs}
    for key in sorted(set(ours) | set(theirs)):
        if theirs.get(key) != ours.get(key):
            return f"model.{key} is {theirs.get(key)!r} there, {ours.get(key)!r} here"
    return None


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
