"""The `storewise` command line: one entry point, verbs grouped by step, one module per group.

| verbs | module |
|---|---|
| `data generate / import / check` | `cli/data.py` |
| `features build` | `cli/features.py` |
| `train recommender / pricing`, `evaluate`, `simulate` | `cli/train.py` |
| `compare`, `promote` | `cli/review.py` |
| `recommend`, `audience` | `cli/recommend.py` |
| `serve` | `cli/serve.py` |
| `report segments / feedback` | `cli/report.py` |
| `erase` | `cli/privacy.py` |
| `experiment start / status / stop`, `report experiment` | `cli/experiment.py` |

Every verb takes `--shop-dir` (default `data/demo`) and says where it wrote. A problem
with the user's input is one line on stderr naming the file, row and column, and exit
code 2; never a traceback. An option with a fixed set of values is an enum, so `--help`
lists them and a wrong one is a usage error (exit code 2) naming the option.
"""

from __future__ import annotations

import gc
import logging
import sys
from importlib.metadata import version
from typing import Annotated

import typer

from cli import data, experiment, features, privacy, recommend, report, review, serve, train
from storewise.errors import EXIT_USAGE, StorewiseError

app = typer.Typer(
    help="Storewise: recommendations and dynamic pricing for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(train.app, name="train")
app.add_typer(report.app, name="report")
for module in (train, review, recommend, serve, privacy):
    module.register(app)
experiment.register(app, report.app)


def show_version(asked: bool) -> None:
    if asked:
        typer.echo(f"storewise {version('storewise')}")
        raise typer.Exit()


@app.callback()
def storewise(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Storewise: recommendations and dynamic pricing for online shops."""


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except StorewiseError as error:
        typer.echo(f"error: {error.message}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        # The verb is done: leave what is still alive out of the collections Python runs
        # while it shuts down. They walked every object the imports (MLflow above all) and a
        # training run leave behind, about 1.1 s after `train recommender` had printed its
        # last line; the memory goes back to the system either way. Objects go on being freed
        # as their last reference goes, and atexit handlers still run.
        gc.freeze()
