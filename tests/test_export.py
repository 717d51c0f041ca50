"""Export + parity for every registered model, both exporters, and the bundle's atomic swap."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import zoo
from zoo.exports.bundle import writing as bundle
from zoo.exports.export.exporter import output_names
from zoo.exports.export.pipeline import ParityFailed, export_bundle
from zoo.training import TrainConfig, fit

from conftest import tree

BRIEF = TrainConfig(epochs=2, device="cpu")


@pytest.fixture(scope="module")
def trained():
    """One brief training per registered model, shared by the tests of this module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = fit(name, config=BRIEF)
        return cache[name]

    return get


@pytest.mark.parametrize("name", zoo.list_models())
def test_round_trip_for_every_registered_model(trained, tmp_path, name):
    result = trained(name)
    outcome = export_bundle(result, tmp_path / "bundle")
    assert outcome.verified
    cpu = outcome.parity.cells[0]
    assert cpu.runtime == "onnxruntime-cpu" and cpu.status == "passed"
    assert (cpu.device, cpu.precision) == ("cpu", "fp32")
    assert cpu.batches == [1, 7, len(result.split.y_test)] and cpu.label_agreement == 1.0
    assert cpu.accuracy == result.metrics["holdout_accuracy"]
    ran = {c.runtime for c in outcome.parity.cells if c.status == "passed"}
    assert {"onnxruntime-cpu", "onnx-reference"} <= ran
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "checkpoint.pt", "evaluation.npz", "manifest.json", "model.onnx", "report.html",
        "test_data_set_0", "test_data_set_1", "test_data_set_2", "test_data_set_3"]
    with np.load(tmp_path / "bundle" / "evaluation.npz") as kept:  # the rows variants are measured on
        assert np.array_equal(kept["X"], result.split.X_test) and np.array_equal(kept["y"], result.split.y_test)
        assert len(kept["calibration"]) == min(1000, len(result.split.X_train))

    # Independently of zoo's parity, oracle and runtime code: onnxruntime against the trained module,
    # with the standardization, head and decision written out here, and against the true labels.
    sess = ort.InferenceSession(str(tmp_path / "bundle" / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert names == list(output_names(result.policy))
    X = result.split.X_test.astype(np.float32)
    got = dict(zip(names, sess.run(None, {"input": X})))
    want = module_outputs(result, X)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5, rtol=0)
    assert got["label"].dtype == np.int64 and got["label"].shape == (len(X),)
    assert np.array_equal(got["label"], want["label"])
    assert (got["label"] == result.split.y_test).mean() == result.metrics["holdout_accuracy"]


def module_outputs(result, X):
    """Probabilities and labels of the trained module, standardization, head and decision written out here."""
    z = torch.from_numpy(((X.astype(np.float64) - result.split.mean) * result.split.scale).astype(np.float32))
    with torch.inference_mode():
        out = result.module(z).double().numpy()
    if result.policy.head == "softmax":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return {"probabilities": p, "label": p.argmax(axis=1)}
    p = out if result.policy.expects == "probabilities" else 1 / (1 + np.exp(-out))
    return {"probabilities": p, "label": (p[:, 0] >= 0.5).astype(np.int64)}


def test_graph_metadata_and_dynamic_batch(trained, tmp_path):
    result = trained("multiclass")
    export_bundle(result, tmp_path / "b")
    model = onnx.load(str(tmp_path / "b" / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["zoo.model"] == "multiclass" and meta["zoo.policy"] == "softmax-cross-entropy"
    assert meta["zoo.num_classes"] == "10" and json.loads(meta["zoo.class_labels"]) == [str(i) for i in range(10)]
    assert meta["zoo.input_size"] == "64" and meta["zoo.dataset"] == "digits" and meta["zoo.seed"] == "0"
    assert "zoo.threshold" not in meta  # an argmax model has no threshold (the manifest says null)
    assert float(meta["zoo.holdout_accuracy"]) == pytest.approx(result.metrics["holdout_accuracy"], abs=1e-6)
    assert {"zoo.version", "zoo.opset", "torch.version", "onnx.version", "zoo.exporter"} <= set(meta)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ops = [n.op_type for n in model.graph.node]
    assert "Softmax" in ops and "ArgMax" in ops and ops.count("Gemm") == 2
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["verified"] is True and manifest["parity"]["passed"] is True
    assert manifest["policy"]["head"] == "softmax"
    assert [o["name"] for o in manifest["outputs"]] == ["logits", "probabilities", "label"]
    digits = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]  # scikit-learn's names
    assert manifest["input"] == {"name": "input", "shape": ["batch", 64], "dtype": "float32",
                                 "meaning": manifest["input"]["meaning"], "feature_names": digits}
    assert json.loads(meta["zoo.feature_names"]) == digits
    assert manifest["class_labels"] == [str(i) for i in range(10)] and manifest["threshold"] is None
    assert manifest["sha256"]["model.onnx"] == bundle.sha256(tmp_path / "b" / "model.onnx")
    assert len(manifest["normalization"]["mean"]) == 64 and manifest["normalization"]["baked_in"]
    assert manifest["training"]["data"] == "digits" and manifest["training"]["seed"] == 0
    assert {"zoo", "onnx", "onnxruntime", "torch", "opset", "exporter"} <= set(manifest["versions"])


def test_a_threshold_model_carries_its_threshold(trained, tmp_path):
    export_bundle(trained("binary"), tmp_path / "b", runtimes=["onnxruntime-cpu"])
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "b" / "model.onnx")).metadata_props}
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert meta["zoo.threshold"] == "0.5" and manifest["threshold"] == 0.5


