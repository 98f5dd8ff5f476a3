"""Serving people: ``dashboard``."""

from __future__ import annotations

import os

import click

from ringscope.app.cli.common import store_options
from ringscope.graph.store import DEFAULT_STORE_PATH

__all__ = ["dashboard", "start_dashboard"]


def start_dashboard(
    store_path: str | None,
    neo4j_uri: str | None,
    port: int = 8501,
    open_browser: bool = True,
    idle_minutes: float | None = None,
) -> None:
    try:
        from ringscope.app.dashboard.launch import launch
    except ImportError:
        click.echo(
            "The dashboard is not installed in this build; the store above is ready for "
            "`ringscope stats`, `ringscope flag` and Cypher."
        )
        return
    launch(store_path, neo4j_uri, port=port, open_browser=open_browser, idle_minutes=idle_minutes)


@click.command()
@store_options
@click.option("--port", type=int, default=8501, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser window.")
@click.option(
    "--idle-minutes",
    type=click.FloatRange(min=1),
    default=None,
    help="Log users out after this many minutes without activity  [default: 30].",
)
def dashboard(
    store_path: str | None, neo4j_uri: str | None, port: int, no_browser: bool, idle_minutes: float | None
) -> None:
    """Start the investigator dashboard on 127.0.0.1 (Ctrl+C or SIGTERM stops it)."""
    if store_path and neo4j_uri:
        raise click.UsageError("Give either --store or --neo4j, not both.")
    neo4j_uri = neo4j_uri or (None if store_path else os.environ.get("RINGSCOPE_NEO4J_URI"))
    start_dashboard(
        None if neo4j_uri else (store_path or DEFAULT_STORE_PATH),
        neo4j_uri,
        port=port,
        open_browser=not no_browser,
        idle_minutes=idle_minutes,
    )
