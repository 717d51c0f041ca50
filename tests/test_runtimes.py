"""Runtimes as plugins: the built-ins, a third party's runtime installed as a distribution, precision, bench."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.exports.export.pipeline import export_bundle
from zoo.exports.runtimes import statuses
from zoo.training import TrainConfig, fit

from conftest import assert_clean_error
from plugin_kit import LOWERING_RUNTIMES, MISBEHAVING_RUNTIMES, RUNTIME, UNAVAILABLE_RUNTIME, make_dist

ROOT = Path(__file__).resolve().parents[1]
AVAILABLE = {s.name: s for s in statuses()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("runtimes") / "multiclass"
    export_bundle(fit("multiclass", config=TrainConfig(epochs=3, device="cpu")), path)
    return path


def zoo(*args, path_entries=(), cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path_entries))}
    return subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def test_runtimes_json_lists_the_four_built_ins(zoo_cli):
    result = zoo_cli("runtimes", "--json")
    assert result.exit_code == 0, result.output
    found = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"onnxruntime-cpu", "onnxruntime-cuda", "onnx-reference", "openvino-cpu"} <= set(found)
    for row in found.values():
        assert set(row) >= {"name", "available", "reason", "version"}
        assert row["available"] == (row["reason"] is None)
    assert found["onnxruntime-cpu"]["available"] and found["onnx-reference"]["available"]
    assert found["onnxruntime-cpu"]["version"] == __import__("onnxruntime").__version__
    table = zoo_cli("runtimes")
    assert table.exit_code == 0 and "onnxruntime-cuda" in table.stdout


def test_no_execution_provider_is_named_outside_the_runtime_modules():
    allowed = {ROOT / "exports" / "runtimes" / "onnxruntime.py"}
    offenders = [str(p.relative_to(ROOT)) for room in ("zoo", "exports", "plugins") for p in (ROOT / room).rglob("*.py")
                 if p not in allowed and re.search(r"ExecutionProvider", p.read_text())]
    assert offenders == []


@pytest.mark.slow  # 10 s: export, verify, predict and bench on a runtime from a plugin
def test_a_third_party_runtime_works_everywhere(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-ort-one-thread", "zoo_ort_one_thread", RUNTIME)
    listed = zoo("runtimes", "--json", path_entries=[site])
    assert listed.returncode == 0, listed.stderr
    mine = next(r for r in json.loads(listed.stdout) if r["name"] == "ort-one-thread")
    assert mine["available"] and mine["registered_by"].startswith("plugin 'zoo_ort_one_thread' from zoo-ort-one-thread")
    verified = zoo("verify", bundle, "--runtime", "ort-one-thread", "--json", path_entries=[site])
    assert verified.returncode == 0, verified.stderr
    replays = json.loads(verified.stdout)["replays"]
    assert {r["runtime"] for r in replays} == {"ort-one-thread"} and len(replays) == 4
    assert all(r["status"] == "passed" and r["precision"] == "fp32" for r in replays)
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32))
    mine_rows = zoo("predict", bundle, tmp_path / "rows.npy", "--runtime", "ort-one-thread", path_entries=[site])
    base_rows = zoo("predict", bundle, tmp_path / "rows.npy", path_entries=[site])
    assert mine_rows.returncode == 0 and mine_rows.stdout.splitlines()[0] == base_rows.stdout.splitlines()[0]
    labels = [[line.split(",")[0] for line in r.stdout.splitlines()[1:]] for r in (mine_rows, base_rows)]
    assert labels[0] == labels[1]
    exported = zoo("export", "binary", "--epochs", "2", "-o", tmp_path / "b", "--runtime", "ort-one-thread",
                   "--json", path_entries=[site])
    assert exported.returncode == 0, exported.stderr
    assert [c["runtime"] for c in json.loads(exported.stdout)["parity"]["cells"]] == ["ort-one-thread"]
    benched = zoo("bench", bundle, "--runtime", "ort-one-thread", "--batch-size", "4", "--repeats", "1",
                  "--no-torch", "--json", path_entries=[site])
    assert benched.returncode == 0, benched.stderr
    assert [r["runtime"] for r in json.loads(benched.stdout)["rows"]] == ["ort-one-thread"]
    checked = zoo("check-plugin", "zoo-ort-one-thread", path_entries=[site])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 passed, 0 failed" in checked.stdout and "ort-one-thread" in checked.stdout


def test_a_runtime_that_lowers_precision_fails_verification(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-half", "zoo_half", LOWERING_RUNTIMES)
    honest = zoo("verify", bundle, "--runtime", "half-honest", "--json", path_entries=[site])
    assert honest.returncode == 1
    [replay] = json.loads(honest.stdout)["replays"]
    assert replay["status"] == "failed" and replay["precision"] == "fp16"
    assert "ran at fp16, but the bundle claims fp32" in replay["reason"]
    # One that hides it is caught by the numbers.
    dishonest = zoo("verify", bundle, "--runtime", "half-dishonest", "--json", path_entries=[site])
    assert dishonest.returncode == 1
    replays = json.loads(dishonest.stdout)["replays"]
    assert any(r["status"] == "failed" and "probabilities differ" in r["reason"] for r in replays)
    exported = zoo("export", "multiclass", "--epochs", "2", "-o", tmp_path / "m", "--runtime", "half-honest",
                   path_entries=[site])
    assert exported.returncode == 1 and "ran at fp16" in exported.stderr
    assert not (tmp_path / "m").exists()
    checked = zoo("check-plugin", "zoo-half", path_entries=[site])
    assert checked.returncode == 1
    assert "skipped: no NPU found" in checked.stdout and "0 passed, 4 failed, 4 skipped" in checked.stdout


def test_unavailable_runtimes_are_skipped_by_default_and_refused_by_name(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-half", "zoo_half", LOWERING_RUNTIMES)
    listed = {r["name"]: r for r in json.loads(zoo("runtimes", "--json", path_entries=[site]).stdout)}
    assert listed["needs-hardware"]["reason"] == "no NPU found"
    assert listed["broken-probe"]["reason"] == "its availability probe failed: OSError: driver crashed"
    named = zoo("verify", bundle, "--runtime", "needs-hardware", path_entries=[site])
    assert named.returncode == 1 and named.stderr.strip() == (
        "Error: runtime needs-hardware cannot run here: no NPU found; it needs zoo-needs-hardware "
        "(zoo runtimes lists what can)")


def test_openvino_is_imported_without_its_usage_report(bundle, tmp_path):
    """``import openvino`` posts a usage event (from a forked copy of the process, waited for up to 3 s at exit)
    and counts itself in ~/intel unless the user opted out. zoo reaches no network: a proxy that every HTTP(S)
    request would go through is never called, ~/intel is never written, and OpenVINO stays whole."""
    if not AVAILABLE["openvino-cpu"].available:
        pytest.skip(f"openvino-cpu cannot run here: {AVAILABLE['openvino-cpu'].reason}")
    import socket

    proxy = socket.create_server(("127.0.0.1", 0))
    address = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    home = tmp_path / "home"
    home.mkdir()
    # OpenVINO stays quiet under CI=true (and two other CI markers): the test must not pass because of them.
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"CI", "TF_BUILD", "JENKINS_URL", "NO_PROXY"}}
    env.update(HOME=str(home), https_proxy=address, HTTPS_PROXY=address, http_proxy=address, HTTP_PROXY=address)
    code = ("import sys\n"
            "from zoo.exports.runtimes.openvino import OpenVINOCPU\n"
            "session = OpenVINOCPU().open(sys.argv[1])\n"
            "import openvino, openvino_telemetry\n"
            "print(session.precision, callable(openvino.convert_model), openvino_telemetry.__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(bundle / "model.onnx")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fp32", "True", "openvino_telemetry"]
    proxy.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing is waiting to be accepted: no request was ever made
        proxy.accept()
    proxy.close()
    assert not (home / "intel").exists()


def test_openvino_runs_at_the_precision_the_bundle_claims(bundle):
    if not AVAILABLE["openvino-cpu"].available:
        pytest.skip(f"openvino-cpu cannot run here: {AVAILABLE['openvino-cpu'].reason}")
    from zoo.exports.deploy.verify import verify
    from zoo.exports.runtimes import open_session, precision_problem, run
    from zoo.exports.runtimes.openvino import OpenVINOCPU

    forced = open_session(OpenVINOCPU(), bundle / "model.onnx")
    assert forced.precision == "fp32"
    report = verify(bundle, runtimes=["openvino-cpu"])
    assert report.verified and all(r.precision == "fp32" for r in report.replays)
    # OpenVINO's own default: bf16 on CPUs with AMX / AVX512-BF16. Whatever it picks, it is reported,
    # and anything but fp32 must fail.
    default = open_session(OpenVINOCPU(precision=None), bundle / "model.onnx")
    x = np.random.default_rng(0).integers(0, 17, (4096, 64)).astype(np.float32)
    want = run(forced, x)["probabilities"]
    got = run(default, x)["probabilities"]
    if default.precision == "fp32":
        np.testing.assert_allclose(got, want, atol=1e-5)
    else:
        assert default.precision in ("bf16", "fp16") and np.abs(got - want).max() > 1e-4
        assert f"ran at {default.precision}, but the bundle claims fp32" in precision_problem(default, "fp32")


def test_bench_json(zoo_cli, bundle):
    result = zoo_cli("bench", str(bundle), "--batch-size", "1", "--batch-size", "256", "--repeats", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = report["rows"]
    keys = {"runtime", "batch_size", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "rows_per_second"}
    assert rows and all(keys <= set(r) for r in rows)
    ran = {s for s, v in AVAILABLE.items() if v.available} | {"torch-eager"}
    assert {r["runtime"] for r in rows} == ran and {r["batch_size"] for r in rows} == {1, 256}
    for r in rows:
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p90"] <= r["latency_ms_p99"]
        assert r["rows_per_second"] == pytest.approx(r["batch_size"] / (r["latency_ms_p50"] / 1e3))
    assert report["baseline"] == "onnxruntime-cpu"
    assert all(r["relative"] == 1.0 for r in rows if r["runtime"] == "onnxruntime-cpu")
    table = zoo_cli("bench", str(bundle), "--runtime", "onnx-reference", "--batch-size", "8", "--repeats", "1",
                    "--no-torch")
    assert table.exit_code == 0 and "onnx-reference" in table.stdout and "p99 ms" in table.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--runtime", "nope"], "unknown runtime 'nope'"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
])
def test_bench_bad_input(zoo_cli, bundle, args, fragment):
    assert_clean_error(zoo_cli("bench", str(bundle), *args), fragment)


def test_check_plugin_fails_when_nothing_could_be_checked(tmp_path):
    site = make_dist(tmp_path / "site", "zoo-npu", "zoo_npu", UNAVAILABLE_RUNTIME)
    checked = zoo("check-plugin", "zoo-npu", path_entries=[site])
    assert checked.returncode == 1
    assert "0 passed, 0 failed, 2 skipped" in checked.stdout
    assert checked.stderr.strip().splitlines()[-1].startswith("Error: nothing could be checked here: every case was "
                                                             "skipped")


def _identity_model(path, inputs):
    """A graph whose outputs are its inputs, ``(name, onnx type)`` each: ``y_NAME`` (``Identity``) and, for a
    number, ``n_NAME`` (its first column cast to int64, 1-D)."""
    import onnx
    from onnx import TensorProto, helper

    nodes, graph_inputs, outputs = [], [], []
    for name, kind, width in inputs:
        graph_inputs.append(helper.make_tensor_value_info(name, kind, ["batch", width]))
        nodes.append(helper.make_node("Identity", [name], [f"y_{name}"]))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", kind, ["batch", width]))
        if kind != TensorProto.STRING:
            nodes += [helper.make_node("Gather", [name, "zero"], [f"c_{name}"], axis=1),
                      helper.make_node("Cast", [f"c_{name}"], [f"n_{name}"], to=TensorProto.INT64)]
            outputs.append(helper.make_tensor_value_info(f"n_{name}", TensorProto.INT64, ["batch"]))
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    graph = helper.make_graph(nodes, "id", graph_inputs, outputs, initializer=[zero])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_sliced_onnxruntime_runs_write_each_slice_into_its_own_rows(tmp_path, monkeypatch):
    """A batch past the bound of one call runs a slice at a time, each slice's outputs written in place: every row
    comes back where it was, for every output asked for and its dtype, from a C- or Fortran-ordered input."""
    from onnx import TensorProto

    from zoo.exports.runtimes import onnxruntime as module

    monkeypatch.setattr(module, "SLICE_BYTES", 1 << 16)  # slices of 256 rows at 64 features
    session = module.OnnxRuntimeCPU().open(_identity_model(tmp_path / "id.onnx", [("input", TensorProto.FLOAT, 64)]))
    x = np.arange((2 * module.slice_rows(64) + 5) * 64, dtype=np.float32).reshape(-1, 64)
    for rows in (x, np.asfortranarray(x)):
        got = session.run(rows)
        assert set(got) == {"y_input", "n_input"} and got["n_input"].dtype == np.int64
        np.testing.assert_array_equal(got["y_input"], x)
        np.testing.assert_array_equal(got["n_input"], x[:, 0].astype(np.int64))
    assert list(session.run(x, ["n_input"])) == ["n_input"]
    np.testing.assert_array_equal(session.runner(x, ["y_input"])()["y_input"], x)
    np.testing.assert_array_equal(session.run(x[:7])["y_input"], x[:7])


def test_sliced_runs_of_a_table_with_strings_keep_row_order(tmp_path, monkeypatch):
    """String inputs cannot be bound in place: such a batch runs in slices whose outputs are concatenated; a table
    of numbers alone is bound like a matrix."""
    from onnx import TensorProto

    from zoo.exports.runtimes import onnxruntime as module
    from zoo.tables import Frame

    monkeypatch.setattr(module, "SLICE_BYTES", 1024)  # slices of 256 rows
    model = _identity_model(tmp_path / "t.onnx", [("size", TensorProto.FLOAT, 1), ("colour", TensorProto.STRING, 1)])
    session = module.OnnxRuntimeCPU().open(model)
    size = np.arange(600, dtype=np.float32).reshape(-1, 1)
    colour = np.array([[f"c{i}"] for i in range(600)], dtype=object)
    frame = Frame({"size": size, "colour": colour})
    got = session.run(frame)
    np.testing.assert_array_equal(got["y_size"], size)
    np.testing.assert_array_equal(got["n_size"], np.arange(600))
    assert got["y_colour"].tolist() == colour.tolist()
    np.testing.assert_array_equal(session.run(frame, ["n_size"])["n_size"], np.arange(600))  # numbers out alone
    numbers = module.OnnxRuntimeCPU().open(_identity_model(tmp_path / "n.onnx", [("size", TensorProto.FLOAT, 1)]))
    np.testing.assert_array_equal(numbers.run(Frame({"size": size}))["n_size"], np.arange(600))


def test_a_sliced_run_of_a_bundle_equals_one_onnxruntime_call(bundle, monkeypatch):
    import onnxruntime as ort

    from zoo.exports.runtimes import onnxruntime as module

    whole = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).normal(0, 4, (5000, 64)).astype(np.float32)
    session = module.OnnxRuntimeCPU().open(bundle / "model.onnx")
    names = session.output_names
    expected = dict(zip(names, whole.run(names, {"input": x})))
    assert {n: v.tolist() for n, v in session.run(x).items()} == {n: v.tolist() for n, v in expected.items()}
    monkeypatch.setattr(module, "SLICE_BYTES", 1 << 18)  # slices of 1,024 rows
    got = session.run(x)
    for name in names:
        assert got[name].dtype == expected[name].dtype and got[name].shape == expected[name].shape, name
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)


def test_every_runtime_listed_available_opens_a_real_session(tmp_path):
    """zoo runtimes reads availability from the installed files (no library imported): each runtime it calls
    available must open a model and run it, and each one it calls unavailable must say why."""
    from onnx import TensorProto

    from zoo.exports.runtimes import open_session
    from zoo.registry import get_runtime

    model = _identity_model(tmp_path / "id.onnx", [("input", TensorProto.FLOAT, 64)])
    x = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    for found in statuses():
        if not found.available:
            assert found.reason, found
            continue
        session = open_session(get_runtime(found.name), model)
        np.testing.assert_array_equal(session.run(x, ["y_input"])["y_input"], x, err_msg=found.name)


def test_zoo_runtimes_imports_no_runtime_library_and_reports_the_libraries_versions():
    code = ("import json, sys; from zoo.exports.runtimes import statuses\n"
            "print(json.dumps({s.name: s.version for s in statuses()}))\n"
            "print(sorted(m for m in ('numpy', 'onnxruntime', 'onnx', 'openvino') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    versions, imported = done.stdout.splitlines()
    assert imported == "[]"
    versions = json.loads(versions)
    import onnx
    import onnxruntime

    assert versions["onnxruntime-cpu"] == versions["onnxruntime-cuda"] == onnxruntime.__version__
    assert versions["onnx-reference"] == onnx.__version__
    if AVAILABLE["openvino-cpu"].available:
        from zoo.exports.runtimes.openvino import import_openvino

        assert versions["openvino-cpu"] == import_openvino().get_version().split("-")[0]


def test_an_unavailable_runtime_is_skipped_never_passed(tmp_path):
    site = make_dist(tmp_path / "site", "zoo-npu", "zoo_npu", UNAVAILABLE_RUNTIME)
    exported = zoo("export", "binary", "--epochs", "1", "-o", tmp_path / "b", "--json", path_entries=[site])
    assert exported.returncode == 0, exported.stderr
    cells = {c["runtime"]: c for c in json.loads(exported.stdout)["parity"]["cells"]}
    assert (cells["needs-npu"]["status"], cells["needs-npu"]["reason"]) == ("skipped", "no NPU found")
    assert cells["needs-npu"]["accuracy"] is None and cells["onnxruntime-cpu"]["status"] == "passed"
    verified = zoo("verify", tmp_path / "b", "--json", path_entries=[site])
    rows = [r for r in json.loads(verified.stdout)["replays"] if r["runtime"] == "needs-npu"]
    assert [(r["status"], r["reason"]) for r in rows] == [("skipped", "no NPU found")]


@pytest.mark.parametrize("runtime, fragment", [
    ("returns-a-list", "returns-a-list: run() returned list, not a dict of outputs"),
    ("float-labels", "float-labels: run() returned 'label' as float64"),
    ("no-label", "no-label: run() returned no output 'label'"),
    ("one-row-short", "one-row-short: run() returned '"),
    ("flattened", "flattened: run() returned '"),
])
def test_a_runtime_that_breaks_the_session_contract_is_one_line_everywhere(tmp_path, bundle, runtime, fragment):
    site = make_dist(tmp_path / "site", "zoo-misbehaving", "zoo_misbehaving", MISBEHAVING_RUNTIMES)
    np.savetxt(tmp_path / "rows.csv", np.zeros((3, 64)), delimiter=",")
    verified = zoo("verify", bundle, "--runtime", runtime, "--json", path_entries=[site])
    assert verified.returncode == 1 and "Traceback" not in verified.stderr, verified.stderr
    assert all(fragment in r["reason"] for r in json.loads(verified.stdout)["replays"]), verified.stdout
    for args in (["predict", bundle, "rows.csv", "--runtime", runtime],
                 ["bench", bundle, "--runtime", runtime, "--no-torch", "--repeats", "1", "--batch-size", "4"]):
        run = zoo(*args, path_entries=[site], cwd=tmp_path)
        assert run.returncode == 1 and run.stderr.strip().splitlines() == [f"Error: {fragment}" + run.stderr.strip()
                                                                            .split(fragment, 1)[1]], run.stderr
        assert fragment in run.stderr


def test_bench_names_a_runner_that_returns_no_callable(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-misbehaving", "zoo_misbehaving", MISBEHAVING_RUNTIMES)
    run = zoo("bench", bundle, "--runtime", "no-runner", "--no-torch", "--repeats", "1", "--batch-size", "4",
              path_entries=[site])
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == ["Error: no-runner failed at batch 4: runner() returned NoneType, not a "
                                               "callable"], run.stderr


def test_a_version_that_raises_is_shown_and_an_unhashable_runtime_works(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-misbehaving", "zoo_misbehaving", MISBEHAVING_RUNTIMES)
    listed = {r["name"]: r for r in json.loads(zoo("runtimes", "--json", path_entries=[site]).stdout)}
    assert listed["version-raises"]["version"] is None
    assert listed["version-raises"]["version_error"] == ("version() failed: RuntimeError: cannot read the version "
                                                         "file")
    table = zoo("runtimes", path_entries=[site]).stdout
    row = next(line for line in table.splitlines() if line.startswith("version-raises "))
    assert " ? " in row and row.endswith("(version() failed: RuntimeError: cannot read the version file)"), row
    assert listed["unhashable"]["available"]
    verified = zoo("verify", bundle, "--runtime", "unhashable", path_entries=[site])
    assert verified.returncode == 0, verified.stderr


def test_predict_refuses_a_runtime_that_lowered_the_precision(tmp_path, bundle):
    site = make_dist(tmp_path / "site", "zoo-half", "zoo_half", LOWERING_RUNTIMES)
    np.savetxt(tmp_path / "rows.csv", np.zeros((3, 64)), delimiter=",")
    run = zoo("predict", bundle, "rows.csv", "--runtime", "half-honest", "-o", "p.csv", path_entries=[site],
              cwd=tmp_path)
    assert run.returncode == 1 and not (tmp_path / "p.csv").exists()
    assert run.stderr.strip().splitlines() == [
        "Error: half-honest ran at fp16, but the bundle claims fp32: this runtime lowered the precision on its own; "
        "predict on another runtime (zoo runtimes lists them)"], run.stderr


def test_one_openvino_session_scores_from_many_threads(bundle):
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime

    import zoo

    if not AVAILABLE["openvino-cpu"].available:
        pytest.skip(f"openvino-cpu cannot run here: {AVAILABLE['openvino-cpu'].reason}")
    model = zoo.load_bundle(bundle, runtime="openvino-cpu")
    X = np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32)
    chunks = np.array_split(X, 16)
    with ThreadPoolExecutor(4) as pool:  # one infer request served them all: "Infer Request is busy"
        labels = np.concatenate(list(pool.map(model.predict, chunks)))
    reference = onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = reference.run(["label"], {"input": X})[0]
    assert labels.tolist() == [model.classes_[i] for i in expected]
