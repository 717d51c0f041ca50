"""Deployment variants of a bundle's fp32 model: fp16 and int8, each measured, guarded and verifiable.

A variant is ``DIR/variants/<name>/model.onnx`` with fp32 inputs and outputs and
the same output names and meaning as ``model.onnx``. It is made from the bundle
alone (no torch): the fp32 file and ``evaluation.npz``, which holds the held-out
rows with their true labels and a sample of training rows for calibration.

- ``fp16``: onnxconverter-common's ``convert_float_to_float16`` with fp32 inputs
  and outputs; the head (Softmax/Sigmoid) and the decision stay in fp32.
- ``int8``: onnxruntime's static quantization, QDQ format, weights int8 per
  output channel, activations uint8, calibrated (MinMax) on the training rows.
  Per channel, because the standardization folded into the first Gemm gives
  its rows very different ranges, and one scale per tensor swamps most of
  them. When the guard still refuses the folded graph (raw input columns of
  very different ranges share one activation scale: breast-cancer's areas in
  the thousands beside ratios near 0.1), the standardization is taken back out
  and run in fp32 ahead of the quantized layers. ``int8-naive`` (per tensor,
  folded: what a default quantization call gives) shows why; the guard refuses
  it. The NaN check reads the fp32 input ahead of the quantized layers: a
  QuantizeLinear would turn a NaN into a plausible number.

Each variant is measured on the held-out rows against the fp32 model (accuracy
on the true labels and its delta, label agreement, max abs probability
difference), its size and its rows/s on every runtime that can run here. A
variant that loses more than ``max_accuracy_drop`` points or agrees on fewer than
``min_agreement`` percent of the labels is refused: nothing is written for it.
Its own outputs on the test inputs become its test data, replayed by
``zoo verify`` under a tolerance fitted to its precision.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.exports import evaluation as evaluations
from zoo.exports import reading
from zoo.exports.defaults import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT
from zoo.exports.evaluation import Evaluation
from zoo.exports.manifest import Variant

#: Replay tolerance (atol, rtol) of a variant's own test data, by precision and output: runtimes round lowered
#: arithmetic differently (the ONNX reference accumulates an fp16 matrix product in fp16; onnxruntime and
#: OpenVINO in fp32; int8 kernels requantize differently). Measured across the three on the held-out rows of
#: the built-in models: up to 2.3e-2 on a binary logit in fp16, 2.8e-2 on an int8 probability. The logit's
#: error follows the size of the sums behind it, not its own size, hence its larger absolute term.
TOLERANCE = {"fp16": {"logits": (1e-1, 2e-2), "probabilities": (2e-2, 2e-2), "label": (2e-2, 2e-2)},
             "int8": {"logits": (5e-1, 5e-2), "probabilities": (5e-2, 5e-2), "label": (5e-2, 5e-2)}}
BENCH_BATCHES = (1, 65536)


class VariantRefused(ZooError):
    """A variant that the guard refused: nothing was written for it."""


@dataclass(frozen=True)
class Method:
    name: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)


METHODS = {
    "fp16": Method("fp16", "fp16"),
    "int8": Method("int8", "int8", {"per_channel": True, "fallback": True}),
    # What a default quantization call gives (one scale per tensor, the normalization left folded): kept to
    # show the guard at work.
    "int8-naive": Method("int8-naive", "int8", {"per_channel": False, "fallback": False}),
}


def require(names) -> None:
    """Refuse, before any work, a variant whose tool is not installed."""
    for name in names:
        if method(name).precision == "fp16":
            try:
                import onnxconverter_common  # noqa: F401  (imported again to convert)
            except ImportError:
                raise ZooError("an fp16 variant needs onnxconverter-common: pip install 'zoo-onnx[variants]'") \
                    from None


def method(name: str) -> Method:
    if name not in METHODS:
        raise ZooError(f"unknown variant {name!r}: choose from {', '.join(METHODS)}")
    return METHODS[name]


# -- making a variant ------------------------------------------------------------------------------


def make(name: str, fp32_path: Path, calibration, normalization, calibration_source: str) -> tuple[Any, dict[str, Any]]:
    """The variant's ONNX model (in memory) and the record of how it was made.

    ``normalization``: ``(mean, scale)`` to put back in fp32 ahead of the quantized layers (int8 only).
    """
    chosen = method(name)
    if chosen.precision == "fp16":
        return _fp16(fp32_path)
    model, made = _int8(fp32_path, calibration, chosen.options["per_channel"], normalization)
    return model, made | {"calibration_source": calibration_source}


def _fp16(fp32_path: Path):
    import onnx

    try:
        from onnxconverter_common import __version__ as converter_version
        from onnxconverter_common import float16
    except ImportError:
        raise ZooError("an fp16 variant needs onnxconverter-common: pip install 'zoo-onnx[variants]'") from None

    model = onnx.load(str(fp32_path))
    # The head and the decision stay fp32: a Softmax computed in fp16 rounds probabilities to 3 digits,
    # and onnxconverter-common's keep_io_types otherwise types a Softmax output fp16 against an fp32 Cast.
    # (Listing the NaN-check ops too sends its cast insertion into a loop: version 1.16.)
    blocked = ["Softmax", "Sigmoid", "ArgMax", "Gather", "GreaterOrEqual"]
    converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    _outputs_in_fp32(converted, blocked)
    _short_names(converted)
    return converted, {"tool": "onnxconverter_common.float16.convert_float_to_float16",
                       "tool_version": converter_version, "keep_io_types": True, "op_block_list": blocked}


def _outputs_in_fp32(model, blocked: list[str]) -> None:
    """Undo the converter's one slip: an fp32 head output that an fp16 node also reads is cast to fp16 *as*
    the graph output (``probabilities`` came out fp16, and the fp32 ArgMax read the rounded copy).

    The fp32 tensor gets the output's name back; only the fp16 readers get the cast copy.
    """
    from onnx import TensorProto

    graph = model.graph
    for output in graph.output:
        if output.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        cast = next((n for n in graph.node if n.op_type == "Cast" and list(n.output) == [output.name]), None)
        if cast is None:
            continue
        source, copy = cast.input[0], f"{output.name}_fp16"
        cast.output[0] = copy
        for node in graph.node:
            if node is cast:
                continue
            for i, name in enumerate(node.input):
                if name == output.name:
                    node.input[i] = source if node.op_type in blocked else copy
        for node in graph.node:  # the fp32 tensor takes the output's name
            for i, name in enumerate(node.input):
                if name == source:
                    node.input[i] = output.name
            for i, name in enumerate(node.output):
                if name == source:
                    node.output[i] = output.name
        output.type.tensor_type.elem_type = TensorProto.FLOAT
        kept = [v for v in graph.value_info if v.name not in (output.name, source)]
        del graph.value_info[:]
        graph.value_info.extend(kept)


def _unfold(graph, mean, scale) -> None:
    """Take the standardization back out of the first Gemm and run it in fp32 ahead of it.

    Folded, ``W' = W * scale`` (per input column) and ``b' = b - W' @ mean``; a raw input column of
    areas in the thousands then shares one int8 activation scale with a column of ratios near 0.1,
    which collapses the latter to a handful of steps. Standardized inputs share a range.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    first = next(n for n in graph.node if n.op_type == "Gemm")
    if not any(a.name == "transB" and a.i == 1 for a in first.attribute):
        raise ZooError("cannot unfold the normalization: the first Gemm is not transB=1 (not a zoo export)")
    tensors = {t.name: t for t in graph.initializer}
    weight, bias = (numpy_helper.to_array(tensors[n]) for n in first.input[1:3])
    mean, scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)
    tensors[first.input[1]].CopyFrom(numpy_helper.from_array((weight / scale[None, :]).astype(np.float32),
                                                             first.input[1]))
    tensors[first.input[2]].CopyFrom(numpy_helper.from_array((bias + weight @ mean).astype(np.float32),
                                                             first.input[2]))
    graph.initializer.extend([numpy_helper.from_array(mean, "zoo.mean"), numpy_helper.from_array(scale, "zoo.scale")])
    source = first.input[0]
    first.input[0] = "zoo.standardized"
    nodes = [helper.make_node("Sub", [source, "zoo.mean"], ["zoo.centered"], name="zoo.center"),
             helper.make_node("Mul", ["zoo.centered", "zoo.scale"], ["zoo.standardized"], name="zoo.scale")]
    at = list(graph.node).index(first)
    for offset, node in enumerate(nodes):
        graph.node.insert(at + offset, node)


