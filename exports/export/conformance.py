"""The conformance kit behind ``zoo check-plugin``: what a plugin registered, put through the whole flow.

For every model/policy pair a plugin brings (its models with their own
policies, its policies with a registered model that emits what they expect,
its datasets with a registered model of their task): build it, check the
pairing, train a few epochs on the data, export to ONNX and run the parity
check. For every runtime it brings: the built-in multiclass and binary models
exported and checked on that runtime alone, against the independent reference
and the true labels; a runtime that cannot run here is reported as skipped,
with its reason. Plugin authors run it in their own CI; it exits 1 when any
case fails.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from zoo import table as tables
from zoo.errors import ZooError, first_line
from zoo.exports.export.pipeline import ParityFailed, export_bundle
from zoo.exports.runtimes import why_unavailable
from zoo.manager import PluginInfo, ZooPluginManager, normalize
from zoo.training import TrainConfig, fit

_KINDS = ("models", "policies", "datasets", "runtimes")
#: The built-in models a plugin's runtime is checked with: a softmax and a sigmoid head.
RUNTIME_MODELS = ("multiclass", "binary")


@dataclass
class Case:
    plugin: str
    model: str
    policy: str
    data: str
    runtime: str = "all"
    status: str = "pending"  # passed | failed | skipped
    stage: str = ""  # where it failed: load | build | train | export | parity
    error: str = ""
    accuracy: float | None = None
    max_abs_error: float | None = None
    seconds: float | None = None


def select_plugins(pm: ZooPluginManager, name: str | None) -> list[PluginInfo]:
    """The plugins to check: those of distribution (or plugin) ``name``, or every one that registered something."""
    infos = [i for i in pm.infos.values() if i.status != "not loaded"]
    if name is None:
        return [i for i in infos if i.status == "failed" or any(i.registered[k] for k in _KINDS)]
    wanted = normalize(name)
    chosen = [i for i in infos if normalize(i.distribution or "") == wanted or normalize(i.name) == wanted]
    if not chosen:
        known = sorted({i.distribution or i.name for i in infos if not i.builtin})
        raise ZooError(f"no installed plugin {name!r}; installed: {', '.join(known) or 'none'} "
                       "(zoo plugins lists them)")
    return chosen


def cases_for(info: PluginInfo, registry) -> list[Case]:
    """The model/policy/data combinations that exercise what ``info`` registered."""
    if info.status == "failed":
        return [Case(info.label, "-", "-", "-", status="failed", stage="load", error=info.error or "failed to load")]
    cases: list[Case] = []
    covered_policies, covered_data = set(), set()
    for name in info.registered["models"]:
        spec = registry.get("model", name)
        cases.append(Case(info.label, name, spec.policy, spec.dataset))
        covered_policies.add(spec.policy)
        covered_data.add(spec.dataset)
    # Partner models: the plugin's own first, then the built-ins, then the rest.
    models = sorted((registry.get("model", n) for n in registry.names("model")),
                    key=lambda m: (registry.owner("model", m.name) != info.label,
                                   not registry.owner("model", m.name).startswith("built-in"), m.name))
    for name in info.registered["policies"]:
        if name in covered_policies:
            continue
        policy = registry.get("policy", name)
        fits = [m for m in models if _policy_fits(registry.get("policy", m.policy), policy)]
        if fits:
            cases.append(Case(info.label, fits[0].name, name, fits[0].dataset))
        else:
            cases.append(Case(info.label, "-", name, "-", status="failed", stage="build",
                              error=f"no registered model is trained with a {policy.head} head on {policy.expects}"))
    for name in info.registered["datasets"]:
        if name in covered_data:
            continue
        task = registry.get("dataset", name).task
        fits = [m for m in models if m.task == task]
        if fits:
            cases.append(Case(info.label, fits[0].name, fits[0].policy, name))
    for name in info.registered["runtimes"]:
        for model in RUNTIME_MODELS:
            spec = registry.get("model", model)
            cases.append(Case(info.label, model, spec.policy, spec.dataset, runtime=name))
    return cases


def _policy_fits(default, policy) -> bool:
    return (default.head, default.expects) == (policy.head, policy.expects)


def run_case(case: Case, registry, *, epochs: int = 2) -> Case:

    if case.status == "failed":
        return case
    runtimes = None
    if case.runtime != "all":
        why_not = why_unavailable(registry.get("runtime", case.runtime))
        if why_not is not None:
            case.status, case.stage, case.error = "skipped", "probe", why_not
            return case
        runtimes = [case.runtime]
    started = time.perf_counter()
    stage = "train"
    try:
        result = fit(case.model, policy=case.policy, data=case.data, registry=registry,
                     config=TrainConfig(epochs=epochs, device="cpu"))
        case.accuracy = result.metrics["holdout_accuracy"]
        stage = "export"
        with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
            outcome = export_bundle(result, Path(tmp) / "bundle", runtimes=runtimes)
        case.max_abs_error = _worst(outcome.parity)
        case.status = "passed"
    except ParityFailed as exc:
        case.status, case.stage, case.error = "failed", "parity", str(exc)
        case.max_abs_error = _worst(exc.outcome.parity)
    except Exception as exc:  # a plugin's model may fail anywhere: report it, check the next one
        case.status, case.stage = "failed", ("build" if "Pairing" in type(exc).__name__ else stage)
        case.error = first_line(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {first_line(exc)}"
    case.seconds = round(time.perf_counter() - started, 2)
    return case


def _worst(parity) -> float | None:
    errors = [c.max_abs_error for c in parity.cells if c.max_abs_error is not None]
    return max(errors) if errors else None


def table(cases: list[Case]) -> str:
    header = ("plugin", "model", "policy", "data", "runtime", "accuracy", "max abs err", "result")
    return tables.render(header, [(
        c.plugin, c.model, c.policy, c.data, c.runtime, tables.number(c.accuracy, ".4f"),
        tables.number(c.max_abs_error),
        (c.status.upper() if c.status != "skipped" else "skipped")
        + (f" at {c.stage}: {c.error}" if c.status == "failed" else f": {c.error}" if c.status == "skipped" else ""),
    ) for c in cases])


def to_dicts(cases: list[Case]) -> list[dict]:
    return [asdict(c) for c in cases]
