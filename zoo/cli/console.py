"""What a command prints: results on stdout, one line per problem on stderr, quieter under ``-q``.

The ``zoo`` group's ``-v``/``-q`` are read back here by every command, core or plugin, so that a plugin's
command honours them without knowing the group.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

#: ``-v``/``--verbose``: one definition, applied to the group (``zoo -v export``) and to ``zoo export -v``.
verbose_option = click.option("-v", "--verbose", is_flag=True,
                              help="Show more: the exporter's own output, progress details.")


def verbosity() -> tuple[bool, bool]:
    """(verbose, quiet) as given to the ``zoo`` group (both False outside the CLI)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return (bool(obj and obj.get("verbose")), bool(obj and obj.get("quiet")))


def say(message: str = "", *, err: bool = False) -> None:
    """An informational line: shown unless ``zoo -q``."""
    if not verbosity()[1]:
        click.echo(message, err=err)


def fail(message: str, code: int) -> None:
    """The one line an error gets (``Error: ...`` on stderr), then the exit status."""
    click.echo(f"Error: {message}", err=True)
    if code in (130, 143):
        # Interrupted: every cleanup block has run. Leave now, without the interpreter's shutdown
        # (torch and OpenVINO take ~0.5 s to tear down, with the default signal actions restored, so a
        # second Ctrl-C there would end the process by the signal instead of with this status).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def echo_json(data: Any) -> None:
    import json  # here: zoo list and zoo --help print none

    click.echo(json.dumps(data, indent=2, default=str))
