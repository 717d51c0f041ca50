"""The ``zoo`` command line: the group, and the core commands that read the registry (``list``, ``plugins``).

Every other command joins through ``register_commands``, the command hook, the
one way commands load lazily: ``zoo train`` from :mod:`zoo.training.commands`, the
export tooling's from :mod:`zoo.exports.commands`, a third party's from its
plugin. They are added the first time click asks the group for a command it
does not have (``zoo list`` never pays for them), and torch, onnx, onnxruntime
and scikit-learn are imported only inside the commands that need them.
"""

from __future__ import annotations

import atexit
import gc
import signal
import sys
import threading
import warnings

import click

import zoo
from zoo import table
from zoo.cli.console import echo_json, fail, verbose_option
from zoo.errors import ZooError
from zoo.manager import PluginWarning, default_plugin_manager
from zoo.registry import default_registry


class ZooGroup(click.Group):
    """A click group that loads plugin commands lazily and reports errors in one line."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True
            default_plugin_manager().register_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str):
        if cmd_name not in self.commands:  # a core command (list, plugins) needs no plugin's commands
            self._load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        show_plugin_warnings_in_one_line()
        stop_cleanly_on_sigterm()
        exit_without_a_last_collection()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except ZooError as exc:
            fail(str(exc), 1)
        except OSError as exc:  # the machine refused: disk full, file too large, no permission
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"cannot complete:{where} {exc.strerror or exc}; unfinished files were removed", 1)
        except (click.Abort, KeyboardInterrupt):
            fail("interrupted (SIGINT): unfinished files were removed, earlier ones left as they were", 130)
        except Terminated:
            fail("terminated (SIGTERM): unfinished files were removed, earlier ones left as they were", 143)
        sys.exit(code if isinstance(code, int) else 0)


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that every cleanup block runs (like KeyboardInterrupt)."""


def stop_cleanly_on_sigterm() -> None:
    """By default SIGTERM kills Python at once, leaving staging directories and temporary files behind."""
    def terminate(signum, frame):
        raise Terminated()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)


def exit_without_a_last_collection() -> None:
    """Skip the garbage collector's sweeps over every live object as the interpreter shuts down.

    Python collects several times while it tears its modules down; after ``import torch`` that is about a
    million objects, 0.4-0.5 s of every command's 2.5 s, and more on a busy machine. Freezing them in the
    last exit handler (registered first, so it runs last) leaves them to the operating system. What zoo
    writes is already fsynced and renamed; only cyclic garbage that nothing may rely on is not finalized.
    """
    if gc.freeze not in _EXIT_HOOKS:  # once per process, however often the group runs in it (tests do)
        _EXIT_HOOKS.append(gc.freeze)
        atexit.register(gc.freeze)


_EXIT_HOOKS: list = []


def import_without_collections(name: str) -> None:
    """Import a large package (torch: about a million objects) with the garbage collector paused, then freeze.

    ``import torch`` sets off three full collections on its way (0.16 s of its 1.3 s here), each walking every
    object imported so far, and every full collection after it walks them all again; none of them is garbage.
    Frozen, they are left out of every later collection. Only a command may do this: it owns its process, where
    library code would freeze its caller's objects too.
    """
    if name in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        __import__(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def show_plugin_warnings_in_one_line() -> None:
    """A skipped plugin is one line on stderr, not a warning with a file name and source line."""
    original = warnings.showwarning
    if getattr(original, "zoo_one_line", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            click.echo(f"zoo: warning: {message}", err=True)
        else:
            original(message, category, filename, lineno, file, line)

    show.zoo_one_line = True
    warnings.showwarning = show


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(zoo.__version__, "--version", prog_name="zoo")
@verbose_option
@click.option("-q", "--quiet", is_flag=True, help="Show less: results and errors only (errors go to stderr).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """zoo: classifiers paired with their loss policies, trained briefly on real
    data, exported to ONNX and verified against onnxruntime.

    \b
    Start with:
      zoo list                  what is registered
      zoo export multiclass     train, export, check parity, write a bundle
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q contradict each other: choose one")
    ctx.obj = {"verbose": verbose, "quiet": quiet}


def main() -> None:
    cli.main(prog_name="zoo")


# -- list / plugins -----------------------------------------------------------------------------


@cli.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--exclude", "-x", multiple=True, metavar="PATTERN", help="Leave out models matching PATTERN.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(patterns: tuple[str, ...], exclude: tuple[str, ...], as_json: bool) -> None:
    """List models (filtered by fnmatch PATTERNS), loss policies, datasets and runtimes."""
    registry = default_registry()
    models = [registry.get("model", n) for n in registry.names("model", patterns or None, exclude or None)]
    policies = [registry.get("policy", n) for n in registry.names("policy")]
    datasets = [registry.get("dataset", n) for n in registry.names("dataset")]
    runtimes = [registry.get("runtime", n) for n in registry.in_order("runtime")]
    if as_json:
        echo_json({
            "models": [{"name": m.name, "summary": m.summary, "policy": m.policy, "dataset": m.dataset,
                        "task": m.task, "emits": m.emits} for m in models],
            "policies": [p.describe() for p in policies],
            "datasets": [{"name": d.name, "task": d.task, "summary": d.summary} for d in datasets],
            "runtimes": [{"name": r.name, "summary": r.summary, "requires": r.requires} for r in runtimes],
        })
        return
    click.echo(_table("MODELS", ("name", "policy", "dataset", "summary"),
                      [(m.name, m.policy, m.dataset, m.summary) for m in models]))
    click.echo()
    click.echo(_table("LOSS POLICIES", ("name", "expects", "head", "targets", "decision"),
                      [(p.name, p.expects, p.head, p.targets, p.decision) for p in policies]))
    click.echo()
    click.echo(_table("DATASETS", ("name", "task", "summary"), [(d.name, d.task, d.summary) for d in datasets]))
    click.echo()
    click.echo(_table("RUNTIMES (zoo runtimes: which can run here)", ("name", "summary"),
                      [(r.name, r.summary) for r in runtimes]))


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return f"{title}\n" + (table.render(header, rows, indent="  ") if rows else "  (none)")


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """List installed plugins: distribution, version, hooks, what each registered, and load errors."""
    root = click.get_current_context().find_root().command
    if isinstance(root, ZooGroup):
        root._load_plugin_commands()  # what each plugin's register_commands added
    default_registry()  # fills in what each plugin registered
    infos = [i for i in default_plugin_manager().infos.values() if show_all or not i.builtin]
    if as_json:
        echo_json([i.to_dict() for i in infos])
        return
    if not infos:
        click.echo("no plugins installed (zoo plugins --all lists the built-ins)")
        return
    for info in infos:
        where = f"{info.distribution} {info.version}" if info.distribution else (
            "built-in" if info.builtin else info.module)
        click.echo(f"{info.name}  ({where})  {info.status}")
        if info.error:
            click.echo(f"  error: {info.error}")
        click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
        for kind, names in info.registered.items():
            if names:
                click.echo(f"  {kind}: {', '.join(names)}")
