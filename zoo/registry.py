"""Names to models, loss policies and datasets, filled by the plugins' register hooks.

Lookups follow torchvision's shape (``list_models(include, exclude)`` with
fnmatch patterns, ``get_model(name, **config)``). An unknown name raises a
:class:`~zoo.errors.UnknownNameError` (a ``LookupError``) suggesting the close
matches; a name registered twice raises, naming both owners.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from functools import partial
from typing import Any, NamedTuple

from zoo.errors import DuplicateNameError, SpecError, UnknownNameError, ZooError
from zoo.manager import default_plugin_manager
from zoo.policies import LossPolicy
from zoo.policies.pairing import check_declared, check_module
from zoo.specs import DatasetSpec, ModelSpec, Runtime, check_name, resolve

_KINDS = {"model": ModelSpec, "policy": LossPolicy, "dataset": DatasetSpec, "runtime": Runtime}
_HOOKS = {"model": "register_models", "policy": "register_policies", "dataset": "register_datasets",
          "runtime": "register_runtimes"}
_PLURALS = {"model": "models", "policy": "policies", "dataset": "datasets", "runtime": "runtimes"}


class Registry:
    """Every registered model, policy and dataset, with the plugin that registered it."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, tuple[Any, str]]] = {kind: {} for kind in _KINDS}  # (obj, plugin)
        self._labels: dict[str, str] = {}  # plugin name -> how zoo names it ("built-in ...", "plugin '...' from ...")

    @classmethod
    def from_plugin_manager(cls, pm) -> Registry:
        """Call every plugin's register hooks, one plugin at a time, through pluggy's own hook calling.

        Each entry knows its owner, by plugin name. A plugin whose hook raises, or
        that registers something invalid or already taken, loses everything it
        registered and is reported through ``pm.fail`` (a warning, or an error in
        strict mode).
        """
        registry = cls()
        for kind, hook_name in _HOOKS.items():
            for info, call in pm.implementations(hook_name):
                try:
                    call(register=partial(registry.add, kind, owner=info.name, label=info.label))
                except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not take zoo down
                    registry.discard_owner(info.name)
                    pm.fail(info, f"raised in {hook_name}", exc)
        for spec, plugin in list(registry._entries["model"].values()):
            try:
                registry.validate_model(spec, registry._labels[plugin])
            except ZooError as exc:
                registry.discard_owner(plugin)
                pm.fail(pm.infos[plugin], "registered an invalid model", exc)
        for info in pm.infos.values():
            for kind, plural in _PLURALS.items():
                info.registered[plural] = sorted(n for n, (_, p) in registry._entries[kind].items() if p == info.name)
        return registry

    def add(self, kind: str, obj: Any, *, owner: str = "<direct>", label: str | None = None) -> None:
        """Register ``obj`` as a ``kind``, owned by plugin ``owner`` (named ``label`` in messages)."""
        label = self._labels.setdefault(owner, label or owner)
        expected = _KINDS[kind]
        if not isinstance(obj, expected):
            raise SpecError(f"{label} registered {obj!r} as a {kind}; expected a {expected.__name__}")
        if kind == "runtime":
            _check_runtime(obj)
        entries = self._entries[kind]
        if obj.name in entries:
            raise DuplicateNameError(
                f"{kind} {obj.name!r} is registered twice: by {self._labels[entries[obj.name][1]]} and by {label}; "
                "uninstall one of them or ask its author to rename it"
            )
        entries[obj.name] = (obj, owner)

    def discard_owner(self, owner: str) -> None:
        """Forget everything plugin ``owner`` registered (it failed part-way)."""
        for entries in self._entries.values():
            for name in [n for n, (_, o) in entries.items() if o == owner]:
                del entries[name]

    def owned_by(self, kind: str, owner: str) -> list[str]:
        """The names of ``kind`` that the plugin zoo names ``owner`` registered."""
        return sorted(n for n, (_, p) in self._entries[kind].items() if self._labels[p] == owner)

    def validate_model(self, spec: ModelSpec, owner: str) -> None:
        """A model's default policy and dataset must exist and suit it."""
        for kind, name in (("policy", spec.policy), ("dataset", spec.dataset)):
            if name not in self._entries[kind]:
                raise SpecError(f"model {spec.name!r} ({owner}) names {kind} {name!r}, which nothing registered")
        check_declared(spec, self.get("policy", spec.policy), spec.hyperparameters["num_classes"])

    def get(self, kind: str, name: str) -> Any:
        try:
            return self._entries[kind][name][0]
        except KeyError:
            raise UnknownNameError(kind, name, self._entries[kind]) from None

    def owner(self, kind: str, name: str) -> str:
        """The plugin that registered ``name``, as zoo names it."""
        self.get(kind, name)
        return self._labels[self._entries[kind][name][1]]

    def in_order(self, kind: str) -> list[str]:
        """Names in the order they were registered (built-ins first, in ``DEFAULT_PLUGINS`` order)."""
        return list(self._entries[kind])

    def names(self, kind: str, include: str | Iterable[str] | None = None,
              exclude: str | Iterable[str] | None = None) -> list[str]:
        """Sorted names, filtered by fnmatch patterns."""
        names = sorted(self._entries[kind])
        if include is not None:
            patterns = [include] if isinstance(include, str) else list(include)
            names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if exclude is not None:
            patterns = [exclude] if isinstance(exclude, str) else list(exclude)
            names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        return names


