"""The one exception type for bad input data."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. The message names the file and, where there is one, the line."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")
        self.where, self.what = where, what

    def __reduce__(self):  # pickled with both arguments, so it crosses process pools (sekd-score --nj)
        return type(self), (self.where, self.what)
