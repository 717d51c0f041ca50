"""Batch scoring against the hand-written floor, on 1,000,000 x 64 rows of the multiclass bundle.

Each figure is a whole process, start-up included, timed with its peak RSS by
measure.py; zoo and the floor (batch_floor.py: pyarrow reads, onnxruntime in
slices, pyarrow writes, no zoo) alternate within every repeat, and the medians
are compared. Also: peak RSS of `zoo predict` for every input format, and Dask
`--scheduler local:2` against one process on the same rows in 4 Parquet files.

    python benchmarks/batch.py [--rows 1000000] [--repeats 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from run import CHILD_ENV, HERE, PY, ZOO, measure_process

RSS_TARGET_MIB = 300
#: zoo's wall time over the floor's, at most (1.25 where not named).
TARGETS = {".npy -> .parquet": 1.10}

MAKE_ROWS = """
import sys, numpy as np, pyarrow as pa, pyarrow.csv as pcsv, pyarrow.feather as feather, pyarrow.parquet as pq
n = int(sys.argv[1])
X = np.random.default_rng(0).integers(0, 17, (n, 64)).astype(np.float32)
np.save("rows.npy", X)
np.savez("rows.npz", X=X)
table = pa.table({f"pixel_{i // 8}_{i % 8}": X[:, i] for i in range(64)})
pq.write_table(table, "rows.parquet")  # one row group, as pyarrow and pandas write a frame of this size
feather.write_feather(table, "rows.feather")
pcsv.write_csv(table, "rows.csv")
import os; os.makedirs("parts", exist_ok=True)
for k, part in enumerate(np.array_split(np.arange(n), 4)):
    pq.write_table(table.take(part), f"parts/part-{k}.parquet")
"""


def median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def bench_batch(repeats: int, work: Path, rows: int = 1_000_000) -> list[dict]:
    subprocess.run([*ZOO, "export", "multiclass", "-o", "bundle", "--runtime", "onnxruntime-cpu"], cwd=work,
                   check=True, capture_output=True, env=CHILD_ENV)
    subprocess.run([PY, "-c", MAKE_ROWS, str(rows)], cwd=work, check=True, env=CHILD_ENV)
    floor = [PY, str(HERE / "batch_floor.py"), "bundle/model.onnx"]
    zoo = [*ZOO, "predict", "bundle"]
    pairs = {  # figure: (zoo's command, the floor's command)
        ".npy -> .parquet": ([*zoo, "rows.npy", "-o", "z-npy.parquet", "--force"],
                             [*floor, "rows.npy", "f-npy.parquet"]),
        ".parquet -> .parquet": ([*zoo, "rows.parquet", "-o", "z-pq.parquet", "--force"],
                                 [*floor, "rows.parquet", "f-pq.parquet"]),
        ".csv -> .csv": ([*zoo, "rows.csv", "-o", "z-csv.csv", "--force"], [*floor, "rows.csv", "f-csv.csv"]),
    }
    memory = {f"{name} -> .parquet": [*zoo, f"rows.{name[1:]}", "-o", f"m-{name[1:]}.parquet", "--force"]
              for name in (".npz", ".feather")}  # .npy, .parquet and .csv: in the pairs above
    dask = {"one process": [*zoo, "parts", "-o", "d-one", "--force"],
            "local:2": [*zoo, "parts", "-o", "d-two", "--force", "--scheduler", "local:2"]}
    samples: dict[str, list[dict]] = {}
    commands = {**{f"zoo {k}": v[0] for k, v in pairs.items()}, **{f"floor {k}": v[1] for k, v in pairs.items()},
                **{f"zoo {k}": v for k, v in memory.items()}, **{f"dask {k}": v for k, v in dask.items()}}
    for _ in range(repeats):
        for name, cmd in commands.items():
            samples.setdefault(name, []).append(measure_process(cmd, work))
    _same_labels(work)
    out = []
    for name in pairs:
        z, f = median(samples[f"zoo {name}"], "wall_s"), median(samples[f"floor {name}"], "wall_s")
        rss = median(samples[f"zoo {name}"], "peak_rss_mib")
        target = TARGETS.get(name, 1.25)
        out.append({"figure": f"zoo predict {name}, {rows:,} x 64", "zoo_s": z, "floor_s": f, "ratio": z / f,
                    "target": f"<= {target:.2f}", "met": z / f <= target, "zoo_peak_rss_mib": rss,
                    "floor_peak_rss_mib": median(samples[f"floor {name}"], "peak_rss_mib"),
                    "rss_met": rss <= RSS_TARGET_MIB})
    for name in memory:
        rss = median(samples[f"zoo {name}"], "peak_rss_mib")
        out.append({"figure": f"zoo predict {name}, {rows:,} x 64", "zoo_s": median(samples[f"zoo {name}"], "wall_s"),
                    "zoo_peak_rss_mib": rss, "rss_met": rss <= RSS_TARGET_MIB})
    one, two = median(samples["dask one process"], "wall_s"), median(samples["dask local:2"], "wall_s")
    out.append({"figure": f"Dask --scheduler local:2 vs one process, 4 Parquet files, {rows:,} rows", "zoo_s": two,
                "floor_s": one, "ratio": two / one, "target": "<= 1.5", "met": two / one <= 1.5,
                "zoo_peak_rss_mib": median(samples["dask local:2"], "peak_rss_mib")})
    return out


def _same_labels(work: Path) -> None:
    """zoo's files hold the floor's labels and probabilities (read back by pyarrow, not by zoo)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    for z, f in (("z-npy.parquet", "f-npy.parquet"), ("z-pq.parquet", "f-pq.parquet")):
        a, b = pq.read_table(work / z), pq.read_table(work / f)
        assert a.column("class_index").to_pylist() == b.column("class_index").to_pylist(), z
        assert a.column("p_3").equals(b.column("p_3")), z
    a, b = pcsv.read_csv(work / "z-csv.csv"), pcsv.read_csv(work / "f-csv.csv")
    assert a.column("class_index").to_pylist() == b.column("class_index").to_pylist()


def markdown(rows: list[dict]) -> str:
    lines = ["| path | zoo s | floor s | ratio | target | met | zoo peak RSS MiB (<= 300) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        met = "-" if "met" not in r else ("yes" if r["met"] else "**no**")
        rss_met = "" if "rss_met" not in r else (" (yes)" if r["rss_met"] else " (**no**)")
        floor = f"{r['floor_s']:.2f}" if "floor_s" in r else "-"
        lines.append(f"| {r['figure']} | {r['zoo_s']:.2f} | {floor} | {ratio} | {r.get('target', '-')} | {met} | "
                     f"{r['zoo_peak_rss_mib']:.0f}{rss_met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-batch-") as tmp:
        rows = bench_batch(args.repeats, Path(tmp), args.rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    (args.out / "batch.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
