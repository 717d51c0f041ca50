"""zoo's benchmarks: each figure a ratio to a baseline measured in the same run.

    python benchmarks/run.py [--only NAME[,NAME]] [--repeats N] [--out DIR]

Benchmarks: startup, export, inference, training, distributed, scaling, bench, openvino, batch, tables, gpu; and,
only when named with --only, busy, streaming and serve (minutes each).
Variants are interleaved within each repeat (A B C, A B C, ...) so that a noisy neighbour hurts
all of them alike; every figure is the median, with min-max. Results go to
DIR/latest.json and DIR/latest.md (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
# The console script users type, when installed beside this interpreter (else `python -m zoo`).
_SCRIPT = Path(PY).with_name("zoo")
ZOO = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "zoo"]


# -- measuring --------------------------------------------------------------------------------


# Children may cache bytecode as an installed zoo does (pip compiles on install), even where the
# calling shell sets PYTHONDONTWRITEBYTECODE: otherwise every start recompiles zoo's sources.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure_process(cmd: list[str], cwd: Path) -> dict:
    out = subprocess.run([PY, str(HERE / "measure.py"), *cmd], cwd=cwd, capture_output=True, text=True, check=True,
                         env=CHILD_ENV)
    result = json.loads(out.stdout)
    if result["status"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {result['stderr']}")
    return result


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def interleaved(variants: dict, repeats: int) -> dict[str, list]:
    samples: dict[str, list] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            samples[name].append(run())
    return samples


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def row(figure, value, unit, baseline, baseline_value, ratio, target=None, met=None, spread=None) -> dict:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value,
            "ratio": ratio, "target": target, "met": met, "spread": spread}


# -- benchmarks ---------------------------------------------------------------------------------


def open_runtime(name: str, path: Path):
    """A session of the registered runtime ``name`` on ``path``, as zoo's commands open one."""
    from zoo.exports.runtimes import open_session
    from zoo.registry import get_runtime

    return open_session(get_runtime(name), path)


def bench_startup(repeats: int, work: Path) -> list[dict]:
    variants = {
        "import torch": lambda: measure_process([PY, "-c", "import torch"], work)["wall_s"],
        "import click, pluggy": lambda: measure_process([PY, "-c", "import click, pluggy"], work)["wall_s"],
        "zoo --help": lambda: measure_process([*ZOO, "--help"], work)["wall_s"],
        "zoo list": lambda: measure_process([*ZOO, "list"], work)["wall_s"],
        "zoo runtimes": lambda: measure_process([*ZOO, "runtimes"], work),
    }
    interleaved(variants, 1)  # warm-up: bytecode caches and the OS file cache, for every variant alike
    got = interleaved(variants, max(repeats, 5))
    runtimes = got.pop("zoo runtimes")
    s = {k: summary(v) for k, v in got.items()}
    base, floor = s["import torch"]["median"], s["import click, pluggy"]["median"]
    rows = [row(f"`{name}` wall", s[name]["median"], "s", "`python -c 'import torch'`", base,
                s[name]["median"] / base, "<= 0.05", s[name]["median"] / base <= 0.05, s[name])
            for name in ("zoo --help", "zoo list")]
    # The floor of any click + pluggy command line; zoo --help also imports every command's module.
    rows += [row(f"`{name}` wall", s[name]["median"], "s", "`python -c 'import click, pluggy'`", floor,
                 s[name]["median"] / floor, "<= 2.0", s[name]["median"] / floor <= 2.0, s[name])
             for name in ("zoo --help", "zoo list")]
    wall = summary([r["wall_s"] for r in runtimes])
    rss = statistics.median(r["peak_rss_mib"] for r in runtimes)
    rows.append(row(f"`zoo runtimes` wall (peak RSS {rss:.0f} MiB)", wall["median"], "s",
                    "`python -c 'import click, pluggy'`", floor, wall["median"] / floor, "< 0.3 s",
                    wall["median"] < 0.3, wall))
    return rows


