"""`storewise report segments | feedback`: reports for the people around the service (reports/)."""

from __future__ import annotations

import typer

from cli.common import ShopDir, say
from storewise.shop import DEFAULT_SHOP_DIR, ShopPaths

app = typer.Typer(help="Reports for the people around the service.", no_args_is_help=True)


@app.command("segments")
def report_segments(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """RFM segments, the journey funnel and behavioural clusters: HTML with charts, and CSVs."""
    from reports.segments import write_segment_report

    page = write_segment_report(ShopPaths(shop_dir))
    say(f"wrote {page} (open it in a browser) and the CSV exports beside it")


@app.command("feedback")
def report_feedback(shop_dir: ShopDir = DEFAULT_SHOP_DIR) -> None:
    """Click-through, conversion and revenue per recommendation source and per price change."""
    from reports.feedback import write_feedback_report

    page = write_feedback_report(ShopPaths(shop_dir))
    say(f"wrote {page} and the CSVs beside it")
