"""GPU parity: torch CUDA against onnxruntime's CUDAExecutionProvider. Skipped, with the reason, without one."""

import pytest

from zoo.exports.parity import cuda_unavailable
from zoo.exports.pipeline import export_bundle
from zoo.training import TrainConfig, fit

REASON = cuda_unavailable()
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(REASON is not None, reason=f"no CUDA parity here: {REASON}")]


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_cuda_parity_runs_on_the_gpu(tmp_path, name):
    result = fit(name, config=TrainConfig(epochs=3, device="cuda"))
    assert result.metrics["device"] == "cuda"
    outcome = export_bundle(result, tmp_path / "b")
    for name in ("cuda", "ort cpu-cuda"):
        cell = next(c for c in outcome.parity.cells if c.name == name)
        assert cell.status == "passed", cell.reason
        assert cell.providers[0] == "CUDAExecutionProvider"  # really on the GPU, not a silent fallback
        assert cell.max_abs_error <= 1e-5 and cell.label_agreement == 1.0


def test_verify_replays_on_cuda(tmp_path):
    from zoo.exports.verify import verify

    export_bundle(fit("multiclass", config=TrainConfig(epochs=2, device="cuda")), tmp_path / "b")
    report = verify(tmp_path / "b")
    cuda = [r for r in report.replays if r.provider == "CUDAExecutionProvider"]
    assert cuda and all(r.status == "passed" for r in cuda), [r.reason for r in cuda]


def test_export_with_device_cuda_on_the_command_line(zoo_cli):
    result = zoo_cli("export", "binary", "--device", "cuda", "--epochs", "3", "-o", "b", "--json")
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    assert report["training"]["metrics"]["device"] == "cuda"
    assert all(c["status"] == "passed" for c in report["parity"]["cells"])
