"""The deployer's side: `zoo verify` and `zoo predict` on bundles, without torch."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

import zoo.errors
from zoo.exports.bundle import writing as bundle
from zoo.exports.runtimes import statuses

from conftest import assert_clean_error, reseal, torch_labels, tree


def test_verify_replays_every_test_data_set(zoo_cli, bundle_copy):
    bundle_copy()
    result = zoo_cli("verify", "multiclass", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"]
    for status in statuses():
        replays = [r for r in report["replays"] if r["runtime"] == status.name]
        if not status.available:
            assert [(r["status"], r["reason"]) for r in replays] == [("skipped", status.reason)]
            continue
        assert [r["data"] for r in replays] == [f"test_data_set_{n}" for n in range(4)]
        assert [r["rows"] for r in replays][:2] == [1, 7] and all(r["status"] == "passed" for r in replays)
        assert all(r["max_abs_error"] <= 1e-5 and r["label_agreement"] == 1.0 for r in replays)
        assert all(r["precision"] == "fp32" for r in replays)
    assert {"onnxruntime-cpu", "onnx-reference"} <= {r["runtime"] for r in report["replays"] if r["status"] == "passed"}
    assert [c["check"] for c in report["checks"]] == ["sha256", "onnx checker", "metadata"]
    table = zoo_cli("verify", "multiclass/model.onnx")
    assert table.exit_code == 0 and "verified: " in table.stdout and "test_data_set_3" in table.stdout


def test_test_data_sets_are_in_the_onnx_model_zoo_layout(bundle_copy):
    path = bundle_copy()
    manifest = json.loads((path / "manifest.json").read_text())
    for name in manifest["files"]["test_data"]:
        files = sorted(p.name for p in (path / name).iterdir())
        assert files == ["input_0.pb", "output_0.pb", "output_1.pb", "output_2.pb"]
        x = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / name / "input_0.pb")))
        assert x.dtype == np.float32 and x.shape[1] == 64
    edge_in = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / "test_data_set_3" / "input_0.pb")))
    edge = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / "test_data_set_3" / "output_1.pb")))
    labels = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / "test_data_set_3" / "output_2.pb")))
    finite = np.isfinite(edge_in).all(axis=1)
    assert finite.tolist() == [True] * 6 + [False, False]  # the last two rows hold a NaN and an infinity
    assert np.all(np.isfinite(edge[finite])) and np.allclose(edge[finite].sum(axis=1), 1.0, atol=1e-6)
    assert labels[~finite].tolist() == [-1, -1] and np.all(labels[finite] >= 0)


def test_flipping_one_byte_fails_on_the_checksum(zoo_cli, bundle_copy):
    path = bundle_copy()
    data = bytearray((path / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / "model.onnx").write_bytes(bytes(data))
    assert_clean_error(zoo_cli("verify", "multiclass"), "checksum mismatch: model.onnx has sha256", code=1)
    assert_clean_error(zoo_cli("predict", "multiclass", "x.csv"), "checksum mismatch")


def test_a_changed_weight_with_a_matching_checksum_fails_the_replay(zoo_cli, bundle_copy):
    path = bundle_copy()
    model = onnx.load(str(path / "model.onnx"))
    weight = next(t for t in model.graph.initializer if t.name.endswith("linear2.weight"))
    array = onnx.numpy_helper.to_array(weight).copy()
    array[0, 0] += 0.5
    weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(path / "model.onnx"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"]["model.onnx"] = bundle.sha256(path / "model.onnx")
    (path / "manifest.json").write_text(json.dumps(manifest))
    result = zoo_cli("verify", "multiclass")
    assert result.exit_code == 1 and "FAILED" in result.stdout and "NOT verified" in result.stderr


def test_a_bare_onnx_file_verifies_from_its_metadata(zoo_cli, bundle_copy, tmp_path):
    path = bundle_copy()
    shutil.copy(path / "model.onnx", tmp_path / "alone.onnx")
    result = zoo_cli("verify", "alone.onnx", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"] and report["replays"][0]["data"] == "generated (no test data)"


def write_foreign_onnx(path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "is empty, not an ONNX model"),
    (lambda p: p.write_bytes(b"this is not protobuf \xff\xfe"), "is not an ONNX model"),
    (lambda p: p.write_text("hello"), "is not an ONNX model"),
    (write_foreign_onnx, "carries no zoo metadata"),
])
def test_verify_and_predict_refuse_bad_files(zoo_cli, tmp_path, setup, fragment):
    setup(tmp_path / "m.onnx")
    assert_clean_error(zoo_cli("verify", "m.onnx"), fragment, code=1)
    (tmp_path / "x.csv").write_text("1,2,3\n")
    assert_clean_error(zoo_cli("predict", "m.onnx", "x.csv"), fragment, code=1)


def test_a_truncated_bare_model(zoo_cli, bundle_copy, tmp_path):
    path = bundle_copy()
    data = (path / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    assert_clean_error(zoo_cli("verify", "cut.onnx"), "cut.onnx is not an ONNX model", code=1)


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["files"].update(model="../../etc/passwd"), "lies outside the bundle"),
    (lambda m: m["files"].update(test_data=["../elsewhere"]), "lies outside the bundle"),
    (lambda m: m.update(format="something-else"), "is not a zoo manifest"),
])
def test_manifest_problems(zoo_cli, bundle_copy, change, fragment):
    path = bundle_copy()
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(zoo_cli("verify", "multiclass"), fragment, code=1)


def test_a_bundle_missing_its_model(zoo_cli, bundle_copy):
    (bundle_copy() / "model.onnx").unlink()
    assert_clean_error(zoo_cli("verify", "multiclass"), "model.onnx is missing (the manifest names it as the model)",
                       code=1)


def test_a_directory_that_is_not_a_bundle(zoo_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_clean_error(zoo_cli("verify", "empty"), "is a directory without manifest.json", code=1)


def test_manifest_not_json(zoo_cli, bundle_copy):
    (bundle_copy() / "manifest.json").write_text("{not json")
    assert_clean_error(zoo_cli("verify", "multiclass"), "manifest.json is not valid JSON", code=1)


def test_test_data_of_the_wrong_shape(zoo_cli, bundle_copy):
    path = bundle_copy()
    wrong = onnx.numpy_helper.from_array(np.zeros((2, 5), dtype=np.float32), "input")
    (path / "test_data_set_1" / "input_0.pb").write_bytes(wrong.SerializeToString())
    assert_clean_error(zoo_cli("verify", "multiclass"), "test_data_set_1/input_0.pb has 55 bytes, the manifest says "
                                                       "1,808: it changed after export", code=1)
    reseal(path, "test_data_set_1/input_0.pb")
    assert_clean_error(zoo_cli("verify", "multiclass"), "test_data_set_1/input_0.pb holds float32 (2, 5) but "
                                                       "the model takes float32 (batch, 64)", code=1)


# -- predict ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_predict_csv_labels_equal_torchs(zoo_cli, exported, bundle_copy, tmp_path, name):
    _, results = exported
    bundle_copy(name)
    X = results[name].split.X_test
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",", header=",".join(results[name].feature_names), comments="")
    result = zoo_cli("predict", name, "rows.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    assert header[:2] == ["label", "class_index"] and len(rows) == len(X)
    labels = np.array([int(r[1]) for r in rows])
    assert np.array_equal(labels, torch_labels(results[name], X))
    names = results[name].class_labels
    assert [r[0] for r in rows] == [names[i] for i in labels]
    if name == "binary":
        assert header[2] == f"p_{names[1]}"
    else:
        probs = np.array([[float(v) for v in r[2:]] for r in rows])
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_predict_npy_npz_stdin_jsonl_and_chunks_agree(zoo_cli, exported, bundle_copy, tmp_path):
    _, results = exported
    bundle_copy()
    X = results["multiclass"].split.X_test[:20]
    np.save(tmp_path / "rows.npy", X)
    np.savez(tmp_path / "rows.npz", X=X)
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",")
    outputs = [zoo_cli("predict", "multiclass", "rows.npy").stdout,
               zoo_cli("predict", "multiclass", "rows.npz").stdout,
               zoo_cli("predict", "multiclass", "rows.csv", "--batch-size", "7").stdout]
    from click.testing import CliRunner

    from zoo.cli import cli

    stdin = CliRunner().invoke(cli, ["predict", "multiclass", "-"], input=(tmp_path / "rows.csv").read_text())
    outputs.append(stdin.stdout)
    assert len(set(outputs)) == 1 and len(outputs[0].splitlines()) == 21
    jsonl = [json.loads(line) for line in zoo_cli("predict", "multiclass", "rows.npy", "--format", "jsonl").stdout
             .splitlines()]
    assert [j["class_index"] for j in jsonl] == torch_labels(results["multiclass"], X).tolist()
    assert set(jsonl[0]["probabilities"]) == {str(i) for i in range(10)}


def test_predict_to_a_file(zoo_cli, exported, bundle_copy, tmp_path):
    _, results = exported
    bundle_copy()
    np.save(tmp_path / "rows.npy", results["multiclass"].split.X_test[:5])
    result = zoo_cli("predict", "multiclass", "rows.npy", "-o", "out/pred.csv")
    assert result.exit_code == 0 and "wrote 5 rows to out/pred.csv" in result.stderr
    assert len((tmp_path / "out" / "pred.csv").read_text().splitlines()) == 6
    before = tree(tmp_path / "out")
    assert_clean_error(zoo_cli("predict", "multiclass", "rows.npy", "-o", "out/pred.csv"), "already exists")
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), dtype=np.float32))
    assert_clean_error(zoo_cli("predict", "multiclass", "bad.npy", "-o", "out/pred.csv", "--force"),
                       "takes rows of 64 features")
    assert tree(tmp_path / "out") == before  # the previous output intact, no temporary left


@pytest.mark.parametrize("make, fragment", [
    (lambda p: np.savetxt(p / "in.csv", np.zeros((3, 10)), delimiter=","), "line 1: 10 values, but the model takes 64"),
    (lambda p: (p / "in.csv").write_text(",".join(["1"] * 63 + ["x"]) + "\n"),
     "line 1, column 64: 'x' is not a number"),
    (lambda p: (p / "in.csv").write_text(",".join(["1"] * 64) + "\n" + ",".join(["1"] * 60) + "\n"),
     "line 2: 60 values"),
    (lambda p: (p / "in.csv").write_text(",".join(["1"] * 63 + ["nan"]) + "\n"),
     "row 1, feature 64 ('pixel_7_7') is nan"),
    (lambda p: (p / "in.csv").write_text(",".join(["1"] * 63 + ["inf"]) + "\n"),
     "row 1, feature 64 ('pixel_7_7') is inf"),
    (lambda p: (p / "in.csv").write_text(""), "in.csv: no rows"),
    (lambda p: (p / "in.csv").write_text(",".join(f"pixel_{i // 8}_{i % 8}" for i in range(64)) + "\n"),
     "in.csv: no rows"),
    (lambda p: np.save(p / "in.npy", np.array([["a"] * 64])), "features must be numbers, got dtype <U1"),
    (lambda p: np.save(p / "in.npy", np.zeros((0, 64), dtype=np.float32)), "in.npy: no rows"),
    (lambda p: np.save(p / "in.npy", np.zeros((2, 3, 64), dtype=np.float32)), "got an array of shape (2, 3, 64)"),
    (lambda p: (p / "in.npy").write_bytes(b"garbage"), "not a readable .npy file"),
    (lambda p: (np.save(p / "in.npy", np.zeros((9, 64), dtype=np.float32)),
                (p / "in.npy").write_bytes((p / "in.npy").read_bytes()[:-100])), "the file ends early"),
    (lambda p: (p / "in.txt").write_text("1\n"), "give a .parquet, .arrow/.feather, .csv, .npy or .npz file"),
])
def test_predict_bad_input(zoo_cli, bundle_copy, tmp_path, make, fragment):
    bundle_copy()
    make(tmp_path)
    source = next(p.name for p in tmp_path.iterdir() if p.name.startswith("in."))
    assert_clean_error(zoo_cli("predict", "multiclass", source, "-o", "pred.csv"), fragment)
    assert not (tmp_path / "pred.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pred.csv")]


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_predict_allow_nan_gives_no_class_to_a_row_that_is_not_finite(zoo_cli, bundle_copy, tmp_path, name):
    path = bundle_copy(name)
    width = json.loads((path / "manifest.json").read_text())["input"]["shape"][1]
    good = ",".join(["1"] * width)
    (tmp_path / "in.csv").write_text("\n".join([good, ",".join(["1"] * (width - 1) + ["nan"]),
                                                ",".join(["inf"] + ["1"] * (width - 1)), good]) + "\n")
    result = zoo_cli("predict", name, "in.csv", "--allow-nan")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows[1:3]] == [("", "-1"), ("", "-1")]  # no class, never a plausible one
    assert rows[0] == rows[3] and rows[0][1] in ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
    jsonl = [json.loads(line) for line in zoo_cli("predict", name, "in.csv", "--allow-nan", "--format",
                                                 "jsonl").stdout.splitlines()]
    assert [(j["label"], j["class_index"]) for j in jsonl[1:3]] == [(None, -1), (None, -1)]


def test_predict_npy_to_parquet_writes_the_runtimes_outputs_and_imports_no_pandas(bundle_copy, tmp_path):
    """The Parquet columns are built from the outputs' own memory, not with ``pa.array`` (which imports pandas,
    0.2 s of a million rows): a null label and class_index -1 for a row that is not finite, each probability
    column the model's, each row in its place."""
    import onnxruntime as ort
    import pyarrow.parquet as pq

    path = bundle_copy()
    x = np.random.default_rng(5).normal(0, 3, (300, 64)).astype(np.float32)
    x[7, 3], x[250, 0] = np.nan, np.inf
    np.save(tmp_path / "rows.npy", x)
    code = ("import sys; from zoo.cli import main\n"
            "sys.argv = ['zoo', 'predict', 'multiclass', 'rows.npy', '-o', 'out.parquet', '--allow-nan']\n"
            "try: main()\nexcept SystemExit as e: assert not e.code, e.code\n"
            "print('pandas' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr.strip().splitlines()[-1] == "False", done.stderr
    table = pq.read_table(tmp_path / "out.parquet")
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities, labels = sess.run(["probabilities", "label"], {"input": x})
    classes = json.loads((path / "manifest.json").read_text())["class_labels"]
    assert table.column("class_index").to_pylist() == labels.tolist() and labels[7] == labels[250] == -1
    assert table.column("label").to_pylist() == [classes[i] if i >= 0 else None for i in labels]
    for j, name in enumerate(classes):
        np.testing.assert_array_equal(table.column(f"p_{name}").to_numpy(), probabilities[:, j])


def test_the_graph_itself_labels_a_row_that_is_not_finite_minus_one(bundle_copy):
    """A deployer calling the model directly, without zoo: onnxruntime alone."""
    import onnxruntime as ort

    path = bundle_copy()
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.ones((4, 64), dtype=np.float32)
    x[1, 5], x[2, 0], x[3, 63] = np.nan, np.inf, -np.inf
    labels = sess.run(["label"], {"input": x})[0]
    assert labels[0] >= 0 and labels[1:].tolist() == [-1, -1, -1]
    manifest = json.loads((path / "manifest.json").read_text())
    assert "-1 for a row with a NaN or infinite feature" in manifest["outputs"][2]["meaning"]


def test_predict_on_a_runtime_that_cannot_run_here(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    np.save(tmp_path / "in.npy", np.zeros((1, 64), dtype=np.float32))
    reason = statuses_by_name()["onnxruntime-cuda"].reason
    if reason is None:
        pytest.skip("onnxruntime-cuda can run here")
    assert_clean_error(zoo_cli("predict", "multiclass", "in.npy", "--runtime", "onnxruntime-cuda"),
                       f"runtime onnxruntime-cuda cannot run here: {reason}", code=1)
    assert_clean_error(zoo_cli("predict", "multiclass", "in.npy", "--runtime", "onnxruntime-gpu"),
                       "unknown runtime 'onnxruntime-gpu': did you mean", code=1)


def test_predict_provider_is_a_deprecated_alias_of_runtime(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    np.save(tmp_path / "in.npy", np.random.default_rng(0).normal(size=(50, 64)).astype(np.float32))
    new = zoo_cli("predict", "multiclass", "in.npy", "--runtime", "onnxruntime-cpu")
    old = zoo_cli("predict", "multiclass", "in.npy", "--provider", "cpu")
    assert new.exit_code == old.exit_code == 0, old.output
    assert old.stdout == new.stdout
    assert old.stderr.strip() == "zoo: warning: --provider is deprecated; use --runtime onnxruntime-cpu"
    assert zoo_cli("predict", "multiclass", "in.npy", "--provider", "CPUExecutionProvider").stdout == new.stdout
    bad = zoo_cli("predict", "multiclass", "in.npy", "--provider", "tpu")
    assert bad.exit_code == 1 and "unknown provider 'tpu': use --runtime NAME" in bad.stderr
    both = zoo_cli("predict", "multiclass", "in.npy", "--provider", "cpu", "--runtime", "onnx-reference")
    assert_clean_error(both, "--provider is the deprecated name of --runtime: give only --runtime", code=2)


@pytest.mark.parametrize("runtime", ["onnx-reference", "openvino-cpu"])
def test_predict_on_every_runtime_gives_the_same_labels(zoo_cli, bundle_copy, tmp_path, runtime):
    if statuses_by_name()[runtime].reason is not None:
        pytest.skip(f"{runtime} cannot run here: {statuses_by_name()[runtime].reason}")
    bundle_copy()
    np.save(tmp_path / "in.npy", np.random.default_rng(1).integers(0, 17, (300, 64)).astype(np.float32))
    base = zoo_cli("predict", "multiclass", "in.npy")
    other = zoo_cli("predict", "multiclass", "in.npy", "--runtime", runtime)
    assert base.exit_code == other.exit_code == 0, other.output
    labels = [[line.split(",")[1] for line in r.stdout.splitlines()[1:]] for r in (base, other)]
    assert labels[0] == labels[1] and len(labels[0]) == 300


def statuses_by_name():
    return {s.name: s for s in statuses()}


# -- no torch, no scikit-learn --------------------------------------------------------------------


def test_verify_and_predict_never_import_torch_sklearn_or_pandas(python, bundle_copy, tmp_path):
    bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.random.default_rng(0).normal(size=(4, 64)), delimiter=",")
    script = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "sklearn", "onnxscript", "pandas"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        if sys.argv[1:] == ["api"]:  # the Python API, as a deployer's script uses it
            import numpy as np, pyarrow.parquet as pq, zoo
            model = zoo.load_bundle("multiclass")
            labels = model.predict(pq.read_table("rows.parquet"))
            assert labels.tolist() == model.predict(np.load("rows.npy")).tolist(), labels
            sys.exit(0)
        from zoo.cli import main
        sys.argv = ["zoo", *sys.argv[1:]]
        main()
    """)
    rows = np.random.default_rng(0).normal(size=(4, 64)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    np.savez_compressed(tmp_path / "rows.npz", X=rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({f"pixel_{i // 8}_{i % 8}": rows[:, i] for i in range(64)}), tmp_path / "rows.parquet")
    (tmp_path / "inputs").mkdir()
    shutil.copy(tmp_path / "rows.parquet", tmp_path / "inputs" / "a.parquet")
    shutil.copy(tmp_path / "rows.npy", tmp_path / "inputs" / "b.npy")
    for args in (["verify", "multiclass"], ["predict", "multiclass", "rows.csv"], ["predict", "multiclass", "rows.npy"],
                 ["predict", "multiclass", "rows.npz", "--format", "jsonl"], ["bench", "multiclass", "--repeats", "1",
                 "--batch-size", "2"], ["runtimes"], ["list"], ["api"],
                 ["predict", "multiclass", "rows.parquet", "-o", "out.parquet"],
                 ["predict", "multiclass", "rows.parquet", "-o", "out.npy"], ["predict", "multiclass", "rows.npy",
                 "-o", "out.csv"], ["predict", "multiclass", "inputs", "-o", "scored", "--format", "jsonl"]):
        proc = subprocess.run([python, "-c", script, *args], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
    proc = subprocess.run([python, "-c", script, "export", "multiclass"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 1 and "training and export need torch" in proc.stderr
    assert "pip install 'zoo-onnx[train]'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_third_party_can_rerun_the_check_from_the_manifest_alone(bundle_copy):
    """The manifest's rules, applied with onnx, onnxruntime and numpy only: none of zoo's comparison code."""
    import onnxruntime as ort

    path = bundle_copy("binary")
    manifest = json.loads((path / "manifest.json").read_text())
    sess = ort.InferenceSession(str(path / manifest["files"]["model"]), providers=["CPUExecutionProvider"])
    outputs = manifest["outputs"]
    for name in manifest["files"]["test_data"]:
        x = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / name / "input_0.pb")))
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {manifest["input"]["name"]: x})))
        for k, output in enumerate(outputs):
            want = onnx.numpy_helper.to_array(onnx.load_tensor(str(path / name / f"output_{k}.pb")))
            rule, have = output["compare"], got[output["name"]]
            if rule["kind"] == "equal-except-ties":
                assert np.array_equal(have, want)
                continue
            finite = np.isfinite(x).all(axis=1)  # "on rows whose input is finite"
            have, want = have[finite], want[finite]
            scale = np.abs(want).max(axis=1, keepdims=True) if rule["kind"] == "close-to-row-scale" else np.abs(want)
            assert np.all(np.abs(have - want) <= rule["atol"] + rule["rtol"] * scale), (name, output["name"])


def test_a_bundle_of_the_first_manifest_format_still_verifies(zoo_cli, bundle_copy):
    path = bundle_copy()
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format"] = "zoo-bundle/1"
    for output in manifest["outputs"]:
        del output["compare"]
    del manifest["precision"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    result = zoo_cli("verify", "multiclass", "--runtime", "onnxruntime-cpu", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verified"]


def test_predict_header_is_valid_csv_for_any_class_label(zoo_cli, tmp_path):
    import csv

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (60, 3))]).astype(np.float32)
    labels = np.array(["plain", 'benign, "x"'])
    np.savez(tmp_path / "d.npz", X=X, y=np.repeat([0, 1], 60), class_labels=labels)
    assert zoo_cli("export", "binary", "--data", "d.npz", "--epochs", "3", "-o", "b",
                   "--runtime", "onnxruntime-cpu").exit_code == 0
    np.save(tmp_path / "rows.npy", X[[0, 119]])
    out = zoo_cli("predict", "b", "rows.npy")
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(out.stdout.splitlines()))
    assert rows[0] == ["label", "class_index", 'p_benign, "x"']
    assert [r[0] for r in rows[1:]] == ["plain", 'benign, "x"']


def test_predict_reads_a_csv_with_a_byte_order_mark(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    rows = np.random.default_rng(0).integers(0, 17, (3, 64))
    text = "\n".join(",".join(map(str, r)) for r in rows) + "\n"  # no header: the mark sits on a number
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "plain.csv").write_text(text)
    excel, plain = zoo_cli("predict", "multiclass", "excel.csv"), zoo_cli("predict", "multiclass", "plain.csv")
    assert excel.exit_code == plain.exit_code == 0, excel.output
    assert excel.stdout == plain.stdout and len(excel.stdout.splitlines()) == 4
    piped = subprocess.run([sys.executable, "-m", "zoo", "predict", "multiclass", "-"], input=b"\xef\xbb\xbf" +
                           text.encode(), capture_output=True, cwd=tmp_path, timeout=120)
    assert piped.returncode == 0 and piped.stdout.decode() == plain.stdout


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_input_is_streamed_a_chunk_at_a_time(save, tmp_path, monkeypatch):
    from zoo.exports.deploy.scoring import read_rows
    from zoo.tables.readers import Columns

    def read_chunks(source, width, chunk_rows):
        return [rows.X for rows in read_rows(source, Columns(width), chunk_rows)]

    X = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    save(tmp_path / "rows.npz", X=X, other=np.zeros(3))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load reads a whole .npz member"))
    chunks = list(read_chunks(str(tmp_path / "rows.npz"), 64, chunk_rows=300))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert np.array_equal(np.concatenate(chunks), X)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "rows.npz").read_bytes()[:-4000])
    with pytest.raises(zoo.errors.ZooError, match="cut.npz: not a readable .npz file"):
        list(read_chunks(str(tmp_path / "cut.npz"), 64, chunk_rows=300))
