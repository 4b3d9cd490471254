"""Configs from the shipped presets, YAML files, nested dicts and `section.key=value` overrides, checked as read."""

from __future__ import annotations

import dataclasses
import logging
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gankit.config.coerce import coerce
from gankit.config.schema import OLD_DEFAULT_METRICS, RENAMED_KEYS, RENAMED_PRESETS, SECTIONS, Config
from gankit.config.values import check_values
from gankit.errors import GankitError, short

log = logging.getLogger("gankit")


def preset_names() -> list[str]:
    folder = resources.files("gankit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    """The named preset shipped with gankit, its values checked (an old name is read as its new one)."""
    if name in RENAMED_PRESETS:
        log.warning("preset %s is now called %s", name, RENAMED_PRESETS[name])
        name = RENAMED_PRESETS[name]
    if name not in preset_names():
        raise GankitError(f"unknown preset '{name}' (known: {', '.join(preset_names())})")
    text = (resources.files("gankit") / "presets" / f"{name}.yaml").read_text()
    return config_from_dict(yaml.safe_load(text), source=f"preset '{name}'")


MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; reading megabytes of YAML takes minutes and gigabytes
MAX_CONFIG_DEPTH = 8  # a config nests sections, keys and lists: 3 levels


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases (a few hundred bytes of nested aliases expand to gigabytes) and not nested
    deeper than a config can be (thousands of brackets exhaust Python's recursion)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not accepted in a gankit config")
        if self.depth >= MAX_CONFIG_DEPTH:
            raise yaml.YAMLError(
                f"values nested deeper than {MAX_CONFIG_DEPTH} levels are not accepted in a gankit config"
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_config_file(path: Path) -> Config:
    """A config from a YAML file in the presets' format, checked key by key (an unknown key or a wrong type is refused)."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise GankitError(f"config {path} has {size:,} bytes; a gankit config has at most {MAX_CONFIG_BYTES:,}")
        data = yaml.load(path.read_text(), Loader=_NoAliasLoader)  # noqa: S506  (a safe loader, aliases refused)
    except OSError as exc:
        raise GankitError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GankitError(f"config {path} is not a text file") from None
    except yaml.YAMLError as exc:
        raise GankitError(f"config {path} is not valid YAML: {str(exc).splitlines()[0][:200]}") from None
    try:
        return config_from_dict(data, source=str(path))
    except GankitError as exc:  # every message names the file that holds the value
        message = str(exc)
        raise GankitError(
            message if message.startswith(str(path)) else f"{path}: {message}", option=exc.options
        ) from None


def config_from_dict(data: Any, *, source: str = "config") -> Config:
    """Build a Config from nested dicts; unknown keys and wrong types are user errors."""
    if not isinstance(data, dict):
        raise GankitError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    config = Config()
    for key, value in data.items():
        if key in ("name", "description"):
            setattr(config, key, coerce(value, str, f"{source}: {key}"))
            continue
        _section(config, key, source)
        if not isinstance(value, dict):
            raise GankitError(f"{source}: section '{key}' must be a mapping")
        for sub, sub_value in value.items():
            set_value(config, f"{key}.{sub}", sub_value, source=source)
    if config.output.eval_metrics == OLD_DEFAULT_METRICS:  # what runs wrote before [] meant "every default"
        config.output.eval_metrics = []
    check_values(config)
    return config


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; values are read as YAML scalars or lists."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise GankitError(f"override '{item}' must read key=value", option="override")
        try:
            value = yaml.load(raw, Loader=_NoAliasLoader) if raw.strip() else ""  # noqa: S506
        except yaml.YAMLError:
            value = raw
        try:
            set_value(config, key.strip(), value, source="override")
        except GankitError as exc:
            raise GankitError(str(exc), option="override") from None
    check_values(config)
    return config


def set_value(config: Config, dotted: str, value: Any, *, source: str) -> None:
    if dotted in RENAMED_KEYS:  # a config file or a command that uses an old name
        if source == "override":
            log.warning("%s is now called %s", dotted, RENAMED_KEYS[dotted])
        dotted = RENAMED_KEYS[dotted]
    section_name, _, key = dotted.partition(".")
    section = _section(config, section_name, source)
    if not key or "." in key or key not in {f.name for f in dataclasses.fields(section)}:
        raise GankitError(f"{source}: unknown config key {short(dotted)} (known: {', '.join(known_keys())})")
    hint = typing.get_type_hints(type(section))[key]
    if dotted == "data.in_memory" and isinstance(value, bool):  # YAML reads a bare true / false as a boolean
        value = "true" if value else "false"
    setattr(section, key, coerce(value, hint, f"{source}: {dotted}"))


def known_keys() -> list[str]:
    keys = []
    defaults = Config()
    for section in SECTIONS:
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(getattr(defaults, section))]
    return keys


def _section(config: Config, name: str, source: str) -> Any:
    if name not in SECTIONS:
        raise GankitError(f"{source}: unknown config key {short(name)} (known: {', '.join(known_keys())})")
    return getattr(config, name)
