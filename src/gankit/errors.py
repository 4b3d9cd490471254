"""The one exception type for mistakes a user can fix (bad input, missing files, bad options)."""


class GankitError(Exception):
    """A user error: the CLI prints its message on one line and exits with code 2."""
