"""The consent an import assumes where the export records none (`data import --consent`).

Apart from the importers so that the CLI can list the choices in `--help` without
importing pandas.
"""

from __future__ import annotations

from enum import StrEnum


class Consent(StrEnum):
    """What to assume for customers whose consent the export does not record."""

    NONE = "none"
    PERSONALIZATION = "personalization"
    ALL = "all"
