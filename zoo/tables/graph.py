"""The preprocessing as ONNX nodes in front of the model, so that ``model.onnx`` takes the table's own columns.

One input per feature column, named like the column, shape ``(batch, 1)``:

- a number is float32; ``IsNaN`` and ``Where`` put the training median in a
  gap (standard ops: OpenVINO runs them too);
- a category is a string; ``ai.onnx.ml.LabelEncoder`` maps it to its level
  (the missing level for ``''`` when the training rows had gaps), anything else
  to -1, and ``Equal`` against the level numbers with a ``Cast`` makes the
  one-hot block, all zeros for -1.

``Concat`` joins the blocks into the matrix the model was trained on, which
then runs as exported (its standardization, head and decision included).
Measured: OpenVINO 2026.4's ONNX frontend has no conversion rule for
``LabelEncoder``, so a model with a categorical column is not for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import ExportError

if TYPE_CHECKING:
    import onnx

    from zoo.tables.features import Features

ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 2  # LabelEncoder-2: keys_strings -> values_int64s
PREFIX = "zoo.pre/"


def compose(core: onnx.ModelProto, features: Features) -> onnx.ModelProto:
    """``core`` (one float32 input of ``features.width`` columns) behind the preprocessing of ``features``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(core)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    [core_input] = [i for i in graph.input if i.name not in initializers]
    # The core's input is renamed below: a column may take its name ("input").
    taken = ({n for node in graph.node for n in (*node.input, *node.output)} | initializers |
             {o.name for o in graph.output}) - {core_input.name}
    clash = [f.name for f in features.columns if f.name in taken or f.name.startswith(PREFIX)]
    if clash:
        outputs = ", ".join(o.name for o in graph.output)
        raise ExportError(f"feature column {clash[0]!r} has the name of a tensor in the model ({outputs} among "
                          "them); rename the column")
    encoded = PREFIX + "encoded"
    nodes, inputs, inits, blocks = [], [], [], []
    for n, feature in enumerate(features.columns):
        name, tag = feature.name, f"{PREFIX}{n}/"
        if feature.kind == "numeric":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 1]))
            inits.append(numpy_helper.from_array(np.array([[feature.median]], np.float32), tag + "median"))
            nodes += [helper.make_node("IsNaN", [name], [tag + "gap"], name=tag + "IsNaN"),
                      helper.make_node("Where", [tag + "gap", tag + "median", name], [tag + "out"], name=tag + "Where")]
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch", 1]))
            keys = list(feature.categories) + ([""] if feature.missing_level else [])
            inits.append(numpy_helper.from_array(np.arange(len(keys), dtype=np.int64).reshape(1, -1), tag + "levels"))
            nodes += [helper.make_node("LabelEncoder", [name], [tag + "level"], name=tag + "LabelEncoder",
                                       domain=ML_DOMAIN, keys_strings=keys, values_int64s=list(range(len(keys))),
                                       default_int64=-1),
                      helper.make_node("Equal", [tag + "level", tag + "levels"], [tag + "hot"], name=tag + "Equal"),
                      helper.make_node("Cast", [tag + "hot"], [tag + "out"], name=tag + "Cast", to=TensorProto.FLOAT)]
        blocks.append(tag + "out")
    nodes.append(helper.make_node("Concat", blocks, [encoded], name=PREFIX + "Concat", axis=1))
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == core_input.name:
                node.input[i] = encoded
    model_nodes = nodes + [onnx.NodeProto.FromString(node.SerializeToString()) for node in graph.node]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.node[:]
    graph.node.extend(model_nodes)
    graph.initializer.extend(inits)
    if features.strings and not any(o.domain == ML_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    return model


def preprocessing_nodes(model: onnx.ModelProto) -> list[str]:
    """The names of the preprocessing's nodes: what a lowered variant must leave exact."""
    return [node.name for node in model.graph.node if node.name.startswith(PREFIX)]


def core_of(model: onnx.ModelProto, width: int) -> onnx.ModelProto:
    """The model behind the preprocessing: its nodes alone, taking the encoded matrix as one ``input`` of ``width``
    columns (what a variant lowers; :func:`compose` puts the exact preprocessing back in front)."""
    import onnx
    from onnx import TensorProto, helper

    core = onnx.ModelProto()
    core.CopyFrom(model)
    graph = core.graph
    kept = [node for node in graph.node if not node.name.startswith(PREFIX)]
    for node in kept:
        for i, name in enumerate(node.input):
            if name == PREFIX + "encoded":
                node.input[i] = "input"
    nodes = [onnx.NodeProto.FromString(node.SerializeToString()) for node in kept]
    initializers = [onnx.TensorProto.FromString(t.SerializeToString()) for t in graph.initializer
                    if not t.name.startswith(PREFIX)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width]))
    return core
