"""The ``ringscope`` command line: batch jobs and the demo.

Every command shows progress on long work (on stderr) and ends with a
one-screen summary (on stdout). Store selection is the same everywhere:
``--store PATH`` (embedded, default ``./.ringscope``) or ``--neo4j URI``
(or the ``RINGSCOPE_NEO4J_URI`` environment variable).

Commands that change the store (ingest, detect, train, flag, demo) hold its
write lock for the whole job: a second one waits, saying who holds the lock,
for up to ``--lock-timeout`` seconds, then exits with code 3. Everything the
CLI creates is private to the user (umask 077).
"""

from __future__ import annotations

import os

import click

from ringscope.app.cli import data, detection, models, serve

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ringscope")
def cli() -> None:
    """ringscope: fraud rings in lending portfolios, inside your own walls."""


# each room's commands (its other public names are helpers the demo shares)
for _room in (data, detection, models, serve):
    for _name in _room.__all__:
        if isinstance(getattr(_room, _name), click.Command):
            cli.add_command(getattr(_room, _name))


def main() -> None:
    """Console entry point."""
    import logging

    # Stores, rejects, flags and models hold personal data: private to the
    # user whatever the shell's umask (the store also sets modes itself).
    os.umask(0o077)

    # The driver logs each retried transient error (a deadlock between two
    # write batches on a hub node); retries are routine, failures still raise.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    cli(prog_name="ringscope")
