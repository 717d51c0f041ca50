"""The example plugin in examples/zoo-deep-mlp, installed with pip as README's test command does."""

import importlib.metadata
import json
import subprocess
import sys

import pytest

from conftest import HEAVY

try:
    VERSION = importlib.metadata.version("zoo-deep-mlp")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a set-up mistake, not a skip
    pytest.fail("the example plugin is not installed: pip install -e examples/zoo-deep-mlp", pytrace=False)


def zoo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_list_shows_its_model_without_importing_torch(python):
    script = (f"import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
              f"        if name.split('.')[0] in {HEAVY!r}: raise ImportError(name)\n"
              f"sys.meta_path.insert(0, Block())\nfrom zoo.cli import main\nsys.argv = ['zoo', 'list']\nmain()\n")
    proc = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "deep-mlp" in proc.stdout and "label-smoothing-ce" in proc.stdout and "spirals" in proc.stdout


def test_plugins_json_lists_it():
    result = zoo("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugin = next(p for p in json.loads(result.stdout) if p["distribution"] == "zoo-deep-mlp")
    assert plugin["version"] == VERSION and plugin["status"] == "loaded" and plugin["error"] is None
    assert plugin["registered"] == {"models": ["deep-mlp"], "policies": ["label-smoothing-ce"],
                                    "datasets": ["spirals"], "runtimes": [], "commands": ["confusion"]}
    assert plugin["hooks"] == ["register_commands", "register_datasets", "register_models", "register_policies"]


def test_export_its_model(tmp_path):
    result = zoo("export", "deep-mlp", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] and report["policy"]["name"] == "label-smoothing-ce"
    assert report["policy"]["loss_options"] == {"label_smoothing": 0.1}
    assert report["training"]["metrics"]["holdout_accuracy"] >= 0.9
    assert (tmp_path / "zoo-exports" / "deep-mlp" / "model.onnx").exists()


def test_check_plugin_passes():
    result = zoo("check-plugin", "zoo-deep-mlp")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout


def test_its_command():
    result = zoo("confusion", "deep-mlp", "--epochs", "5")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.strip().splitlines()[-3:]
    assert [r.split()[0] for r in rows] == ["arm-0", "arm-1", "arm-2"]
    assert sum(int(v) for r in rows for v in r.split()[1:]) == 180  # every held-out row counted once