def _check_runtime(runtime: Runtime) -> None:
    check_name("runtime", runtime.name)
    for attr in ("summary", "requires"):
        if not isinstance(getattr(runtime, attr), str):
            raise SpecError(f"runtime {runtime.name!r}: {attr} must be a string")
    missing = [m for m in ("unavailable", "version", "open") if getattr(type(runtime), m) is getattr(Runtime, m)]
    if missing:
        raise SpecError(f"runtime {runtime.name!r} does not implement {', '.join(missing)}")


class Built(NamedTuple):
    """A model built for a policy, its pairing already checked."""

    spec: ModelSpec
    policy: LossPolicy
    module: Any  # torch.nn.Module
    config: dict[str, Any]


def build(name: str, *, policy: str | None = None, registry: Registry | None = None,
          **config: Any) -> Built:
    """Build model ``name`` paired with ``policy`` (its default if None) and check the pairing."""
    registry = registry or default_registry()
    spec: ModelSpec = registry.get("model", name)
    loss_policy: LossPolicy = registry.get("policy", policy or spec.policy)
    config = spec.config(config)
    check_declared(spec, loss_policy, config["num_classes"])
    module = resolve(spec.builder)(**config)
    check_module(module, spec, loss_policy, config["input_size"], config["num_classes"])
    return Built(spec, loss_policy, module, config)


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of the built-ins and installed plugins, built on first use."""
    global _default
    if _default is None:
        _default = Registry.from_plugin_manager(default_plugin_manager())
    return _default


def list_models(include=None, exclude=None, *, registry: Registry | None = None) -> list[str]:
    return (registry or default_registry()).names("model", include, exclude)


def list_policies(include=None, exclude=None, *, registry: Registry | None = None) -> list[str]:
    return (registry or default_registry()).names("policy", include, exclude)


def list_datasets(include=None, exclude=None, *, registry: Registry | None = None) -> list[str]:
    return (registry or default_registry()).names("dataset", include, exclude)


def get_model_spec(name: str, *, registry: Registry | None = None) -> ModelSpec:
    return (registry or default_registry()).get("model", name)


def get_policy(name: str, *, registry: Registry | None = None) -> LossPolicy:
    return (registry or default_registry()).get("policy", name)


def list_runtimes(include=None, exclude=None, *, registry: Registry | None = None) -> list[str]:
    return (registry or default_registry()).names("runtime", include, exclude)


def get_runtime(name: str, *, registry: Registry | None = None) -> Runtime:
    return (registry or default_registry()).get("runtime", name)


def get_dataset(name: str, *, registry: Registry | None = None) -> DatasetSpec:
    return (registry or default_registry()).get("dataset", name)


def get_model(name: str, *, policy: str | None = None, registry: Registry | None = None, **config: Any):
    """A ``torch.nn.Module`` for model ``name``, its pairing with ``policy`` checked."""
    return build(name, policy=policy, registry=registry, **config).module
