"""Shared fixtures. Nothing here mocks torch, onnx or onnxruntime: they run for real."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.manager import get_plugin_manager
from zoo.registry import Registry

HEAVY = ("torch", "onnx", "onnxruntime", "sklearn", "onnxscript")

#: The only skips CI may report: a GPU it never has, and a race the machine may win. Under CI=true any other
#: skip fails: .ci/run installs every dependency, so a skip there is a test that silently stopped running.
CI_MAY_SKIP = ("no CUDA here", "onnxruntime-cuda can run here", "the export had finished when the signal arrived")


def _under_ci() -> bool:
    import os

    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _refuse_skip_under_ci(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not _under_ci():
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(allowed in reason for allowed in CI_MAY_SKIP):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped under CI=true ({reason}): CI installs every dependency, so this test must run "
                       "there; install what it names, or add the reason to CI_MAY_SKIP if no CI machine can have it")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _refuse_skip_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _refuse_skip_under_ci(outcome.get_result())


@pytest.fixture
def pm():
    """A fresh plugin manager with the built-ins only (no installed plugins)."""
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def registry(pm) -> Registry:
    return Registry.from_plugin_manager(pm)


@pytest.fixture
def zoo_cli(tmp_path, monkeypatch):
    """Run the CLI in a temporary working directory; returns click's Result (stdout/stderr apart)."""
    from zoo.cli import cli

    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="zoo")

    return run


def assert_clean_error(result, *fragments: str, code: int | None = None) -> None:
    """Bad input: exit != 0, one line on stderr naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tree(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` with its bytes, to prove a directory was left untouched."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


def torch_labels(result, X):
    """The trained module's own decisions, computed here without any of zoo's export or runtime code."""
    import numpy as np
    import torch

    standardized = (X.astype(np.float64) - result.split.mean) * result.split.scale
    with torch.inference_mode():
        out = result.module(torch.from_numpy(standardized.astype(np.float32))).numpy()
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    p = out[:, 0] if result.policy.expects == "probabilities" else 1 / (1 + np.exp(-out[:, 0].astype(np.float64)))
    return (p >= 0.5).astype(np.int64)


def export_both(root: Path, runtimes: list[str] | None = None) -> dict:
    """A multiclass and a binary model, trained briefly and exported under ``root``; their TrainResults."""
    from zoo.exports.export.pipeline import export_bundle
    from zoo.training import fit
    from zoo.training.config import TrainConfig

    results = {}
    for name in ("multiclass", "binary"):
        results[name] = fit(name, config=TrainConfig(epochs=3, device="cpu"))
        export_bundle(results[name], root / name, runtimes=runtimes)
    return results


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One multiclass and one binary bundle and their TrainResults, shared (tests copy before changing them)."""
    root = tmp_path_factory.mktemp("bundles")
    return root, export_both(root)


@pytest.fixture
def bundle_copy(exported, tmp_path):
    """``copy(name)``: a shared bundle copied into this test's directory, to change."""
    root, _ = exported

    def copy(name="multiclass"):
        shutil.copytree(root / name, tmp_path / name)
        return tmp_path / name

    return copy


def reseal(bundle: Path, *relatives: str) -> None:
    """Record the changed files' sizes and sha256 in the bundle's manifest, as someone crafting a bundle would:
    the checks on its contents then face what the files hold, not the checksum."""
    import hashlib
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    for relative in relatives:
        data = (bundle / relative).read_bytes()
        manifest["bytes"][relative] = len(data)
        manifest["sha256"][relative] = hashlib.sha256(data).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def zoo_without(*modules: str) -> str:
    """A ``python -c`` script that runs the zoo CLI (arguments after it) with ``modules`` impossible to import."""
    return textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {modules!r}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from zoo.cli import main
        sys.argv = ["zoo", *sys.argv[1:]]
        main()
    """)
