"""The one exception type for mistakes a user can fix (bad input, missing files, bad options)."""

from __future__ import annotations

import reprlib
from typing import Any


class GankitError(Exception):
    """A user error: the CLI prints its message on one line and exits with code 2.

    Messages speak the library's language (config keys such as `train.precision`, parameters such
    as `data_dir`); `option` names those terms (one, or a tuple) that the CLI replaces by its flags.
    """

    def __init__(self, message: str, *, option: str | tuple[str, ...] = ()):
        super().__init__(message)
        self.options = (option,) if isinstance(option, str) else tuple(option)


def short(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters (and built no longer): an error line stays one readable line."""
    cut = reprlib.Repr()
    cut.maxstring = cut.maxother = cut.maxlong = limit
    text = cut.repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
