"""The plugin manager: built-in plugins first, then the ``zoo`` entry-point group."""

from __future__ import annotations

import importlib

import pluggy

from zoo import hookspecs

ENTRY_POINT_GROUP = "zoo"

#: Built-in plugins, imported by module name. They use the public hooks only.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "zoo.plugins.multiclass",
    "zoo.plugins.binary",
    "zoo.plugins.datasets",
    "zoo.exports.commands",
)


def get_plugin_manager(*, entry_points: bool = True) -> pluggy.PluginManager:
    """A new plugin manager with the built-ins and (unless ``entry_points=False``) third parties."""
    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


_default: pluggy.PluginManager | None = None


def default_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, built on first use and shared by the registry and the CLI."""
    global _default
    if _default is None:
        _default = get_plugin_manager()
    return _default


def plugin_owner(pm: pluggy.PluginManager, plugin: object) -> str:
    """A human name for a plugin: its distribution for installed ones, its module for built-ins."""
    name = pm.get_name(plugin) or repr(plugin)
    for candidate, dist in pm.list_plugin_distributions():
        if candidate is plugin:
            return f"plugin {name!r} from {dist.metadata['Name']} {dist.version}"
    if name in DEFAULT_PLUGINS:
        return f"built-in {name}"
    return f"plugin {name!r}"
