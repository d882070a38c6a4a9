"""What every verb shares: the `--shop-dir` option and one way to say things and to fail.

A problem with the user's input is one line on stderr naming the file, row and column,
and exit code 2; never a traceback.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from storewise.errors import EXIT_USAGE

ShopDir = Annotated[Path, typer.Option("--shop-dir", help="The shop's directory.", file_okay=False)]


def say(message: str) -> None:
    typer.echo(message)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


class ModelKind(StrEnum):
    """The registered models a verb can act on (`promote`, `experiment`)."""

    RECOMMENDER = "recommender"
    PRICING = "pricing"


MODEL_NAMES = {ModelKind.RECOMMENDER: "storewise-recommender", ModelKind.PRICING: "storewise-pricing"}
