"""Bigger than memory, and a busy machine: streaming training, its memory, its ranks, and threads under load.

    python benchmarks/streaming.py [--repeats N] [--big-rows N] [--out FILE]

Figures, each against a baseline measured in the same run (medians over the repeats):

- speed: a 400,000 x 32 table (fits in memory) trained for 2 epochs by ``zoo train --stream`` against
  ``--no-stream`` (rows/s from the metrics). Target: streaming at least 0.8x.
- accuracy: the two bundles (``zoo export``, same table and settings) scored by ``zoo predict`` on a test table drawn
  apart, against its true labels. Target: within 0.5 points.
- memory: the training process's peak RSS (``zoo train --stream --epochs 1``) at 1M, 4M and 8M rows; the in-memory
  path's at 1M beside it. Target: 8M at most 1.15x 1M (flat).
- the done-when: an 8,000,000 x 32 float32 table (1 GiB as a matrix) in 16 Parquet files, ``zoo export --stream
  --epochs 1`` then ``zoo verify``: peak RSS at most 700 MiB; the same with ``--nproc-per-node 2`` (the peak is the
  largest process's: the launcher waits for its workers, and Linux reports the largest). Target: 700 MiB each.
- ranks: ``--nproc-per-node 1`` against ``2`` on the 1M table, wall time and peak RSS.
- a busy machine: ``zoo export multiclass`` at rest against the same under two processes spinning on the 2 cores.
  Target: at most 1.6x (three busy processes on 2 cores make 1.5x a fair share).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZOO = [str(Path(sys.executable).with_name("zoo"))]
FEATURES, CLASSES = 32, 4


def _row(figure, value, unit, baseline, baseline_value, ratio, target=None, met=None, spread=None) -> dict:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value,
            "ratio": ratio, "target": target, "met": met, "spread": spread}


def make_table(folder: Path, rows: int, files: int = 16, seed: int = 0) -> Path:
    """``rows`` x 32 float32 features and an integer label (4 overlapping Gaussian classes) in ``files`` Parquet
    files, written a file at a time (the writer never holds the table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    centers = np.random.default_rng(12345).normal(0, 0.35, (CLASSES, FEATURES))
    rng = np.random.default_rng(seed)
    for k in range(files):
        n = rows * (k + 1) // files - rows * k // files
        y = rng.integers(0, CLASSES, n)
        X = (centers[y] + rng.normal(size=(n, FEATURES))).astype(np.float32)
        table = pa.table({**{f"f{i:02d}": X[:, i] for i in range(FEATURES)}, "label": y})
        pq.write_table(table, folder / f"part-{k:02d}.parquet", row_group_size=131_072)
    return folder


def measure(cmd: list, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "measure.py"), *map(str, cmd)], cwd=cwd, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout)
    if result["status"] != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {result['stderr']}")
    return result


def trained(cmd: list, cwd: Path) -> dict:
    out = subprocess.run([*ZOO, *map(str, cmd), "--json"], cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"zoo {' '.join(map(str, cmd))} failed: {out.stderr}")
    return json.loads(out.stdout[out.stdout.index("{"):])["metrics"]


def accuracy(bundle: Path, test: Path, labels: np.ndarray, cwd: Path) -> float:
    import pyarrow.parquet as pq

    out = cwd / f"{bundle.name}-scored.parquet"
    subprocess.run([*ZOO, "predict", bundle, test, "-o", out, "--force"], cwd=cwd, check=True, capture_output=True)
    predicted = np.asarray(pq.read_table(out).column("label").to_pylist()).astype(int)
    return float((predicted == labels).mean() * 100)


