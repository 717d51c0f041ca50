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
    cuda = next(c for c in outcome.parity.cells if c.name == "cuda")
    assert cuda.status == "passed", cuda.reason
    assert cuda.providers[0] == "CUDAExecutionProvider"
    assert cuda.max_abs_error <= 1e-5 and cuda.label_agreement == 1.0
