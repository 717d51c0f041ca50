"""The plugin manager: built-in plugins first, then the ``zoo`` entry-point group, each in isolation.

One broken plugin must never take the CLI down. A plugin that fails to import,
fails pluggy's validation, implements a hook that does not exist, raises in a
hook or registers something invalid is skipped with one warning that names it
and the error; everything else keeps working. Two environment variables steer
this:

``ZOO_STRICT_PLUGINS=1``
    Turn every such failure into an error (for plugin authors and CI).
``ZOO_LOAD_PLUGINS=dist-a,dist-b``
    Load only these distributions' plugins; set but empty loads the built-ins
    only. A plugin is code that runs on import: this is the lever to control
    which code that is.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import, so zoo lists the entry points with ``importlib.metadata`` (as
pluggy does) and registers each plugin through pluggy's public ``register``.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, first_line

ENTRY_POINT_GROUP = "zoo"
STRICT_ENV = "ZOO_STRICT_PLUGINS"
ALLOW_ENV = "ZOO_LOAD_PLUGINS"

#: Built-in plugins, imported by module name. They use the public hooks only.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "zoo.training.commands",
    "zoo.plugins.multiclass",
    "zoo.plugins.binary",
    "zoo.plugins.datasets",
    "zoo.exports.runtimes.onnxruntime",
    "zoo.exports.runtimes.reference",
    "zoo.exports.runtimes.openvino",
    "zoo.exports.commands",
)

REGISTERED_KINDS = ("models", "policies", "datasets", "runtimes", "commands")


class PluginWarning(UserWarning):
    """A plugin was skipped; the message names it and says why."""


@dataclass
class PluginInfo:
    """What zoo knows of one plugin: where it came from, what it added, and how it failed."""

    name: str
    module: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | not loaded
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in REGISTERED_KINDS})

    @property
    def label(self) -> str:
        if self.builtin:
            return f"built-in {self.name}"
        if self.distribution:
            return f"plugin {self.name!r} from {self.distribution} {self.version}"
        return f"plugin {self.name!r}"

    def to_dict(self) -> dict:
        return {"name": self.name, "module": self.module, "builtin": self.builtin,
                "distribution": self.distribution, "version": self.version, "status": self.status,
                "error": self.error, "hooks": self.hooks, "registered": self.registered}


def normalize(name: str) -> str:
    """PEP 503 name normalization: 'Zoo_Deep.MLP' and 'zoo-deep-mlp' are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def allow_list_from_env() -> set[str] | None:
    """None when unset (load everything); a set of normalized names otherwise (maybe empty)."""
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {normalize(part) for part in value.split(",") if part.strip()}