def bench_export(repeats: int, work: Path) -> list[dict]:
    # The floors make no model card: zoo is compared with them without one, and the card's cost is its own row.
    variants = {
        "zoo": lambda: measure_process([*ZOO, "export", "multiclass", "-o", "zoo-bundle", "--force", "--no-card"],
                                       work),
        "zoo with card": lambda: measure_process([*ZOO, "export", "multiclass", "-o", "zoo-carded", "--force"], work),
        "floor (TorchScript)": lambda: measure_process([PY, str(HERE / "floor.py"), "--exporter", "torchscript"],
                                                       work),
        "floor (dynamo)": lambda: measure_process([PY, str(HERE / "floor.py"), "--exporter", "dynamo"], work),
    }
    interleaved(variants, 1)  # warm-up: bytecode and font caches, and the OS file cache, for every variant alike
    samples = interleaved(variants, repeats)
    wall = {k: summary([v["wall_s"] for v in vs]) for k, vs in samples.items()}
    rss = {k: summary([v["peak_rss_mib"] for v in vs]) for k, vs in samples.items()}
    z = wall["zoo"]["median"]
    rows = []
    for floor, target, limit in (("floor (TorchScript)", "<= 1.10", 1.10), ("floor (dynamo)", "<= 0.60", 0.60)):
        ratio = z / wall[floor]["median"]
        rows.append(row("`zoo export multiclass --no-card` wall", z, "s", f"hand-written {floor}",
                        wall[floor]["median"], ratio, target, ratio <= limit, wall["zoo"]))
    ratio = rss["zoo"]["median"] / rss["floor (TorchScript)"]["median"]
    rows.append(row("`zoo export multiclass --no-card` peak RSS", rss["zoo"]["median"], "MiB",
                    "hand-written floor (TorchScript)", rss["floor (TorchScript)"]["median"], ratio, "<= 1.10",
                    ratio <= 1.10, rss["zoo"]))
    carded = wall["zoo with card"]["median"]
    rows.append(row("`zoo export multiclass` wall, with its model card", carded, "s", "`zoo export --no-card`", z,
                    carded / z, spread=wall["zoo with card"]))
    size = (work / "zoo-carded" / "report.html").stat().st_size / 1024
    rows.append(row("model card `report.html` size", size, "KiB", "the bundle's `model.onnx`",
                    (work / "zoo-carded" / "model.onnx").stat().st_size / 1024,
                    size / ((work / "zoo-carded" / "model.onnx").stat().st_size / 1024)))
    return rows


def _mlp_bundle(work: Path, input_size: int, hidden: int, classes: int, seed: int = 0):
    """A random-weight multiclass MLP exported the way `zoo export` does (wrapper, export, fold)."""
    import numpy as np
    import torch

    from zoo.exports.export.exporter import export, finish, make_wrapper, output_names
    from zoo.plugins.multiclass import SOFTMAX_CROSS_ENTROPY
    from zoo.plugins.nets import MulticlassNet

    torch.manual_seed(seed)
    module = MulticlassNet(input_size, hidden, classes).eval()
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=input_size).astype(np.float32)
    scale = (rng.random(input_size) + 0.5).astype(np.float32)
    wrapper = make_wrapper(module, SOFTMAX_CROSS_ENTROPY, mean, scale)
    path = work / f"mlp-{input_size}-{hidden}-{classes}.onnx"
    started = time.perf_counter()
    export(wrapper, path, input_size=input_size, names=output_names(SOFTMAX_CROSS_ENTROPY))
    finish(path, {"zoo.model": "benchmark", "zoo.input_size": str(input_size), "zoo.head": "softmax",
                  "zoo.decision": "argmax", "zoo.num_classes": str(classes),
                  "zoo.class_labels": json.dumps([str(c) for c in range(classes)])})
    return wrapper, module, path, time.perf_counter() - started


