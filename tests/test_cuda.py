"""The GPU: training on CUDA and the onnxruntime-cuda runtime. Skipped, with the reason, without one."""

import json

import pytest
import torch

from zoo.exports.export.pipeline import export_bundle
from zoo.exports.runtimes import why_unavailable
from zoo.registry import get_runtime
from zoo.training import TrainConfig, fit

REASON = why_unavailable(get_runtime("onnxruntime-cuda"))
if REASON is None and not torch.cuda.is_available():
    REASON = "torch sees no CUDA device"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(REASON is not None, reason=f"no CUDA here: {REASON}")]


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_cuda_parity_runs_on_the_gpu(tmp_path, name):
    result = fit(name, config=TrainConfig(epochs=3, device="cuda"))
    assert result.metrics["device"] == "cuda"
    outcome = export_bundle(result, tmp_path / "b")
    cell = next(c for c in outcome.parity.cells if c.runtime == "onnxruntime-cuda")
    assert cell.status == "passed", cell.reason
    assert cell.device.startswith("cuda") and cell.precision == "fp32"  # really on the GPU, TF32 off
    assert cell.max_abs_error <= 1e-5 and cell.label_agreement == 1.0


def test_verify_replays_on_cuda(tmp_path):
    from zoo.exports.deploy.verify import verify

    export_bundle(fit("multiclass", config=TrainConfig(epochs=2, device="cuda")), tmp_path / "b")
    report = verify(tmp_path / "b", runtimes=["onnxruntime-cuda"])
    assert report.replays and all(r.status == "passed" and r.device.startswith("cuda") for r in report.replays)


def test_export_with_device_cuda_on_the_command_line(zoo_cli):
    result = zoo_cli("export", "binary", "--device", "cuda", "--epochs", "3", "-o", "b", "--json",
                     "--runtime", "onnxruntime-cuda")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["training"]["metrics"]["device"] == "cuda"
    assert [c["runtime"] for c in report["parity"]["cells"]] == ["onnxruntime-cuda"]
    assert report["parity"]["cells"][0]["status"] == "passed"
