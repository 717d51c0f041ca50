"""Lowering a bundle's fp32 graph: fp16 (onnxconverter-common) and int8 (onnxruntime's static quantization)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError


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


def lower(name: str, fp32_path: Path, calibration, normalization,
          calibration_source: str) -> tuple[Any, dict[str, Any]]:
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
    import tempfile

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