def test_dynamo_exporter(trained, tmp_path):
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    outcome = export_bundle(trained("multiclass"), tmp_path / "d", exporter="dynamo")
    assert outcome.verified and outcome.report["versions"]["exporter"] == "dynamo"


def test_force_replaces_a_bundle_only_once_the_new_one_is_verified(trained, tmp_path):
    target = tmp_path / "bundle"
    export_bundle(trained("binary"), target)
    before = tree(target)
    with pytest.raises(zoo.errors.OutputPathError, match="already exists: pass --force"):
        export_bundle(trained("multiclass"), target)
    with pytest.raises(ParityFailed, match="nothing was written"):
        export_bundle(trained("multiclass"), target, force=True, atol=0.0, rtol=0.0)
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging left behind
    export_bundle(trained("multiclass"), target, force=True)
    assert json.loads((target / "manifest.json").read_text())["model"]["name"] == "multiclass"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_parity_failure_is_reported_per_cell(trained, tmp_path):
    with pytest.raises(ParityFailed) as info:
        export_bundle(trained("multiclass"), tmp_path / "x", atol=0.0, rtol=0.0)
    report = info.value.outcome.parity
    assert not report.passed and report.cells[0].status == "failed"
    assert "probabilities differ" in report.cells[0].reason
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_an_exporter_failure_leaves_nothing(trained, tmp_path):
    with pytest.raises(zoo.errors.ExportError, match="exporter failed"):
        export_bundle(trained("multiclass"), tmp_path / "x", opset=99)
    assert list(tmp_path.iterdir()) == []


