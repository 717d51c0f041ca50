"""On a CUDA machine: train, export and prove GPU parity, run the CUDA tests and the GPU benchmark rows.

    python benchmarks/gpu_check.py [--out DIR]

Writes DIR/gpu-report.json and DIR/gpu-report.md: onnxruntime's providers, and
for the multiclass and binary models trained with --device cuda the parity
cells of every runtime (onnxruntime-cpu, onnxruntime-cuda, onnx-reference, ...)
against the independent reference, with device, precision, max abs error and
label agreement; `zoo verify` replaying the bundle on every runtime; `zoo bench`
on onnxruntime-cuda; `pytest -m cuda`; and the GPU benchmark rows (torch CUDA vs
onnxruntime CUDA at batch 1 and 65,536). Exits 0 when every check passed, 1
when one failed, 2 when there is no usable CUDA here (the report says why).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from zoo.exports.deploy.bench import bench
    from zoo.exports.deploy.verify import verify
    from zoo.exports.export.pipeline import export_bundle
    from zoo.exports.runtimes import why_unavailable
    from zoo.registry import get_runtime
    from zoo.training import TrainConfig, fit

    report = {
        "onnxruntime": ort.__version__, "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "available_providers": ort.get_available_providers(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "models": {}, "passed": False,
    }
    reason = why_unavailable(get_runtime("onnxruntime-cuda"))
    if reason is None and not torch.cuda.is_available():
        reason = "torch sees no CUDA device"
    if reason:
        report["skipped"] = reason
        return finish(report, args.out, 2)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("multiclass", "binary"):
            result = fit(name, config=TrainConfig(device="cuda"))
            outcome = export_bundle(result, Path(tmp) / name)
            replay = verify(Path(tmp) / name)
            cells = [{"runtime": c.runtime, "device": c.device, "precision": c.precision, "status": c.status,
                      "max_abs_error": c.max_abs_error, "label_agreement": c.label_agreement,
                      "accuracy": c.accuracy, "reason": c.reason} for c in outcome.parity.cells]
            speed = bench(Path(tmp) / name, runtimes=["onnxruntime-cpu", "onnxruntime-cuda"], batch_sizes=[1, 65536])
            report["models"][name] = {"holdout_accuracy": result.metrics["holdout_accuracy"],
                                      "trained_on": result.metrics["device"], "parity": cells,
                                      "verify": replay.to_dict(), "bench": speed.to_dict()}
            cuda_ran = any(c["runtime"] == "onnxruntime-cuda" and c["status"] == "passed" for c in cells)
            ok &= outcome.verified and replay.verified and cuda_ran and all(c["status"] != "failed" for c in cells)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-rs", "-q", str(HERE.parent / "tests")],
                           capture_output=True, text=True)
    report["pytest_cuda"] = {"returncode": tests.returncode, "summary": tests.stdout.strip().splitlines()[-1:]}
    ok &= tests.returncode == 0
    sys.path.insert(0, str(HERE))
    from run import bench_gpu

    with tempfile.TemporaryDirectory() as tmp:
        report["benchmark"] = bench_gpu(3, Path(tmp))
    report["passed"] = bool(ok)
    return finish(report, args.out, 0 if ok else 1)


def finish(report: dict, out: Path, code: int) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# GPU check: {'passed' if report['passed'] else 'not passed'}", "",
             f"- device: {report['device']}", f"- onnxruntime {report['onnxruntime']}, providers: "
             f"{', '.join(report['available_providers'])}", f"- torch {report['torch']} (CUDA {report['torch_cuda']})"]
    if "skipped" in report:
        lines.append(f"- skipped: {report['skipped']}")
    for name, model in report["models"].items():
        lines += ["", f"## {name} (held-out accuracy {model['holdout_accuracy']:.4f}, trained on "
                      f"{model['trained_on']})", "", "| runtime | device | precision | max abs err | labels | result |",
                  "|---|---|---|---|---|---|"]
        for c in model["parity"]:
            err = "-" if c["max_abs_error"] is None else f"{c['max_abs_error']:.2e}"
            labels = "-" if c["label_agreement"] is None else f"{c['label_agreement']:.2%}"
            lines.append(f"| {c['runtime']} | {c['device'] or '-'} | {c['precision'] or '-'} | {err} | {labels} | "
                         f"{c['status']} {c['reason']} |")
        lines.append(f"\nzoo verify: {'verified' if model['verify']['verified'] else 'NOT verified'}")
        for r in model["bench"]["rows"]:
            lines.append(f"- zoo bench {r['runtime']} batch {r['batch_size']:,}: p50 {r['latency_ms_p50']:.4f} ms, "
                         f"{r['rows_per_second']:,.0f} rows/s")
    if "pytest_cuda" in report:
        lines += ["", f"pytest -m cuda: {' '.join(report['pytest_cuda']['summary'])}"]
    for row in report.get("benchmark", []):
        if "skipped" in row:
            lines.append(f"- GPU benchmark skipped: {row['skipped']}")
        else:
            lines.append(f"- {row['figure']}: onnxruntime {row['value']:,.0f} rows/s, {row['baseline']} "
                         f"{row['baseline_value']:,.0f} rows/s")
    (out / "gpu-report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
