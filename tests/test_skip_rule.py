"""The rule conftest.py keeps under CI=true: a skip there fails, unless its reason is one CI_MAY_SKIP allows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = '''
import pytest

def test_a_missing_dependency():
    pytest.skip("needs a package that is not installed")

@pytest.mark.skipif(True, reason="needs another package")
def test_a_marked_skip():
    pass

def test_no_gpu():
    pytest.skip("no CUDA here")

def test_runs():
    pass
'''


def run_pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    return tmp_path


def test_under_ci_a_skip_fails_unless_its_reason_is_allowed(project):
    run = run_pytest(project, "true")
    assert run.returncode == 1, run.stdout
    assert run.stdout.count("skipped under CI=true (") == 2, run.stdout
    assert "needs a package that is not installed" in run.stdout and "needs another package" in run.stdout
    summary = run.stdout.strip().splitlines()[-1]
    assert "1 passed" in summary and "1 skipped" in summary, summary  # no CUDA here: allowed


def test_outside_ci_a_skip_is_a_skip(project):
    run = run_pytest(project, None)
    assert run.returncode == 0, run.stdout
    assert "skipped under CI=true" not in run.stdout
    assert "1 passed, 3 skipped" in run.stdout.strip().splitlines()[-1], run.stdout
