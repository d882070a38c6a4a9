"""Errors a user can fix: bad files, bad rows, bad config.

They carry where the problem is (file, row, column) so the CLI can print one clear line
and exit with code 2, instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_USAGE = 2


class StorewiseError(Exception):
    """A problem with the user's input, reported as one message and exit code 2."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = Path(path) if path is not None else None
        self.row = row
        self.column = column
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class DataError(StorewiseError):
    """A data file is missing, unreadable, or does not fit the canonical schema."""


class ConfigError(StorewiseError):
    """A config file is missing a key, has an unknown key, or a value out of range."""