def bench_inference(repeats: int, work: Path) -> list[dict]:
    import numpy as np
    import torch

    wrapper, module, path, _ = _mlp_bundle(work, 784, 5, 3)
    sess = open_runtime("onnxruntime-cpu", path)
    names = ["probabilities", "label"]
    x = np.random.default_rng(1).normal(size=(65536, 784)).astype(np.float32)
    xt = torch.from_numpy(x)
    one, one_t = x[:1], xt[:1]
    n = max(repeats, 5)

    def torch_same(t):
        with torch.inference_mode():
            return wrapper(t)

    def torch_bare(t):
        with torch.inference_mode():
            return module(t)

    big = interleaved({
        "zoo": lambda: statistics.median(timed(lambda: sess.run(x, names), 3)),
        "torch same": lambda: statistics.median(timed(lambda: torch_same(xt), 3)),
        "torch bare": lambda: statistics.median(timed(lambda: torch_bare(xt), 3)),
        "read": lambda: statistics.median(timed(lambda: x.sum(), 3)),
    }, n)
    small = interleaved({
        "zoo": lambda: statistics.median(timed(lambda: sess.run(one, names), 200)),
        "torch same": lambda: statistics.median(timed(lambda: torch_same(one_t), 200)),
        "torch bare": lambda: statistics.median(timed(lambda: torch_bare(one_t), 200)),
    }, n)
    thr = {k: summary([len(x) / v for v in vs]) for k, vs in big.items()}
    lat = {k: summary([v * 1e6 for v in vs]) for k, vs in small.items()}
    z = thr["zoo"]["median"]
    rows = [
        row("predict latency, batch 1, 784-5-3", lat["zoo"]["median"], "us",
            "torch eager, same outputs (standardize, MLP, softmax, argmax)", lat["torch same"]["median"],
            lat["zoo"]["median"] / lat["torch same"]["median"], "<= 0.35",
            lat["zoo"]["median"] / lat["torch same"]["median"] <= 0.35, lat["zoo"]),
        row("predict latency, batch 1, 784-5-3", lat["zoo"]["median"], "us", "torch eager, bare MLP logits",
            lat["torch bare"]["median"], lat["zoo"]["median"] / lat["torch bare"]["median"], None, None, lat["zoo"]),
        row("predict throughput, batch 65,536, 784-5-3", z, "rows/s",
            "torch eager, same outputs", thr["torch same"]["median"], z / thr["torch same"]["median"], ">= 1.0",
            z / thr["torch same"]["median"] >= 1.0, thr["zoo"]),
        row("predict throughput, batch 65,536, 784-5-3", z, "rows/s", "torch eager, bare MLP logits",
            thr["torch bare"]["median"], z / thr["torch bare"]["median"], ">= 1.0",
            z / thr["torch bare"]["median"] >= 1.0, thr["zoo"]),
        row("predict throughput, batch 65,536, 784-5-3", z, "rows/s", "memory-read ceiling (numpy sum, 1 pass)",
            thr["read"]["median"], z / thr["read"]["median"], ">= 0.50", z / thr["read"]["median"] >= 0.5, thr["zoo"]),
    ]
    return rows


def bench_training(repeats: int, work: Path) -> list[dict]:
    import torch

    from zoo.training import TrainConfig, fit, prepare

    config = TrainConfig(epochs=10, device="cpu")
    built, dataset, parts = prepare("multiclass", config=config)
    X = torch.from_numpy((parts.X_train - parts.mean) * parts.scale)
    Y = torch.from_numpy(parts.y_train)

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        return model, torch.optim.Adam(model.parameters(), lr=config.lr), torch.nn.CrossEntropyLoss()

    fresh()  # the first torch optimizer imports torch._dynamo: keep that out of the loop's time

    def manual():
        model, optimizer, loss_fn = fresh()
        started = time.perf_counter()
        for _ in range(config.epochs):
            order = torch.randperm(len(X))
            for start in range(0, len(X), config.batch_size):
                index = order[start:start + config.batch_size]
                loss = loss_fn(model(X[index]), Y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return len(X) * config.epochs / (time.perf_counter() - started)

    def dataloader():
        model, optimizer, loss_fn = fresh()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=config.batch_size,
                                             shuffle=True)
        started = time.perf_counter()
        for _ in range(config.epochs):
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return len(X) * config.epochs / (time.perf_counter() - started)

    samples = interleaved({
        "zoo": lambda: fit("multiclass", config=config).metrics["samples_per_second"],
        "manual": manual,
        "dataloader": dataloader,
    }, max(repeats, 3))
    s = {k: summary(v) for k, v in samples.items()}
    z = s["zoo"]["median"]
    return [
        row("trainer samples/s (digits, 64-32-10)", z, "samples/s", "manual index-slicing loop, torch.optim.Adam",
            s["manual"]["median"], z / s["manual"]["median"], ">= 0.95", z / s["manual"]["median"] >= 0.95, s["zoo"]),
        row("trainer samples/s (digits, 64-32-10)", z, "samples/s", "DataLoader loop, torch.optim.Adam",
            s["dataloader"]["median"], z / s["dataloader"]["median"], None, None, s["zoo"]),
    ]


SCALING_BATCHES = (1, 16, 256, 4096, 65536)


