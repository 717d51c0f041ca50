"""Options several of the export tooling's commands share (datasette's ``publish/common.py``, for zoo)."""

from __future__ import annotations

import click


def runtime_option(help: str):
    """``--runtime NAME``, repeatable: the registered runtimes a command runs on (`zoo runtimes` lists them)."""
    return click.option("--runtime", "runtimes", multiple=True, metavar="NAME", help=help)


def variant_option(help: str):
    """``--variant NAME``: one of a bundle's variants (fp16, int8) instead of its fp32 model."""
    return click.option("--variant", metavar="NAME", help=help)