class ZooPluginManager(pluggy.PluginManager):
    """A pluggy plugin manager that records a :class:`PluginInfo` per plugin and isolates failures."""

    def __init__(self, *, strict: bool | None = None) -> None:
        super().__init__("zoo")
        self.add_hookspecs(hookspecs)
        self.strict = strict_from_env() if strict is None else strict
        self.infos: dict[str, PluginInfo] = {}

    # -- failures ----------------------------------------------------------------------------

    def fail(self, info: PluginInfo, what: str, exc: BaseException | str, *, unregister: bool = True) -> None:
        """Record that ``info``'s plugin failed; raise in strict mode, else warn once and go on."""
        detail = exc if isinstance(exc, str) else _describe(exc)
        info.status, info.error = "failed", f"{what}: {detail}"
        if self.strict:
            raise PluginError(f"{info.label} {info.error} ({STRICT_ENV} is set)")
        warnings.warn(f"{info.label} {info.error}; skipped it", PluginWarning, stacklevel=2)
        plugin = self.get_plugin(info.name) if unregister else None
        if plugin is not None:
            self.unregister(plugin)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """pluggy's ``register``, also recording a :class:`PluginInfo` (with the hooks implemented)."""
        name = super().register(plugin, name)
        if name is not None:
            module = getattr(plugin, "__name__", type(plugin).__qualname__)
            info = self.infos.setdefault(name, PluginInfo(name, module, builtin=False))
            info.hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
        return name

    def info_for(self, plugin: object) -> PluginInfo:
        return self.infos[self.get_name(plugin)]

    # -- loading -----------------------------------------------------------------------------

    def load_builtins(self) -> None:
        for name in DEFAULT_PLUGINS:
            self.infos[name] = PluginInfo(name, name, builtin=True)
            self.register(importlib.import_module(name), name=name)

    def load_entry_points(self, allow: set[str] | None = None) -> None:
        """Load every plugin in the ``zoo`` entry-point group that ``allow`` admits (None: all)."""
        found: set[str] = set()
        for ep in find_entry_points():
            found.add(normalize(ep.dist))
            info = PluginInfo(ep.name, ep.value, False, ep.dist, ep.version)
            if ep.name in self.infos:
                other = self.infos[ep.name]
                self.infos[f"{ep.name} ({ep.dist})"] = info
                self.fail(info, "was not loaded", f"the plugin name {ep.name!r} is already taken by {other.label}",
                          unregister=False)
                continue
            self.infos[ep.name] = info
            if allow is not None and normalize(ep.dist) not in allow:
                info.status = "not loaded"
                info.error = f"{ep.dist} is not in {ALLOW_ENV}"
                continue
            self._load_one(ep, info)
        for missing in sorted((allow or set()) - found):
            warnings.warn(f"{ALLOW_ENV} names {missing!r}, but no installed distribution by that name "
                          f"has zoo plugins", PluginWarning, stacklevel=2)

    def _load_one(self, ep: EntryPoint, info: PluginInfo) -> None:
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # ImportError, SyntaxError, sys.exit(), anything raised at import
            return self.fail(info, f"failed to import {ep.value!r}", exc)
        try:
            self.register(plugin, name=ep.name)
        except (Exception, SystemExit) as exc:  # pluggy.PluginValidationError and the like
            return self.fail(info, "is not a valid plugin", exc)
        unknown = [h for h in info.hooks if not hasattr(hookspecs, h)]
        if unknown:
            return self.fail(info, "is not a valid plugin",
                             f"it implements {', '.join(unknown)}, which zoo has no hook for "
                             f"(hooks: {', '.join(hook_names())})")

    # -- calling the registration hooks --------------------------------------------------------

    def implementations(self, hook_name: str):
        """``(info, call)`` for every loaded plugin implementing ``hook_name``, in registration order.

        ``call(**kwargs)`` runs that plugin's implementation alone, so that a failure can be pinned
        on the plugin that caused it, and through pluggy's own hook calling (a hook caller for that
        plugin's subset): tracing and ``add_hookcall_monitoring`` see every call.
        """
        plugins = self.get_plugins()
        for impl in getattr(self.hook, hook_name).get_hookimpls():
            info = self.info_for(impl.plugin)
            if info.status == "loaded":
                yield info, self.subset_hook_caller(hook_name, remove_plugins=plugins - {impl.plugin})

    def register_commands(self, cli) -> None:
        """Let every plugin add its commands to ``cli``; a failing or clashing plugin adds none."""
        owners = {name: "the zoo core" for name in cli.commands}
        for info, call in self.implementations("register_commands"):
            before = dict(cli.commands)
            try:
                call(cli=cli)
            except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not take zoo down
                cli.commands.clear()
                cli.commands.update(before)
                self.fail(info, "raised in register_commands", exc)
                continue
            replaced = [n for n, c in before.items() if cli.commands.get(n) is not c]
            if replaced:
                cli.commands.clear()
                cli.commands.update(before)
                self.fail(info, "raised in register_commands",
                          "; ".join(f"command {n!r} is already registered by {owners[n]}" for n in replaced))
                continue
            added = sorted(set(cli.commands) - set(before))
            info.registered["commands"] = added
            owners.update({n: info.label for n in added})


