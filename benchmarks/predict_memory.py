"""Peak memory of `zoo predict` on 1,000,000 rows of the multiclass model (digits: 64 features).

Measured against a baseline in the same run: a process that only imports
onnxruntime and numpy and opens the same model (the floor any predictor pays).
Peak RSS comes from the kernel (wait4 of the finished child). Linux keeps a
child's peak across fork and exec, so this script stays small itself (the data is
made in a subprocess) to keep its own memory out of the figures. Each command runs
--repeats times, interleaved; medians with min-max are reported.

    python benchmarks/predict_memory.py [--rows 1000000] [--repeats 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    started = time.perf_counter()
    pid = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    zoo = [sys.executable, "-m", "zoo"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([*zoo, "export", "multiclass", "-o", "bundle"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        make_rows = (
            "import numpy as np, sys\n"
            "n = int(sys.argv[1]); rng = np.random.default_rng(0)\n"
            "rows = np.lib.format.open_memmap('rows.npy', mode='w+', dtype=np.float32, shape=(n, 64))\n"
            "for start in range(0, n, 100_000):\n"
            "    stop = min(start + 100_000, n); rows[start:stop] = rng.integers(0, 17, size=(stop - start, 64))\n"
            "rows.flush()\n"
            "np.savez('rows.npz', X=rows)\n"
        )
        subprocess.run([sys.executable, "-c", make_rows, str(args.rows)], cwd=work, check=True)
        baseline = [sys.executable, "-c", "import numpy, onnxruntime as ort; "
                    "ort.InferenceSession('bundle/model.onnx', providers=['CPUExecutionProvider'])"]
        predict = [*zoo, "predict", "bundle", "rows.npy", "-o", "pred.csv", "--force"]
        predict_npz = [*zoo, "predict", "bundle", "rows.npz", "-o", "pred-npz.csv", "--force"]
        samples: dict[str, list[tuple[float, float]]] = {"baseline": [], "predict": [], "predict .npz": []}
        for _ in range(args.repeats):
            samples["baseline"].append(run(baseline, work))
            samples["predict"].append(run(predict, work))
            samples["predict .npz"].append(run(predict_npz, work))
        lines = sum(1 for _ in open(work / "pred.csv"))
    assert lines == args.rows + 1, lines
    summary = {}
    for name, values in samples.items():
        walls, peaks = [v[0] for v in values], [v[1] for v in values]
        summary[name] = {"wall_s": statistics.median(walls), "wall_min_max": [min(walls), max(walls)],
                         "peak_rss_mib": statistics.median(peaks), "peak_min_max": [min(peaks), max(peaks)]}
    summary["rows"] = args.rows
    summary["predict_over_baseline_rss"] = summary["predict"]["peak_rss_mib"] / summary["baseline"]["peak_rss_mib"]
    summary["rows_per_second"] = args.rows / summary["predict"]["wall_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict_memory.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| command | peak RSS MiB (median, min-max) | wall s (median) |\n|---|---|---|")
    for name in ("baseline", "predict", "predict .npz"):
        s = summary[name]
        print(f"| {name} | {s['peak_rss_mib']:.1f} ({s['peak_min_max'][0]:.1f}-{s['peak_min_max'][1]:.1f}) "
              f"| {s['wall_s']:.2f} |")
    print(f"zoo predict on {args.rows:,} rows: peak {summary['predict']['peak_rss_mib']:.1f} MiB "
          f"({summary['predict_over_baseline_rss']:.2f}x the onnxruntime+numpy floor), "
          f"{summary['rows_per_second']:,.0f} rows/s")


if __name__ == "__main__":
    main()
