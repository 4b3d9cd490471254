"""The one exception type for mistakes a user can fix (bad input, missing files, bad options)."""

from __future__ import annotations


class GankitError(Exception):
    """A user error: the CLI prints its message on one line and exits with code 2.

    Messages speak the library's language (config keys such as `train.precision`, parameters such
    as `data_dir`); `option` names those terms (one, or a tuple) that the CLI replaces by its flags.
    """

    def __init__(self, message: str, *, option: str | tuple[str, ...] = ()):
        super().__init__(message)
        self.options = (option,) if isinstance(option, str) else tuple(option)