def test_check_target(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(zoo.errors.OutputPathError, match="is a file, not a directory"):
        bundle.check_target(tmp_path / "file" / "sub", force=True)
    with pytest.raises(zoo.errors.OutputPathError, match="exists and is not a directory"):
        bundle.check_target(tmp_path / "file", force=True)
    bundle.check_target(tmp_path / "new" / "deeper", force=False)


def test_standardization_is_folded_into_the_first_gemm(trained, tmp_path):
    export_bundle(trained("multiclass"), tmp_path / "b")
    model = onnx.load(str(tmp_path / "b" / "model.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "Sub" not in ops and "Mul" not in ops and ops.count("Gemm") == 2
    first = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert first.input[0] == "input"  # raw features straight into the Gemm
    assert [n.op_type for n in model.graph.node if "input" in n.input] == ["Gemm"]  # one pass over the input
    check = next(n for n in model.graph.node if n.op_type == "ReduceSum" and n.input[0] == first.output[0])
    assert check  # the label's NaN/Inf check reads the first Gemm's few columns, not the input
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["zoo.standardization"] == "folded into the first Gemm"


def test_folding_leaves_other_graphs_alone():
    from onnx import TensorProto, helper, numpy_helper

    from zoo.exports.export.optimize import fold_standardization

    inits = [numpy_helper.from_array(np.zeros(3, np.float32), "mean"),
             numpy_helper.from_array(np.ones(3, np.float32), "scale")]
    nodes = [helper.make_node("Sub", ["input", "mean"], ["s"]), helper.make_node("Mul", ["s", "scale"], ["m"]),
             helper.make_node("Relu", ["m"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    model = helper.make_model(graph)
    assert fold_standardization(model) is False
    assert [n.op_type for n in model.graph.node] == ["Sub", "Mul", "Relu"]


# -- the oracle: a broken export wrapper must never export a bundle marked verified -------------------


def broken_wrapper(how):
    """``make_wrapper`` broken one way, as a bug in the export code would break it."""

    def make(module, policy, mean, scale):
        class Broken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = module
                swap = how == "normalization swapped"
                self.register_buffer("mean", torch.as_tensor(scale if swap else mean, dtype=torch.float32))
                self.register_buffer("scale", torch.as_tensor(mean if swap else scale, dtype=torch.float32))

            def forward(self, x):
                out = self.model((x - self.mean) * self.scale)
                p = policy.probabilities(out)
                if how == "head dropped":
                    p = out
                elif how == "head doubled":
                    p = policy.probabilities(p)
                label = (p[:, 0] >= 0.99).to(torch.int64) if how == "threshold changed" else policy.decide(p)
                return (out, p, label) if policy.expects == "logits" else (p, label)

        return Broken().eval()

    return make


@pytest.mark.parametrize("name, how", [
    ("multiclass", "normalization swapped"), ("binary", "normalization swapped"),
    ("multiclass", "head dropped"), ("binary", "head dropped"),
    ("multiclass", "head doubled"), ("binary", "head doubled"),
    ("binary", "threshold changed"),
])
def test_a_broken_export_wrapper_fails_the_export(zoo_cli, tmp_path, monkeypatch, name, how):
    monkeypatch.setattr("zoo.exports.export.exporter.make_wrapper", broken_wrapper(how))
    result = zoo_cli("export", name, "--epochs", "2", "-o", "b")
    assert result.exit_code == 1, result.output
    assert "parity failed (onnxruntime-cpu: " in result.stderr and "nothing was written at b" in result.stderr
    assert "FAILED" in result.stdout and "PASSED" not in result.stdout  # every runtime caught it
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no bundle, no staging directory


def test_the_claimed_accuracy_is_measured_on_the_written_file(trained, tmp_path):
    result = trained("binary")
    outcome = export_bundle(result, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    claimed = manifest["training"]["metrics"]["holdout_accuracy"]
    sess = ort.InferenceSession(str(tmp_path / "b" / "model.onnx"), providers=["CPUExecutionProvider"])
    labels = sess.run(["label"], {"input": result.split.X_test.astype(np.float32)})[0]
    assert claimed == (labels == result.split.y_test).mean() == outcome.parity.cells[0].accuracy
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "b" / "model.onnx")).metadata_props}
    assert float(meta["zoo.holdout_accuracy"]) == pytest.approx(claimed, abs=1e-6)
    assert manifest["parity"]["trainer_accuracy"] == claimed


def test_a_runtime_named_for_export_must_be_able_to_run(trained, tmp_path):
    with pytest.raises(zoo.errors.UnknownNameError, match="unknown runtime 'onnxruntime'"):
        export_bundle(trained("binary"), tmp_path / "b", runtimes=["onnxruntime"])
    outcome = export_bundle(trained("binary"), tmp_path / "b", runtimes=["onnx-reference"])
    assert [(c.runtime, c.status) for c in outcome.parity.cells] == [("onnx-reference", "passed")]


def test_every_output_records_its_comparison_rule(trained, tmp_path):
    export_bundle(trained("multiclass"), tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["format"] == "zoo-bundle/2" and manifest["precision"] == "fp32"
    rules = {o["name"]: o["compare"] for o in manifest["outputs"]}
    assert rules["probabilities"]["kind"] == "close" and rules["probabilities"]["atol"] == 1e-5
    assert rules["logits"]["kind"] == "close-to-row-scale" and rules["label"]["kind"] == "equal-except-ties"
    assert all(r["formula"] for r in rules.values())


def test_an_accuracy_the_file_does_not_score_is_refused(trained, tmp_path):
    """The accuracy a bundle claims must be what its file scores on the true labels."""
    import dataclasses

    result = trained("binary")
    claimed = dataclasses.replace(result, metrics={**result.metrics,
                                                   "holdout_accuracy": result.metrics["holdout_accuracy"] - 0.05})
    with pytest.raises(ParityFailed, match=r"accuracy on the true labels is 0\.\d+ from the file, 0\.\d+ from the "
                                           r"trainer\); nothing was written"):
        export_bundle(claimed, tmp_path / "b", runtimes=["onnxruntime-cpu"])
    assert list(tmp_path.iterdir()) == []
