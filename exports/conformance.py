"""The conformance kit behind ``zoo check-plugin``: what a plugin registered, put through the whole flow.

For every model/policy pair a plugin brings (its models with their own
policies, its policies with a registered model that emits what they expect,
its datasets with a registered model of their task): build it, check the
pairing, train a few epochs on the data, export to ONNX and run the parity
check. Plugin authors run it in their own CI; it exits 1 when any case fails.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from zoo.errors import ZooError
from zoo.manager import PluginInfo, ZooPluginManager, normalize


@dataclass
class Case:
    plugin: str
    model: str
    policy: str
    data: str
    status: str = "pending"  # passed | failed
    stage: str = ""  # where it failed: load | build | train | export | parity
    error: str = ""
    accuracy: float | None = None
    max_abs_error: float | None = None
    seconds: float | None = None


def select_plugins(pm: ZooPluginManager, name: str | None) -> list[PluginInfo]:
    """The plugins to check: those of distribution (or plugin) ``name``, or every one that registered something."""
    infos = [i for i in pm.infos.values() if i.status != "not loaded"]
    if name is None:
        return [i for i in infos if i.status == "failed" or any(i.registered[k] for k in ("models", "policies",
                                                                                       "datasets"))]
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
        return [Case(info.label, "-", "-", "-", "failed", "load", info.error or "failed to load")]
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
            cases.append(Case(info.label, "-", name, "-", "failed", "build",
                              f"no registered model is trained with a {policy.head} head on {policy.expects}"))
    for name in info.registered["datasets"]:
        if name in covered_data:
            continue
        task = registry.get("dataset", name).task
        fits = [m for m in models if m.task == task]
        if fits:
            cases.append(Case(info.label, fits[0].name, fits[0].policy, name))
    return cases


def _policy_fits(default, policy) -> bool:
    return (default.head, default.expects) == (policy.head, policy.expects)


def run_case(case: Case, registry, *, epochs: int = 2) -> Case:
    from zoo.exports.pipeline import ParityFailed, export_bundle
    from zoo.training import TrainConfig, fit

    if case.status == "failed":
        return case
    started = time.perf_counter()
    stage = "train"
    try:
        result = fit(case.model, policy=case.policy, data=case.data, registry=registry,
                     config=TrainConfig(epochs=epochs, device="cpu"))
        case.accuracy = result.metrics["holdout_accuracy"]
        stage = "export"
        with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
            outcome = export_bundle(result, Path(tmp) / "bundle")
        case.max_abs_error = outcome.parity.cells[0].max_abs_error
        case.status = "passed"
    except ParityFailed as exc:
        case.status, case.stage, case.error = "failed", "parity", str(exc)
        case.max_abs_error = exc.outcome.parity.cells[0].max_abs_error
    except Exception as exc:  # a plugin's model may fail anywhere: report it, check the next one
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        case.status, case.stage = "failed", ("build" if "Pairing" in type(exc).__name__ else stage)
        case.error = f"{type(exc).__name__}: {first}" if not isinstance(exc, ZooError) else first
    case.seconds = round(time.perf_counter() - started, 2)
    return case


def table(cases: list[Case]) -> str:
    header = ("plugin", "model", "policy", "data", "accuracy", "max abs err", "result")
    rows = [header] + [(
        c.plugin, c.model, c.policy, c.data,
        "-" if c.accuracy is None else f"{c.accuracy:.4f}",
        "-" if c.max_abs_error is None else f"{c.max_abs_error:.2e}",
        c.status.upper() + (f" at {c.stage}: {c.error}" if c.status == "failed" else ""),
    ) for c in cases]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows)


def to_dicts(cases: list[Case]) -> list[dict]:
    return [asdict(c) for c in cases]