def bench(repeats: int, work: Path, big_rows: int = 8_000_000) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    mid = make_table(work / "mid", 400_000, files=4)
    test = make_table(work / "test", 50_000, files=1, seed=99) / "part-00.parquet"
    truth = pq.read_table(test, columns=["label"]).column("label").to_numpy()
    common = ["--data", mid, "--epochs", "2", "--batch-size", "256"]
    speed: dict[str, list] = {"stream": [], "memory": []}
    for _ in range(repeats):
        for how in speed:
            flag = "--stream" if how == "stream" else "--no-stream"
            speed[how].append(trained(["train", "multiclass", *common, flag, "-o", work / f"{how}.pt", "--force"],
                                      work)["samples_per_second"])
    s, m = statistics.median(speed["stream"]), statistics.median(speed["memory"])
    rows.append(_row("streaming training, 400,000 x 32, rows/s", round(s), "rows/s", "in memory, same table",
                     round(m), round(s / m, 3), ">= 0.8x", s / m >= 0.8,
                     [round(min(speed["stream"]) / max(speed["memory"]), 3),
                      round(max(speed["stream"]) / min(speed["memory"]), 3)]))
    points = {}
    for how in speed:
        flag = "--stream" if how == "stream" else "--no-stream"
        subprocess.run([*ZOO, "export", "multiclass", *common, flag, "-o", work / f"b-{how}", "--force"], cwd=work,
                       check=True, capture_output=True)
        points[how] = accuracy(work / f"b-{how}", test, truth, work)
    gap = points["stream"] - points["memory"]
    rows.append(_row("streaming accuracy on a test table drawn apart", round(points["stream"], 2), "%",
                     "in memory", round(points["memory"], 2), round(gap, 2), "within 0.5 points", abs(gap) <= 0.5))

    # Peak RSS against table size
    peaks = {}
    for millions in (1, 4, 8):
        n = min(millions * 1_000_000, big_rows)
        folder = make_table(work / f"t{millions}", n)
        peaks[millions] = measure([*ZOO, "train", "multiclass", "--data", folder, "--stream", "--epochs", "1",
                                   "--batch-size", "1024", "-o", work / f"m{millions}.pt", "--force"],
                                  work)["peak_rss_mib"]
        if millions != 8:
            import shutil

            if millions == 4:
                shutil.rmtree(folder)
    memory_1m = measure([*ZOO, "train", "multiclass", "--data", work / "t1", "--no-stream", "--epochs", "1",
                         "--batch-size", "1024", "-o", work / "mem.pt", "--force"], work)["peak_rss_mib"]
    for millions in (1, 4, 8):
        rows.append(_row(f"peak RSS, streaming {millions}M x 32", round(peaks[millions]), "MiB",
                         "streaming 1M" if millions > 1 else "in memory 1M",
                         round(peaks[1] if millions > 1 else memory_1m),
                         round(peaks[millions] / (peaks[1] if millions > 1 else memory_1m), 3),
                         "<= 1.15x 1M" if millions == 8 else None,
                         peaks[8] / peaks[1] <= 1.15 if millions == 8 else None))

    # The done-when: 8M x 32 in 16 files, one epoch, a verified bundle, under 700 MiB; then on 2 processes
    big = work / "t8"
    for procs in (1, 2):
        bundle = work / f"big-{procs}"
        run = measure([*ZOO, "export", "multiclass", "--data", big, "--stream", "--epochs", "1", "--nproc-per-node",
                       procs, "-o", bundle, "--force"], work)
        verified = subprocess.run([*ZOO, "verify", bundle], cwd=work, capture_output=True, text=True).returncode == 0
        rows.append(_row(f"8M x 32 in 16 files: export --stream --epochs 1, --nproc-per-node {procs}, peak RSS",
                         round(run["peak_rss_mib"]), "MiB", "the target", 700, round(run["peak_rss_mib"] / 700, 3),
                         "<= 700 MiB, bundle verified", run["peak_rss_mib"] <= 700 and verified,
                         [f"{run['wall_s']:.0f} s", "verified" if verified else "NOT verified"]))

    # Ranks on the 1M table
    one = {}
    for procs in (1, 2):
        r = measure([*ZOO, "train", "multiclass", "--data", work / "t1", "--stream", "--epochs", "1",
                     "--batch-size", "1024", "--nproc-per-node", procs, "-o", work / f"r{procs}.pt", "--force"], work)
        one[procs] = r
    rows.append(_row("1M x 32 streamed, --nproc-per-node 2, wall", round(one[2]["wall_s"], 1), "s",
                     "--nproc-per-node 1", round(one[1]["wall_s"], 1), round(one[2]["wall_s"] / one[1]["wall_s"], 3),
                     None, None, [f"peak RSS {one[1]['peak_rss_mib']:.0f} vs {one[2]['peak_rss_mib']:.0f} MiB"]))
    rows.extend(busy(repeats, work))
    return rows


def busy(repeats: int, work: Path) -> list[dict]:
    """``zoo export multiclass`` at rest, then beside two processes spinning (interleaved per repeat).

    A second figure gives the machine's own answer: a single-threaded pure-Python loop of about the same
    length, timed the same way, is what any one-thread process gets beside the hog (1.5x would be a
    fair third of two cores; this shared machine gave 1.40x-1.77x from run to run).
    """
    loop = "s = 0\nfor i in range(40_000_000): s += i"
    commands = {"export": [*ZOO, "export", "multiclass", "-o", work / "busy", "--force", "--no-card"],
                "loop": [sys.executable, "-c", loop]}
    times = {(what, how): [] for what in commands for how in ("rest", "hog")}
    for _ in range(max(3, repeats)):
        for what, how in times:
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (how == "hog"))]
            try:
                time.sleep(0.2 if hogs else 0)
                started = time.perf_counter()
                subprocess.run(commands[what], cwd=work, check=True, capture_output=True)
                times[what, how].append(time.perf_counter() - started)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
    rows = []
    for what, figure in (("export", "zoo export multiclass beside a 2-process CPU hog"),
                         ("loop", "a one-thread pure-Python loop beside the same hog (the machine's share)")):
        rest, hog = statistics.median(times[what, "rest"]), statistics.median(times[what, "hog"])
        target = ("<= 1.6x", hog / rest <= 1.6) if what == "export" else (None, None)
        rows.append(_row(figure, round(hog, 2), "s", "at rest", round(rest, 2), round(hog / rest, 3), *target,
                         [round(min(times[what, "hog"]) / max(times[what, "rest"]), 3),
                          round(max(times[what, "hog"]) / min(times[what, "rest"]), 3)]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=8_000_000)
    parser.add_argument("--only", choices=["all", "busy"], default="all")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = busy(args.repeats, Path(tmp)) if args.only == "busy" else bench(args.repeats, Path(tmp), args.big_rows)
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