def bench_scaling(repeats: int, work: Path) -> list[dict]:
    import numpy as np

    x = np.random.default_rng(2).normal(size=(max(SCALING_BATCHES), 784)).astype(np.float32)
    rows = []
    for hidden in (5, 64, 512):
        export_times = []
        for _ in range(max(repeats, 3)):
            *_, path, seconds = _mlp_bundle(work, 784, hidden, 10)
            export_times.append(seconds)
        sess = open_runtime("onnxruntime-cpu", path)
        throughput = {}
        for batch in SCALING_BATCHES:
            xb = x[:batch]
            calls = max(3, min(200, 65536 // batch))
            rates = [batch / statistics.median(timed(lambda: sess.run(xb, ["probabilities", "label"]), calls))
                     for _ in range(3)]
            throughput[batch] = summary(rates)
        rows.append({"figure": f"784-{hidden}-10", "export_s": summary(export_times),
                     "rows_per_s": {str(b): t for b, t in throughput.items()}})
    return rows


def bench_gpu(repeats: int, work: Path) -> list[dict]:
    import numpy as np
    import torch

    from zoo.exports.runtimes import why_unavailable
    from zoo.registry import get_runtime

    reason = why_unavailable(get_runtime("onnxruntime-cuda"))
    if reason is None and not torch.cuda.is_available():
        reason = "torch sees no CUDA device"
    if reason:
        return [{"figure": "GPU rows", "skipped": reason}]
    wrapper, _, path, _ = _mlp_bundle(work, 784, 5, 3)
    wrapper = wrapper.to("cuda")
    sess = open_runtime("onnxruntime-cuda", path)  # refuses a session that fell back to the CPU
    rows = []
    for batch in (1, 65536):
        x = np.random.default_rng(3).normal(size=(batch, 784)).astype(np.float32)

        def torch_run():
            with torch.inference_mode():
                out = wrapper(torch.from_numpy(x).to("cuda"))
                return out[-1].cpu()

        calls = 200 if batch == 1 else 10
        samples = interleaved({
            "zoo": lambda: statistics.median(timed(lambda: sess.sess.run(["probabilities", "label"],
                                                                         {"input": x}), calls)),
            "torch": lambda: statistics.median(timed(torch_run, calls)),
        }, max(repeats, 3))
        z, t = statistics.median(samples["zoo"]), statistics.median(samples["torch"])
        rows.append(row(f"CUDA predict, batch {batch:,}, 784-5-3", batch / z, "rows/s",
                        "torch CUDA eager, same outputs (host to host)", batch / t, t / z))
    return rows


def bench_distributed(repeats: int, work: Path) -> list[dict]:
    """Training samples/s with 1 and with 2 processes (DDP over gloo), as measured inside the loop."""
    cases = {
        "small (digits, 64-32-10)": ["multiclass", "--epochs", "10"],
        "large (synthetic 100,000 x 64, 64-512-10)": ["multiclass", "--data", "synthetic:100000x64x10",
                                                      "--hidden-size", "512", "--epochs", "2", "--batch-size", "256"],
    }
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    runs = [(label, args, "cpu") for label, args in cases.items()]
    if gpus >= 2:
        runs += [(f"{label}, CUDA", args, "cuda") for label, args in cases.items()]
    rows = []
    for label, args, device in runs:
        def run(nproc, args=args, device=device):
            out = subprocess.run([*ZOO, "train", *args, "--nproc-per-node", str(nproc), "-o", "m.pt", "--force",
                                  "--json", "--device", device], cwd=work, capture_output=True, text=True,
                                 env=CHILD_ENV, check=True)
            metrics = json.loads(out.stdout)["metrics"]
            return metrics["samples_per_second"], metrics["holdout_accuracy"]

        samples = interleaved({"1 process": lambda: run(1), "2 processes": lambda: run(2)}, max(1, repeats // 2))
        one = summary([v[0] for v in samples["1 process"]])
        two = summary([v[0] for v in samples["2 processes"]])
        rows.append(row(f"training samples/s, 2 processes, {label}", two["median"], "samples/s",
                        "1 process", one["median"], two["median"] / one["median"], None, None, two))
        accuracy = (statistics.median(v[1] for v in samples["2 processes"]),
                    statistics.median(v[1] for v in samples["1 process"]))
        rows[-1]["holdout_accuracy_2_vs_1"] = accuracy
    if gpus < 2:
        rows.append({"figure": "GPU rows (1 vs 2 processes)",
                     "skipped": f"needs 2 CUDA devices, this machine has {gpus}"})
    return rows


#: zoo bench's batch sizes against one onnxruntime call: the runtime runs a batch of more than two slices (12,288
#: rows at 64 features, 1,003 at 784) a slice at a time, into outputs allocated once.
BENCH_BATCHES = {(784, 5, 3): (1, 65536), (64, 32, 10): (1, 64, 1024, 12288, 65536, 262144)}


def bench_bench(repeats: int, work: Path) -> list[dict]:
    """`zoo bench`'s rows/s for onnxruntime-cpu against one bare `session.run` call on the same session, timed by a
    hand-written loop: at 64 features (the multiclass bundle's shape) for every batch size, at 784 for two."""
    import numpy as np

    from zoo.exports.deploy.bench import bench

    rows = []
    for shape, batches in BENCH_BATCHES.items():
        *_, path, _ = _mlp_bundle(work, *shape)
        sess = open_runtime("onnxruntime-cpu", path).sess  # the onnxruntime session zoo opens, called bare
        for batch in batches:
            x = np.ascontiguousarray(np.resize(np.random.default_rng(0).normal(size=(256, shape[0])),
                                               (batch, shape[0])), dtype=np.float32)
            calls = max(9, min(2000, 200_000 // batch))

            def by_hand(x=x, calls=calls):
                for _ in range(3):
                    sess.run(None, {"input": x})
                samples = []
                for _ in range(calls):
                    started = time.perf_counter()
                    sess.run(None, {"input": x})
                    samples.append(time.perf_counter() - started)
                return len(x) / statistics.median(samples)

            def by_zoo(batch=batch):
                report = bench(path, runtimes=["onnxruntime-cpu"], batch_sizes=[batch], repeats=5)
                return report.rows[0].rows_per_second

            # Three pairs a repeat: a neighbour's burst then lands on both sides alike (5 pairs gave 0.91-1.09x
            # for the very same onnxruntime call on a busy machine).
            got = interleaved({"zoo": by_zoo, "hand": by_hand}, 3 * max(repeats, 3))
            z, h = summary(got["zoo"]), summary(got["hand"])
            ratio = z["median"] / h["median"]
            rows.append(row(f"zoo bench rows/s, onnxruntime-cpu, batch {batch:,}, {'-'.join(map(str, shape))}",
                            z["median"], "rows/s", "one bare `session.run` call per batch on the same session, "
                            "hand-written perf_counter loop", h["median"], ratio, ">= 0.95", ratio >= 0.95, z))
    return rows


def bench_openvino(repeats: int, work: Path) -> list[dict]:
    """OpenVINO against onnxruntime on the multiclass bundle, at OpenVINO's default precision and at f32."""
    import numpy as np

    from zoo.exports.export.pipeline import export_bundle
    from zoo.exports.runtimes import open_session, why_unavailable
    from zoo.exports.runtimes.openvino import OpenVINOCPU
    from zoo.training import TrainConfig, fit

    reason = why_unavailable(OpenVINOCPU())
    if reason:
        return [{"figure": "OpenVINO rows", "skipped": reason}]
    export_bundle(fit("multiclass", config=TrainConfig(device="cpu")), work / "ov-multiclass")
    model = work / "ov-multiclass" / "model.onnx"
    x = np.random.default_rng(0).integers(0, 17, (65536, 64)).astype(np.float32)
    ort_out = open_runtime("onnxruntime-cpu", model).run(x)
    rows = []
    for label, runtime in (("OpenVINO's default", OpenVINOCPU(precision=None)), ("forced f32", OpenVINOCPU())):
        session = open_session(runtime, model)
        out = session.run(x)
        diff = float(np.abs(out["probabilities"] - ort_out["probabilities"]).max())
        flips = float((out["label"] != ort_out["label"]).mean())
        rows.append({"figure": f"OpenVINO vs onnxruntime, multiclass, batch 65,536, {label}",
                     "precision": session.precision, "max_abs_diff": diff, "labels_flipped": flips})
    return rows


def bench_batch(repeats: int, work: Path) -> list[dict]:
    """`zoo predict` on 1M rows against the hand-written floor, per format; Dask local:2 (benchmarks/batch.py)."""
    from batch import bench_batch as run

    return run(repeats, work)


def bench_tables(repeats: int, work: Path) -> list[dict]:
    """Your own table: accuracy against scikit-learn, 1M-row scoring against skl2onnx, reading against pyarrow by
    hand, numeric tables against matrices (benchmarks/tables.py)."""
    from tables import bench_tables as run

    return run(repeats, work)


def bench_streaming(repeats: int, work: Path) -> list[dict]:
    """Bigger than memory: streaming against in-memory training, peak RSS to 8M rows, the 8M x 32 bundle on 1 and 2
    processes, and a busy machine (benchmarks/streaming.py; several minutes and 1.5 GiB of disk)."""
    from streaming import bench as run

    return run(repeats, work)


def bench_busy(repeats: int, work: Path) -> list[dict]:
    """``zoo export multiclass`` at rest against beside a 2-process CPU hog (benchmarks/streaming.py)."""
    from streaming import busy as run

    return run(repeats, work)


def bench_serve(repeats: int, work: Path) -> list[dict]:
    """`zoo serve` against MLServer 1.7.1 on the same model.onnx, 16 loopback clients, 1 and 64 rows a request
    (benchmarks/serve.py; installs MLServer into benchmarks/.cache the first time; 1.5 minutes a repeat, and
    then 25 s for a swap and a drain under the same load)."""
    from serve import bench as run

    return run(repeats, work)


BENCHMARKS = {"startup": bench_startup, "export": bench_export, "inference": bench_inference,
              "training": bench_training, "distributed": bench_distributed, "scaling": bench_scaling,
              "bench": bench_bench, "openvino": bench_openvino, "batch": bench_batch, "tables": bench_tables,
              "gpu": bench_gpu, "busy": bench_busy, "streaming": bench_streaming, "serve": bench_serve}
#: Run only when named (--only): minutes each; the streaming one writes 1.5 GiB of tables, the serve one installs
#: MLServer into a virtual environment of its own.
OPT_IN = ("busy", "streaming", "serve")


# -- report ---------------------------------------------------------------------------------------


def fmt(value, unit="") -> str:
    if value is None:
        return "-"
    if unit in ("rows/s", "samples/s") or value >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown(results: dict, machine: str) -> str:
    lines = [f"Machine: {machine}", "",
             "| figure | zoo | baseline | baseline value | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        if name in ("scaling", "openvino", "batch"):
            continue
        for r in rows:
            if "skipped" in r:
                lines.append(f"| {r['figure']} | skipped: {r['skipped']} | | | | | |")
                continue
            spread = r.get("spread") or {}
            zoo_value = f"{fmt(r['value'], r['unit'])} {r['unit']}"
            if spread:
                zoo_value += f" ({fmt(spread['min'], r['unit'])}-{fmt(spread['max'], r['unit'])})"
            met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
            lines.append(f"| {r['figure']} | {zoo_value} | {r['baseline']} | {fmt(r['baseline_value'], r['unit'])} "
                         f"| {r['ratio']:.3f} | {r['target'] or '-'} | {met} |")
    if results.get("openvino"):
        lines += ["", "OpenVINO against onnxruntime (same file, same 65,536 rows):", "",
                  "| run | precision OpenVINO reports | max abs prob. diff | labels flipped |", "|---|---|---|---|"]
        for r in results["openvino"]:
            if "skipped" in r:
                lines.append(f"| {r['figure']} | skipped: {r['skipped']} | | |")
            else:
                lines.append(f"| {r['figure']} | {r['precision']} | {r['max_abs_diff']:.2e} | "
                             f"{r['labels_flipped']:.3%} |")
    if results.get("batch"):
        from batch import markdown as batch_table

        lines += ["", "Batch scoring, 1,000,000 x 64 rows, multiclass (whole processes, start-up included; the "
                  "floor is benchmarks/batch_floor.py):", "", batch_table(results["batch"]).rstrip("\n")]
    if "scaling" in results:
        lines += ["", "Scaling (onnxruntime CPU through zoo's runtime; rows/s, median of 3):", "",
                  "| model | export s | " + " | ".join(f"batch {b:,}" for b in SCALING_BATCHES) + " |",
                  "|---|---|" + "---|" * len(SCALING_BATCHES)]
        for r in results["scaling"]:
            cells = " | ".join(fmt(r["rows_per_s"][str(b)]["median"], "rows/s") for b in SCALING_BATCHES)
            lines.append(f"| {r['figure']} | {r['export_s']['median']:.2f} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="zoo's benchmarks")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)} (without it: all but "
                                       f"{' and '.join(OPT_IN)})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [n for n in BENCHMARKS if n not in OPT_IN]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        for name in names:  # the process benchmarks first, before this process imports torch
            started = time.perf_counter()
            results[name] = BENCHMARKS[name](args.repeats, Path(tmp))
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    try:
        import onnxruntime
        import torch

        machine += f", torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    table = markdown(results, machine)
    (args.out / "latest.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
