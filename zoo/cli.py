"""The ``zoo`` command line. Core commands live here; others join through ``register_commands``.

Importing this module does no work: plugin commands are added the first time
click asks the group for its commands, and torch, onnx, onnxruntime and
scikit-learn are imported only inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

import zoo
from zoo.errors import ZooError

#: Core commands defined in modules of their own, imported when asked for: ``zoo list`` stays light.
LAZY_COMMANDS = {"train": "zoo.train_command:train"}

#: What plugins imported from here before these moved to :mod:`zoo.options`.
_MOVED = {"training_options", "distributed_options", "split_options", "launch_from_options", "scaled",
          "train_from_options", "DEFAULTS"}


def __getattr__(name: str):
    if name in _MOVED:
        from zoo import options

        return getattr(options, name)
    raise AttributeError(f"module 'zoo.cli' has no attribute {name!r}")


class ZooGroup(click.Group):
    """A click group that loads plugin commands lazily and reports errors in one line."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from zoo.manager import default_plugin_manager

            default_plugin_manager().register_commands(self)

    def _load_lazy(self, name: str) -> None:
        if name in LAZY_COMMANDS and name not in self.commands:
            from zoo.specs import resolve

            self.add_command(resolve(LAZY_COMMANDS[name]), name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in LAZY_COMMANDS:
            self._load_lazy(name)
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str):
        self._load_lazy(cmd_name)
        if cmd_name not in self.commands:  # a core command (list, info, ...) needs no plugin's commands
            self._load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        show_plugin_warnings_in_one_line()
        stop_cleanly_on_sigterm()
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
    import signal
    import threading

    def terminate(signum, frame):
        raise Terminated()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)


def show_plugin_warnings_in_one_line() -> None:
    """A skipped plugin is one line on stderr, not a warning with a file name and source line."""
    import warnings

    from zoo.manager import PluginWarning

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
    import json

    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(zoo.__version__, "--version", prog_name="zoo")
@click.option("-v", "--verbose", is_flag=True, help="Show more: the exporter's own output, progress details.")
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


# -- list / info -----------------------------------------------------------------------------


@cli.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--exclude", "-x", multiple=True, metavar="PATTERN", help="Leave out models matching PATTERN.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(patterns: tuple[str, ...], exclude: tuple[str, ...], as_json: bool) -> None:
    """List models (filtered by fnmatch PATTERNS), loss policies, datasets and runtimes."""
    from zoo.registry import default_registry

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
    from zoo import table

    return f"{title}\n" + (table.render(header, rows, indent="  ") if rows else "  (none)")


def _bundle_info(path, as_json: bool) -> None:
    """A bundle's manifest in brief: what it is, how well it did, its variants and their deltas."""
    from zoo.exports.bundle import CARD_FILE
    from zoo.exports.deployed import read_manifest

    manifest = read_manifest(path)
    metrics = manifest.training.get("metrics", {})
    names = manifest.input.get("feature_names")
    data = {"bundle": str(path), "model": manifest.model.get("name"), "policy": manifest.policy.get("name"),
            "data": manifest.training.get("data"), "classes": manifest.class_labels,
            "features": f"{manifest.input['shape'][1]}" + (f" named ({', '.join(names[:3])}, ...)" if names else ""),
            "held-out accuracy": metrics.get("holdout_accuracy"), "verified": manifest.verified,
            "card": str(path / CARD_FILE) if (path / CARD_FILE).is_file() else f"none (zoo report {path})",
            "variants": {name: v.to_dict() for name, v in manifest.variants.items()}}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key != "variants":
            click.echo(f"{key}: {f'{value:.4f}' if isinstance(value, float) else value}")
    if manifest.variants:
        from zoo.exports.variants import table as variants_table

        click.echo("variants:\n" + variants_table(manifest.variants))


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(name: str, as_json: bool) -> None:
    """Describe a model, a loss policy or a dataset, or an exported bundle DIR (with its variants)."""
    from pathlib import Path

    from zoo.errors import UnknownNameError
    from zoo.registry import default_registry

    if (Path(name) / "manifest.json").is_file():
        return _bundle_info(Path(name), as_json)
    registry = default_registry()
    for kind in ("model", "policy", "dataset"):
        if name in registry.names(kind):
            break
    else:
        raise UnknownNameError("model, policy or dataset", name, registry.names("model")
                               + registry.names("policy") + registry.names("dataset"))
    obj, owner = registry.get(kind, name), registry.owner(kind, name)
    if kind == "model":
        data = {"model": obj.name, "summary": obj.summary, "task": obj.task, "emits": obj.emits,
                "builder": obj.builder if isinstance(obj.builder, str) else repr(obj.builder),
                "hyperparameters": {k: ("from the data" if k in ("input_size", "num_classes") else v)
                                    for k, v in obj.hyperparameters.items()}, "dataset": obj.dataset,
                "registered by": owner, "policy": registry.get("policy", obj.policy).describe()}
    elif kind == "policy":
        data = {"policy": obj.name, **obj.describe(), "registered by": owner}
        data.pop("name")
    else:
        data = {"dataset": obj.name, "summary": obj.summary, "task": obj.task, "registered by": owner}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {value}")


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """List installed plugins: distribution, version, hooks, what each registered, and load errors."""
    from zoo.manager import default_plugin_manager
    from zoo.registry import default_registry

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