class EntryPoint(NamedTuple):
    """One ``name = module:attr`` line of a distribution's ``[zoo]`` entry points."""

    name: str
    value: str
    dist: str
    version: str

    def load(self):
        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def find_entry_points(group: str = ENTRY_POINT_GROUP) -> list[EntryPoint]:
    """The ``group`` entry points of the installed distributions, as ``importlib.metadata`` finds them.

    It sees what pip installed, zipped distributions and eggs on the path, and a
    distribution found twice counts once (the first on ``sys.path``, as Python
    imports it). Where the path holds only folders, the folders' ``*.dist-info``
    and ``*.egg-info`` are read directly (:func:`_listed_entry_points`), which
    spares every command importing ``importlib.metadata`` (about 20 ms, a fifth
    of ``zoo list``); a zip or an egg on the path, or an import hook that finds
    distributions of its own, goes through ``importlib.metadata`` itself.
    """
    listed = _listed_entry_points(group)
    if listed is not None:
        return listed
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=group):
        dist = ep.dist
        name = (dist.metadata["Name"] if dist is not None else None) or "?"
        found.append(EntryPoint(ep.name, ep.value, name, dist.version if dist is not None else "?"))
    return found


def _listed_entry_points(group: str) -> list[EntryPoint] | None:
    """What ``importlib.metadata.entry_points(group=group)`` returns, read from the metadata folders on
    ``sys.path`` in its order (directory order within a folder, the first distribution of a name counting
    alone); None where it would look further: a path entry that is a file (a zip, an egg) or an ``.egg``
    folder, or a finder on ``sys.meta_path`` other than the standard one that finds distributions."""
    import importlib.machinery
    import sys

    if any(hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder
           for finder in sys.meta_path):
        return None
    found, seen = [], set()
    for entry in sys.path:
        root = entry or "."
        if not os.path.isdir(root):
            if os.path.exists(root):
                return None
            continue
        if entry.lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(root)
        except OSError:
            continue
        for child in children:
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            name = re.sub(r"[-_.]+", "_", low.rpartition(".")[0].partition("-")[0])
            if name in seen:
                continue
            seen.add(name)
            folder = os.path.join(root, child)
            lines = _section(_read(os.path.join(folder, "entry_points.txt")), group)
            if lines:
                dist, version = _name_and_version(folder)
                found.extend(EntryPoint(ep_name, value, dist, version) for ep_name, value in lines)
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return ""


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of the ``[group]`` section of an ``entry_points.txt``."""
    entries, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


def _name_and_version(folder: str) -> tuple[str, str]:
    """``Name`` and ``Version`` from the headers of the distribution's ``METADATA`` (``PKG-INFO`` for an egg)."""
    fields: dict[str, str] = {}
    text = _read(os.path.join(folder, "METADATA")) or _read(os.path.join(folder, "PKG-INFO"))
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key in ("Name", "Version"):
            fields.setdefault(key, value.strip())
    return fields.get("Name", "?"), fields.get("Version", "?")


def hook_names() -> list[str]:
    """Every hook in the contract."""
    return sorted(n for n in dir(hookspecs) if n.startswith("register_"))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


def get_plugin_manager(*, entry_points: bool = True, strict: bool | None = None) -> ZooPluginManager:
    """A new plugin manager with the built-ins and (unless ``entry_points=False``) installed plugins."""
    pm = ZooPluginManager(strict=strict)
    pm.load_builtins()
    if entry_points:
        pm.load_entry_points(allow_list_from_env())
    pm.check_pending()
    return pm


_default: ZooPluginManager | None = None


def default_plugin_manager() -> ZooPluginManager:
    """The process's plugin manager, built on first use and shared by the registry and the CLI."""
    global _default
    if _default is None:
        _default = get_plugin_manager()
    return _default