def _int8(fp32_path: Path, calibration, per_channel: bool, normalization=None):
    import onnx
    import onnxruntime
    from onnx import helper
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(fp32_path))
    graph = model.graph
    input_name = graph.input[0].name
    first = next(n for n in graph.node if n.op_type == "Gemm").output[0]
    # The NaN check reads an fp32 copy of the input, which the quantizer is then told to leave alone.
    keep = helper.make_node("Identity", [input_name], ["zoo.input_fp32"], name="zoo.keep_fp32")
    for node in graph.node:
        if node.op_type == "ReduceSum" and node.input[0] == first:
            node.input[0] = "zoo.input_fp32"
    graph.node.insert(0, keep)
    if normalization is not None:
        _unfold(graph, *normalization)

    class Rows(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{input_name: calibration[i:i + 256]} for i in range(0, len(calibration), 256)])

        def get_next(self):
            return next(self.batches, None)

    options = {"quant_format": "QDQ", "per_channel": per_channel, "weight_type": "int8", "activation_type": "uint8",
               "calibrate_method": "MinMax", "op_types_to_quantize": ["Gemm"], "calibration_rows": len(calibration)}
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        import logging

        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice, every call
        try:
            quantize_static(str(source), str(target), Rows(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Gemm"])
        finally:
            logging.getLogger().setLevel(quiet)
        quantized = onnx.load(str(target))
    for node in quantized.graph.node:
        if node.name == "zoo.keep_fp32":
            node.input[0] = input_name  # the quantizer rewired every reader of the input to its DequantizeLinear
    # The ONNX reference evaluator implements DequantizeLinear from opset 19; the ops here keep their meaning.
    quantized = onnx.version_converter.convert_version(quantized, max(21, _opset(quantized)))
    _short_names(quantized)
    where = "in fp32 ahead of the quantized layers" if normalization is not None else "folded into the first Gemm"
    return quantized, {"tool": "onnxruntime.quantization.quantize_static", "tool_version": onnxruntime.__version__,
                       **options, "normalization": where,
                       "nan_check": "on the fp32 input, ahead of the quantized layers"}


def _short_names(model) -> None:
    """Name every inner tensor ``t<N>``: the converters' names ("model.linear1.weight.folded_quantized_scale",
    written where each tensor is made and everywhere it is read) were 9 % of a 512-unit model's int8 file
    (0.350x the fp32 file, 0.319x without them) and most of a small model's (0.93x, 0.53x)."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        if node.name != "zoo.keep_fp32":
            node.name = ""
    del graph.value_info[:]


def _opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def finish(model, fp32_metadata: dict[str, str], name: str, precision: str):
    """The variant carries the fp32 model's zoo metadata, with its own name and weight precision."""
    import onnx

    del model.metadata_props[:]
    props = dict(fp32_metadata) | {"zoo.variant": name, "zoo.weights": precision}
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model


# -- measuring it ----------------------------------------------------------------------------------


SCORED = ["probabilities", "label"]


def measure(base: dict, got: dict, y, threshold: float | None = None) -> dict[str, Any]:
    """Accuracy on the true labels and its delta to fp32, label agreement, exact ties, max abs probability
    difference, from the fp32 model's and the variant's outputs (``SCORED``) on the same held-out rows.

    A *tie* is a row whose top probabilities are exactly equal (or exactly on the threshold) in either
    model: ArgMax's first-index rule, not the model, picked its label. Ties are counted apart and never as
    agreement, whichever label the rule happened to pick. ``threshold``: a sigmoid head's decision.
    """
    import numpy as np

    from zoo.exports.compare import ties

    decision = "argmax" if np.asarray(base["probabilities"]).reshape(len(y), -1).shape[1] > 1 else "threshold"
    tied = ties(base["probabilities"], decision, threshold, 0.0, 0.0) | \
        ties(got["probabilities"], decision, threshold, 0.0, 0.0)
    agree = (got["label"] == base["label"]) & ~tied
    accuracy, fp32_accuracy = float(np.mean(got["label"] == y)), float(np.mean(base["label"] == y))
    return {"rows": int(len(y)), "accuracy": accuracy, "fp32_accuracy": fp32_accuracy,
            "accuracy_delta_points": round(100 * (accuracy - fp32_accuracy), 4),
            "agreement_percent": round(100 * float(np.mean(agree)), 4), "ties": int(tied.sum()),
            "max_abs_probability_difference": float(np.max(np.abs(got["probabilities"] - base["probabilities"])))}


def guard(name: str, found: dict[str, Any], max_accuracy_drop: float, min_agreement: float) -> None:
    drop = -found["accuracy_delta_points"]
    if drop > max_accuracy_drop:
        raise VariantRefused(f"variant {name} refused: it loses {drop:.2f} accuracy points on {found['rows']} held-out "
                             f"rows (more than --max-accuracy-drop {max_accuracy_drop:g}); nothing written for it")
    if found["agreement_percent"] < min_agreement:
        raise VariantRefused(f"variant {name} refused: it agrees with fp32 on {found['agreement_percent']:.2f} % of "
                             f"{found['rows']} held-out labels (below --min-agreement {min_agreement:g}); nothing "
                             "written for it")


#: Runtimes left out of a variant's speed figures unless named: the ONNX reference evaluates in numpy, whose
#: fp16 matrix product has no BLAS (63 s for one fp16 variant at 65,536 rows, against 0.6 s on onnxruntime).
NOT_TIMED = {"onnx-reference": "the ONNX specification's evaluator in numpy, not a deployment runtime"}


def speeds(path: Path, runtimes: list[str] | None) -> dict[str, dict[str, float]]:
    """rows/s at batch 1 and 65,536 on each runtime that can run here (``zoo bench``'s measurement)."""
    from zoo.exports.bench import bench
    from zoo.exports.runtimes import select

    if runtimes is None:
        runtimes = [r.name for r, why_not in select(None) if why_not is None and r.name not in NOT_TIMED]
    report = bench(path, runtimes=runtimes, batch_sizes=BENCH_BATCHES, repeats=2, torch_eager=False)
    out: dict[str, dict[str, float]] = {}
    for row in report.rows:
        if row.rows_per_second is not None:
            out.setdefault(row.runtime, {})[str(row.batch_size)] = round(row.rows_per_second, 1)
    return out


# -- test data and the manifest record -------------------------------------------------------------


def test_inputs(data_sets) -> list:
    """The fp32 test inputs a variant replays: every set but the +-1e4-std rows, whose overflow in lowered
    precision each runtime handles its own way; the NaN and infinite rows stay (label -1 everywhere)."""
    import numpy as np

    inputs = []
    for _, x, _ in data_sets:
        finite_scale = np.all(np.abs(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)) < 1e3, axis=1)
        keep = finite_scale | ~np.all(np.isfinite(x), axis=1)
        if keep.any():
            inputs.append(x[keep])
    return inputs


def record(name: str, precision: str, made: dict[str, Any], found: dict[str, Any], *, file: str, sha: str,
           size: int, fp32_size: int, rules, test_data: list[str], rows_per_second, fp32_rows_per_second) -> Variant:
    return Variant(file=file, sha256=sha, precision=precision, method=made, **found,
                   size_bytes=size, size_ratio=round(size / fp32_size, 4),
                   rows_per_second=rows_per_second, fp32_rows_per_second=fp32_rows_per_second,
                   not_timed={k: v for k, v in NOT_TIMED.items() if k not in rows_per_second},
                   compare=list(rules), test_data=test_data)


def rules_for_variant(names: list[str], precision: str):
    from dataclasses import replace

    from zoo.exports.compare import rules_for

    tolerances = TOLERANCE[precision]
    return [replace(rule, atol=tolerances[rule.output][0], rtol=tolerances[rule.output][1])
            if rule.output in tolerances else rule for rule in rules_for(names, *tolerances["probabilities"])]


def table(variants: dict[str, Variant]) -> str:
    from zoo import table as render

    rows = []
    for name, v in variants.items():
        ort = v.rows_per_second.get("onnxruntime-cpu", {})
        base = v.fp32_rows_per_second.get("onnxruntime-cpu", {})
        speed = " / ".join(f"{ort[b] / base[b]:.2f}x" if b in ort and b in base and base[b] else "-"
                           for b in ("1", "65536"))
        rows.append((name, v.precision, f"{v.size_ratio:.2f}x", f"{v.accuracy:.4f}",
                     f"{v.accuracy_delta_points:+.2f}", f"{v.agreement_percent:.2f} %", render.number(v.ties, "d"),
                     f"{v.max_abs_probability_difference:.2e}", speed))
    return render.render(("variant", "weights", "size vs fp32", "accuracy", "delta (points)", "agreement", "ties",
                          "max abs prob. diff", "rows/s vs fp32 (batch 1 / 65,536, onnxruntime-cpu)"), rows)


# -- the flow --------------------------------------------------------------------------------------


@dataclass
class Built:
    records: dict[str, dict] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # one line each
    card: Any = None  # the remade report.html (zoo.exports.card.Written), when zoo variants --add remade it


def build(bundle: Path, fp32_path: Path, names: list[str], evaluation: Evaluation, data_sets, *,
          normalization=None, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
          min_agreement: float = DEFAULT_MIN_AGREEMENT, runtimes: list[str] | None = None, bench: bool = True) -> Built:
    """Make, measure, guard and test each variant under ``bundle/variants/`` (a staged bundle)."""
    import shutil

    import onnx

    from zoo.exports.bundle import sha256, write_test_data
    from zoo.exports.runtimes import open_session, run, select

    fp32 = onnx.load(str(fp32_path))
    metadata = {p.key: p.value for p in fp32.metadata_props}
    threshold = float(metadata["zoo.threshold"]) if metadata.get("zoo.decision") == "threshold" else None
    output_names, input_name = [o.name for o in fp32.graph.output], fp32.graph.input[0].name
    built = Built()
    fp32_speed = speeds(fp32_path, runtimes) if bench and names else {}
    inputs = test_inputs(data_sets)
    [(ort_cpu, _)] = select(["onnxruntime-cpu"])
    fp32_scored = run(open_session(ort_cpu, fp32_path), evaluation.X, SCORED)  # once, for every variant
    for name in dict.fromkeys(names):
        chosen = method(name)
        folder = bundle / "variants" / name
        if folder.exists():
            shutil.rmtree(folder)  # replaced: the manifest record is replaced with it
        folder.mkdir(parents=True)
        path = folder / "model.onnx"
        # int8: the folded graph first (smaller); if the guard refuses it, the normalization in fp32 ahead.
        ways = [None, normalization] if chosen.options.get("fallback") and normalization is not None else [None]
        tried, refusal = [], None
        for way in ways:
            model, made = make(name, fp32_path, evaluation.calibration, way, evaluation.calibration_source)
            onnx.save(finish(model, metadata, name, chosen.precision), str(path))
            found = measure(fp32_scored, run(open_session(ort_cpu, path), evaluation.X, SCORED), evaluation.y,
                            threshold)
            tried.append({"normalization": made.get("normalization"), "agreement_percent": found["agreement_percent"],
                          "accuracy_delta_points": found["accuracy_delta_points"]})
            try:
                guard(name, found, max_accuracy_drop, min_agreement)
                refusal = None
                break
            except VariantRefused as refused:
                refusal = refused
        if refusal is not None:
            shutil.rmtree(folder)
            built.refused.append(str(refusal) if len(tried) == 1 else
                                 f"{refusal} (tried with the normalization folded and in fp32 ahead)")
            continue
        if chosen.precision == "int8":
            made["tried"] = tried
        session = open_session(ort_cpu, path)
        references = [run(session, x, output_names) for x in inputs]
        written = write_test_data(folder, inputs, references, input_name)
        rules = rules_for_variant(output_names, chosen.precision)
        problem = _replays_fail(path, folder, written, rules, runtimes, chosen.precision)
        if problem:
            shutil.rmtree(folder)
            built.refused.append(f"variant {name} refused: {problem}; nothing written for it")
            continue
        relative = f"variants/{name}"
        built.records[name] = record(
            name, chosen.precision, made, found, file=f"{relative}/model.onnx", sha=sha256(path),
            size=path.stat().st_size, fp32_size=fp32_path.stat().st_size, rules=rules,
            test_data=[f"{relative}/{w}" for w in written],
            rows_per_second=speeds(path, runtimes) if bench else {}, fp32_rows_per_second=fp32_speed)
    if (bundle / "variants").exists() and not any((bundle / "variants").iterdir()):
        (bundle / "variants").rmdir()
    return built


def _replays_fail(path: Path, folder: Path, written: list[str], rules, runtimes, precision: str) -> str | None:
    """The variant's own test data replayed on every runtime that can run here; why one failed, or None."""
    from zoo.exports.verify import replay_variant

    for replay in replay_variant(path, folder, written, rules, runtimes, precision):
        if replay.status == "failed":
            return f"on {replay.runtime}, {replay.data or 'opening it'}: {replay.reason}"
    return None


def add(bundle: Path, names: list[str], *, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
        min_agreement: float = DEFAULT_MIN_AGREEMENT, runtimes: list[str] | None = None,
        bench: bool = True) -> Built:
    """``zoo variants DIR --add NAME``: variants added to an existing bundle, without torch.

    The bundle is copied beside itself, the variants are made in the copy and the copy is swapped in
    (:mod:`zoo.files`), so a refused variant, a crash or a kill leaves the bundle as it was.
    """
    import shutil

    from zoo import files
    from zoo.exports import card
    from zoo.exports.bundle import MANIFEST_FILE, write_manifest
    from zoo.exports.deployed import open_model
    from zoo.exports.verify import load_test_data

    require(names)
    bundle = Path(bundle)
    deployed = open_model(bundle)
    if deployed.manifest is None:
        raise ZooError(f"{bundle} is not a bundle directory: variants are added to one (zoo export writes it)")
    manifest = deployed.manifest
    evaluation = evaluations.read(bundle, manifest)
    data_sets = load_test_data(deployed)
    with files.staged_directory(bundle) as staged:
        # open_model found the tree a closed set of regular files; a link planted since is copied as a link,
        # never followed, and the copy is refused like any bundle with one.
        shutil.copytree(bundle, staged, symlinks=True, dirs_exist_ok=True)
        reading.check_tree(staged)
        normalization = (manifest.normalization["mean"], manifest.normalization["scale"])
        built = build(staged, staged / deployed.model_path.name, names, evaluation, data_sets,
                      normalization=normalization, max_accuracy_drop=max_accuracy_drop, min_agreement=min_agreement,
                      runtimes=runtimes,
                      bench=bench)
        if not built.records:
            shutil.rmtree(staged)
            return built
        manifest.variants.update(built.records)
        write_manifest(staged / MANIFEST_FILE, manifest)
        if card.available():  # the card shows the variants: remade with them, swapped in with them
            built.card = card.write(staged, shown_as=str(bundle), becomes=bundle)
        elif (staged / card.FILE).exists():
            files.notice(f"{bundle / card.FILE} does not show the new variants: it needs matplotlib to be remade "
                         f"({card.INSTALL}, then zoo report {bundle})")
        files.replace_directory(staged, bundle)
    return built
