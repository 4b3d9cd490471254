"""A config value read as its key's declared type (YAML's and Python's spellings of it), or one line saying why not."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any

from gankit.config.schema import EVERY_PATTERN, SECTIONS, Config
from gankit.errors import GankitError, short


def coerce_every(value: Any, where: str) -> int | str:
    """A schedule as the config keeps it: epochs as a whole number, else text with its unit ("5kimg", "10min")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):  # YAML's reading of 2.5
        value = repr(value)
    match = EVERY_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise GankitError(
            f"{where}: expected a number of epochs, or one with a unit (5kimg, 10min), got {short(value)}"
        )
    number, unit = match.group(1), match.group(2) or "epochs"
    if unit == "epochs":
        if not float(number).is_integer():
            raise GankitError(f"{where}: a number of epochs is whole, got {short(value)}")
        return int(float(number))
    return f"{float(number):g}{unit}"


def coerce(value: Any, hint: Any, where: str) -> Any:
    if hint == int | str:  # the one union of two types: a schedule
        return coerce_every(value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(value, inner, where)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if isinstance(value, tuple):  # built in Python
            value = list(value)
        if not isinstance(value, list):
            raise GankitError(f"{where}: expected a list, got {short(value)}")
        return [coerce(v, inner, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 2**63:
                raise GankitError(f"{where}: {short(value)} is too large (whole numbers are below 2^63)")
            return value
    elif hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise GankitError(f"{where}: expected a finite number, got {short(value)}")
            return float(value)
    elif hint is str:
        if isinstance(value, os.PathLike):  # data.dir as a Path, built in Python
            value = os.fspath(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise GankitError(f"{where}: expected {hint.__name__}, got {short(value)}")


def check_types(config: Config) -> None:
    """Every value of the declared type (an int where a whole number is declared, say), as loading a file checks."""
    for name in ("name", "description"):
        setattr(config, name, coerce(getattr(config, name), str, name))
    for section_name in SECTIONS:
        section = getattr(config, section_name)
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            setattr(section, f.name, coerce(getattr(section, f.name), hints[f.name], f"{section_name}.{f.name}"))
