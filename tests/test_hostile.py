"""Bundles, locks and files from someone else: planted links, devices, FIFOs, oversized and malformed pieces.

Each case is what a deployer meets running zoo on a folder another person made, in a directory another
person can write. Every one must end in one line (exit status 1 where it is an error), with nothing
outside the bundle or the target created, changed or copied.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import onnx
import pytest

from conftest import assert_clean_error, reseal, tree


@pytest.fixture
def precious(tmp_path):
    """A file of the user's that nothing may write: (path, its bytes)."""
    path = tmp_path / "precious"
    path.write_bytes(b"the user's own data\n")
    return path, path.read_bytes()


# -- locks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    lambda b: ["verify", b],
    lambda b: ["report", b],
    lambda b: ["predict", b, "rows.csv", "-o", "p.csv"],
])
def test_a_planted_lock_link_is_never_followed(zoo_cli, bundle_copy, tmp_path, precious, command):
    path, before = precious
    bundle = bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    args = command("multiclass")
    # The lock each command takes: beside the bundle (verify tidies in a directory of the user's alone, export),
    # inside it (report writes report.html there), beside the output (predict).
    lock = {"verify": tmp_path / ".multiclass.lock", "report": bundle / ".report.html.lock",
            "predict": tmp_path / ".p.csv.lock"}[args[0]]
    os.symlink(path, lock)
    if args[0] == "verify":
        (tmp_path / ".multiclass.staging-x").mkdir()  # leftovers, so that verify does try to tidy
    result = zoo_cli(*args)
    assert path.read_bytes() == before
    if args[0] == "verify":  # a reader: it reads and leaves the link alone
        assert result.exit_code == 0, result.output
    else:  # report: a link inside the bundle refuses the bundle; predict: the lock beside the output
        assert_clean_error(result, f"{lock.name} is a symbolic link", code=1)
    assert os.readlink(lock) == str(path)


@pytest.mark.parametrize("plant", ["dangling link", "hard link", "fifo", "foreign file"])
def test_a_lock_that_is_not_zoos_own_is_refused_untouched(zoo_cli, bundle_copy, tmp_path, precious, plant):
    path, before = precious
    bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    lock = tmp_path / ".p.csv.lock"
    if plant == "dangling link":
        os.symlink(tmp_path / "created-through-the-link", lock)
    elif plant == "hard link":
        os.link(path, lock)
    elif plant == "fifo":
        os.mkfifo(lock)
    else:
        lock.write_text("not a process id\n")
    started = time.monotonic()
    result = zoo_cli("predict", "multiclass", "rows.csv", "-o", "p.csv")
    assert time.monotonic() - started < 60  # a FIFO never hangs the open
    assert_clean_error(result, ".p.csv.lock is", code=1)
    assert path.read_bytes() == before
    assert not (tmp_path / "created-through-the-link").exists() and not (tmp_path / "p.csv").exists()
    if plant == "foreign file":
        assert lock.read_text() == "not a process id\n"


@pytest.mark.parametrize("content", [b"", b"4242\n"])
def test_a_hard_link_to_a_file_holding_a_number_is_not_taken_as_a_lock(zoo_cli, bundle_copy, tmp_path, content):
    # what the file holds passes for a lock's pid: only its second name tells it is someone's file
    bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    mine = tmp_path / "counter"
    mine.write_bytes(content)
    lock = tmp_path / ".p.csv.lock"
    os.link(mine, lock)
    assert_clean_error(zoo_cli("predict", "multiclass", "rows.csv", "-o", "p.csv"), ".p.csv.lock is not a zoo lock",
                       code=1)
    assert mine.read_bytes() == content and os.path.samefile(mine, lock)
    assert not (tmp_path / "p.csv").exists()


def test_a_reader_takes_no_lock_in_a_directory_others_may_write(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    (tmp_path / ".multiclass.staging-abc").mkdir()  # what a killed export left
    os.chmod(tmp_path, 0o777)  # shared: another user could have planted anything here
    try:
        result = zoo_cli("verify", "multiclass", "--runtime", "onnxruntime-cpu")
    finally:
        os.chmod(tmp_path, 0o755)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".multiclass.staging-abc").is_dir() and not os.path.lexists(tmp_path / ".multiclass.lock")
    # in a directory of the user's alone, the same command tidies up after the killed run
    assert zoo_cli("verify", "multiclass", "--runtime", "onnxruntime-cpu").exit_code == 0
    assert not (tmp_path / ".multiclass.staging-abc").exists()


def test_a_leftover_that_is_a_link_is_never_followed_or_restored(tmp_path, precious):
    from zoo import files

    path, before = precious
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep")
    os.symlink(elsewhere, tmp_path / ".b.old-1234")  # the target b is missing: a real .old- copy would be restored
    os.symlink(elsewhere, tmp_path / ".b.staging-5678")
    with files.locked(tmp_path / "b"):
        pass
    assert not os.path.lexists(tmp_path / "b")
    assert (elsewhere / "keep").read_text() == "keep" and path.read_bytes() == before


# -- a bundle is a closed set of regular files ---------------------------------------------------------


def test_variants_add_refuses_a_bundle_holding_a_link(zoo_cli, bundle_copy, tmp_path):
    bundle = bundle_copy()
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(secret, 0o600)
    os.symlink(secret, bundle / "key")
    before = tree(tmp_path)
    assert_clean_error(zoo_cli("variants", "multiclass", "--add", "int8"), "multiclass/key is a symbolic link",
                       "closed set of regular files", code=1)
    assert tree(tmp_path) == before and os.path.islink(bundle / "key")
    (bundle / "key").unlink()
    os.symlink(tmp_path, bundle / "variants")  # a link to a directory: its whole tree would come along
    assert_clean_error(zoo_cli("variants", "multiclass", "--add", "int8"), "multiclass/variants is a symbolic link",
                       code=1)
    assert not any(p.name == "id_rsa" for p in bundle.rglob("*") if not p.is_symlink())


def test_variants_add_refuses_a_link_planted_after_the_bundle_was_checked(bundle_copy, tmp_path, monkeypatch):
    from zoo.errors import ZooError
    from zoo.exports.variants import build as variants
    from zoo.exports.variants import build as verify  # where variants.add looks load_test_data up

    bundle = bundle_copy()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "id_rsa").write_text("-----BEGIN PRIVATE KEY-----\n")
    manifest = (bundle / "manifest.json").read_bytes()
    loaded = verify.load_test_data

    def load_then_plant(deployed):  # the tree was found a closed set; a link appears while the test data is read
        data = loaded(deployed)
        if not os.path.lexists(bundle / "planted"):
            os.symlink(secrets, bundle / "planted")
        return data

    monkeypatch.setattr(verify, "load_test_data", load_then_plant)
    with pytest.raises(ZooError, match="planted is a symbolic link"):
        variants.add(bundle, ["int8"], bench=False)
    (bundle / "planted").unlink()
    assert (bundle / "manifest.json").read_bytes() == manifest
    assert not any("id_rsa" in names for _, _, names in os.walk(bundle))
    assert not any(p.name.startswith(".multiclass.") for p in tmp_path.iterdir())


@pytest.mark.parametrize("command", [["verify"], ["report"], ["variants", "--add", "int8"], ["bench", "--repeats", "1"],
                                     ["info"], ["predict", "--", "rows.csv"]])
def test_a_test_data_file_linked_to_dev_zero_is_refused_at_once(zoo_cli, bundle_copy, tmp_path, command):
    bundle = bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    target = bundle / "test_data_set_2" / "input_0.pb"
    target.unlink()
    os.symlink("/dev/zero", target)
    started = time.monotonic()
    args = [command[0], "multiclass", *command[1:]]
    if command[0] == "predict":
        args = ["predict", "multiclass", "rows.csv"]
    result = zoo_cli(*args)
    assert time.monotonic() - started < 30
    assert_clean_error(result, "multiclass/test_data_set_2/input_0.pb is a symbolic link", code=1)


def test_a_fifo_or_a_device_in_a_bundle_is_refused(zoo_cli, bundle_copy):
    bundle = bundle_copy()
    os.mkfifo(bundle / "test_data_set_0" / "extra")
    assert_clean_error(zoo_cli("verify", "multiclass"), "test_data_set_0/extra is a FIFO", code=1)


def test_a_file_larger_than_its_manifest_says_is_not_read(zoo_cli, bundle_copy):
    bundle = bundle_copy()
    big = bundle / "test_data_set_2" / "input_0.pb"
    with open(big, "r+b") as handle:  # 3 GiB, sparse: reading it would take seconds and 3 GiB of memory
        handle.truncate(3 << 30)
    started = time.monotonic()
    assert_clean_error(zoo_cli("verify", "multiclass"), "input_0.pb has 3,221,225,472 bytes, the manifest says",
                       code=1)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["bytes"]["test_data_set_2/input_0.pb"] = 3 << 30  # a manifest that agrees: the ceiling still holds
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(zoo_cli("verify", "multiclass"), "more than the 2,147,483,648 zoo reads of such a file", code=1)
    assert time.monotonic() - started < 30


def test_a_file_that_grew_larger_after_it_was_measured_is_not_read(zoo_cli, bundle_copy, monkeypatch):
    from zoo.exports.bundle import reading

    bundle_copy()
    measured = reading.member

    def member(root, relative, what, **kwargs):  # the file grows once its size was checked, before it is opened
        path = measured(root, relative, what, **kwargs)
        if str(relative) == "test_data_set_2/input_0.pb":
            with open(path, "r+b") as handle:
                handle.truncate(3 << 30)
        return path

    monkeypatch.setattr(reading, "member", member)
    assert_clean_error(zoo_cli("verify", "multiclass"), "input_0.pb has 3,221,225,472 bytes, the manifest says",
                       code=1)


def test_a_model_with_external_data_is_refused(zoo_cli, bundle_copy, tmp_path, precious):
    path, _ = precious
    bundle = bundle_copy()
    model = onnx.load(str(bundle / "model.onnx"))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=str(path))
    (bundle / "model.onnx").write_bytes(model.SerializeToString())
    reseal(bundle, "model.onnx")
    assert_clean_error(zoo_cli("verify", "multiclass"), "keeps tensors in external files", code=1)
    onnx.save(model, str(tmp_path / "bare.onnx"))
    assert_clean_error(zoo_cli("verify", "bare.onnx"), "keeps tensors in external files", code=1)


def test_bench_takes_its_checkpoint_from_inside_the_bundle_only(zoo_cli, bundle_copy, tmp_path):
    bundle = bundle_copy()
    shutil.copy(bundle / "checkpoint.pt", tmp_path / "outside.pt")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in (str(tmp_path / "outside.pt"), "../outside.pt"):
        manifest["files"]["checkpoint"] = name
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        assert_clean_error(zoo_cli("bench", "multiclass", "--repeats", "1", "--batch-size", "1"),
                           "which lies outside the bundle", code=1)


# -- malformed pieces, each one line naming the file and the field --------------------------------------


def write_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("change, fragment", [
    (lambda p: p.write_bytes(b"not a zip at all"), "evaluation.npz: not an .npz archive"),
    (lambda p: write_npz(p, y=np.zeros(3, np.int64)), "evaluation.npz: no array 'X'"),
    (lambda p: write_npz(p, X=np.array([object()] * 4).reshape(2, 2), y=np.zeros(2, np.int64)),
     "evaluation.npz: array 'X' is object (2, 2), expected floats"),
    (lambda p: write_npz(p, X=np.zeros((3, 5), np.float32), y=np.zeros(3, np.int64)),
     "evaluation.npz: array 'X' is float32 (3, 5), expected floats (rows <= 10000, 64)"),
    (lambda p: write_npz(p, X=np.zeros((3, 64), np.float32), y=np.full(3, 99, np.int64),
                         calibration=np.zeros((3, 64), np.float32), calibration_source=np.array("training rows")),
     "evaluation.npz: array 'y' holds class 99; the model has 10 classes"),
    (lambda p: write_npz(p, X=np.zeros((3, 64), np.int64), y=np.zeros(3, np.int64),
                         calibration=np.zeros((3, 64), np.float32), calibration_source=np.array("training rows")),
     "evaluation.npz: array 'X' is int64 (3, 64), expected floats"),
    (lambda p: write_npz(p, X=np.zeros((3, 64), np.float32), y=np.zeros(3, np.float64),
                         calibration=np.zeros((3, 64), np.float32), calibration_source=np.array("training rows")),
     "evaluation.npz: array 'y' is float64 (3,), expected integers"),
])
@pytest.mark.parametrize("command", [["report"], ["variants", "--add", "int8"]])
def test_a_malformed_evaluation_file_is_one_line(zoo_cli, bundle_copy, tmp_path, change, fragment, command):
    bundle = bundle_copy()
    change(bundle / "evaluation.npz")
    reseal(bundle, "evaluation.npz")
    before = tree(tmp_path)
    assert_clean_error(zoo_cli(command[0], "multiclass", *command[1:]), fragment, code=1)
    assert tree(tmp_path) == before


def test_an_evaluation_array_claiming_more_than_the_file_holds_is_not_allocated(zoo_cli, bundle_copy):
    bundle = bundle_copy()
    path = bundle / "evaluation.npz"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = members["X.npy"]
    members["X.npy"] = header.replace(b"'shape': (", b"'shape': (9", 1)  # 9xxx rows the file does not hold
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    reseal(bundle, "evaluation.npz")
    assert_clean_error(zoo_cli("report", "multiclass"), "evaluation.npz: array 'X' claims", "more than the file holds",
                       code=1)


def test_an_evaluation_array_deflated_past_the_file_is_refused_from_its_header(zoo_cli, bundle_copy):
    import io

    bundle = bundle_copy()
    path = bundle / "evaluation.npz"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "calibration_source.npy"}
    chars = 16 << 20  # one text of 16M characters: 64 MiB, deflated to a few dozen KiB
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": f"<U{chars}", "fortran_order": False, "shape": ()})
    bomb = zipfile.ZipInfo("calibration_source.npy")
    bomb.compress_type = zipfile.ZIP_DEFLATED  # the other arrays stored, as zoo stores them
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        with archive.open(bomb, "w") as handle:
            handle.write(header.getvalue())
            block = bytes(1 << 20)
            for _ in range(4 * chars // len(block)):
                handle.write(block)
    assert path.stat().st_size < 1 << 20
    reseal(bundle, "evaluation.npz")
    assert_clean_error(zoo_cli("report", "multiclass"), "evaluation.npz: array 'calibration_source' claims 67,108,864 "
                       "bytes, more than the file holds", code=1)


@pytest.mark.parametrize("change, fragment", [
    (lambda v: "int8", "variants.int8 is str, not a record"),
    (lambda v: {k: x for k, x in v.items() if k != "file"}, "variants.int8 lacks file"),
    (lambda v: v | {"precision": "int3"}, "variants.int8.precision is 'int3'"),
    (lambda v: v | {"test_data": "variants/int8/test_data_set_0"}, "variants.int8 is invalid (expected a list"),
])
@pytest.mark.parametrize("command", [["verify"], ["report"], ["variants"], ["info"], ["predict", "rows.csv"]])
def test_a_malformed_variant_record_is_one_line(zoo_cli, exported, tmp_path, change, fragment, command):
    root, _ = exported
    bundle = tmp_path / "b"
    shutil.copytree(root / "binary", bundle)
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 30)), delimiter=",")
    manifest = json.loads((bundle / "manifest.json").read_text())
    record = {"file": "variants/int8/model.onnx", "sha256": "0" * 64, "precision": "int8", "compare": [],
              "test_data": ["variants/int8/test_data_set_0"], "rows": 1, "accuracy": 1.0, "fp32_accuracy": 1.0,
              "accuracy_delta_points": 0.0, "agreement_percent": 100.0, "max_abs_probability_difference": 0.0,
              "size_bytes": 1, "size_ratio": 1.0}
    manifest["variants"] = {"int8": change(record)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(zoo_cli(command[0], "b", *command[1:]), fragment, code=1)


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m.update(input="text"), "manifest.json is incomplete or invalid (AttributeError"),
    (lambda m: m["input"].update(feature_names=True), "input.feature_names must be 64 strings (or null)"),
    (lambda m: m["input"].update(shape=["batch"]), "input.shape must be [batch, features], got ['batch']"),
    (lambda m: m.update(training="text"), "manifest.json is incomplete or invalid"),
    (lambda m: m.update(outputs=[]), "outputs lists no output"),
    (lambda m: m["outputs"][2].update(compare=None), "manifest.json is incomplete or invalid"),
    (lambda m: m.update(class_labels=["a", "a"]), "class_labels must name two or more classes, each once"),
])
@pytest.mark.parametrize("command", [["verify"], ["info"], ["predict", "rows.csv"], ["variants"]])
def test_a_malformed_manifest_field_is_one_line(zoo_cli, bundle_copy, tmp_path, change, fragment, command):
    bundle = bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(zoo_cli(command[0], "multiclass", *command[1:]), fragment, code=1)


@pytest.mark.parametrize("command", [["verify"], ["predict", "rows.csv"]])
def test_a_manifest_whose_outputs_are_not_the_graphs_is_one_line(zoo_cli, bundle_copy, tmp_path, command):
    bundle = bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["outputs"].pop(0)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert_clean_error(zoo_cli(command[0], "multiclass", *command[1:]),
                       "outputs is ['probabilities', 'label'], but model.onnx has ['logits', 'probabilities', 'label']",
                       code=1)


def relabel(bundle, **props):
    """Change the model's zoo metadata (as someone editing the file would) and reseal the bundle."""
    model = onnx.load(str(bundle / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key in props:
            prop.value = props[prop.key]
    onnx.save(model, str(bundle / "model.onnx"))
    reseal(bundle, "model.onnx")


@pytest.mark.parametrize("props, fragment", [
    ({"zoo.class_labels": json.dumps(["a", "b", "c"]), "zoo.num_classes": "3"},
     "metadata zoo.num_classes is 3 (softmax: 3 probability columns), but the graph outputs 10"),
    ({"zoo.class_labels": json.dumps(["a", "b", "c"])}, "metadata zoo.class_labels names 3 classes, but "
                                                        "zoo.num_classes says 10"),
    ({"zoo.class_labels": json.dumps(["a"] * 10)}, "metadata zoo.class_labels names a class twice"),
    ({"zoo.class_labels": json.dumps(list(range(10)))}, "metadata zoo.class_labels must be a JSON list of strings"),
    ({"zoo.class_labels": "[not json"}, "metadata zoo.class_labels is not a valid list"),
    ({"zoo.class_labels": json.dumps([f"c{i}" for i in range(10)])},
     "manifest.json: class_labels is ['0', '1', '2'"),
    ({"zoo.input_size": "63"}, "metadata zoo.feature_names names 64 features, but zoo.input_size says 63"),
    ({"zoo.input_size": "63", "zoo.feature_names": json.dumps([f"f{i}" for i in range(63)])},
     "metadata zoo.input_size is 63, but the graph's input takes 64 features"),
])
@pytest.mark.parametrize("command", [["verify"], ["predict", "rows.csv"]] + [
    ["predict", "rows.csv", "-o", f"p.{suffix}"] for suffix in ("jsonl", "parquet", "npy")])
def test_metadata_that_disagrees_with_the_graph_or_the_manifest_is_one_line(zoo_cli, bundle_copy, tmp_path, props,
                                                                             fragment, command):
    bundle = bundle_copy()
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 64)), delimiter=",")
    relabel(bundle, **props)
    result = zoo_cli(command[0], "multiclass", *command[1:])
    assert_clean_error(result, fragment, code=1)
    assert "verified" not in result.stdout and not list(tmp_path.glob("p.*"))


# -- checkpoints ------------------------------------------------------------------------------------


def test_a_checkpoint_declaring_a_huge_model_is_refused_before_allocating(zoo_cli, tmp_path):
    import torch

    assert zoo_cli("train", "multiclass", "--epochs", "1", "-o", "m.pt").exit_code == 0
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["model_config"]["hidden_size"] = 400_000_000
    torch.save(payload, tmp_path / "huge.pt")
    script = ("import resource, sys\n"
              "resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))\n"  # 100 GB would be refused anyway
              "from zoo.cli import main\n"
              "sys.argv = ['zoo', 'export', 'multiclass', '--checkpoint', 'huge.pt', '-o', 'b']\n"
              "main()\n")
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert time.monotonic() - started < 120  # refused from the shapes, not by running out of memory
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "huge.pt: model_config does not describe its weights" in lines[0], run.stderr
    assert "hidden" in lines[0] or "linear" in lines[0], lines[0]
    assert not (tmp_path / "b").exists()


# -- outputs: CSV formulas, JSON lines, .npy headers, the Dask scheduler -------------------------------------


@pytest.fixture(scope="module")
def formulas(tmp_path_factory):
    """A bundle whose class names would be formulas in a spreadsheet, one not in Latin-1."""
    from zoo.exports.export.pipeline import export_bundle
    from zoo.training import fit
    from zoo.training.config import TrainConfig

    root = tmp_path_factory.mktemp("formulas")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = (rng.normal(size=(300, 4)) + y[:, None] * 2).astype(np.float32)
    np.savez(root / "data.npz", X=X, y=y, class_labels=np.array(["=1+1", "@SUM(A1)", "猫"]))
    export_bundle(fit("multiclass", data=str(root / "data.npz"), config=TrainConfig(epochs=2, device="cpu")),
                  root / "f", runtimes=["onnxruntime-cpu"], card=False)
    return root / "f", X


def test_csv_cells_are_verbatim_unless_csv_safe(zoo_cli, formulas, tmp_path):
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    bundle, X = formulas
    ids = ["=HYPERLINK(\"http://x\")", "+1", "-2", "plain"] * 25
    pq.write_table(pa.table({"id": ids, **{f"f{i}": X[:100, i] for i in range(4)}}), tmp_path / "rows.parquet")
    assert zoo_cli("predict", str(bundle), "rows.parquet", "--id-column", "id", "--columns", "f0,f1,f2,f3",
                   "-o", "plain.csv").exit_code == 0
    assert zoo_cli("predict", str(bundle), "rows.parquet", "--id-column", "id", "--columns", "f0,f1,f2,f3",
                   "-o", "safe.csv", "--csv-safe").exit_code == 0
    plain = list(csv.reader(open(tmp_path / "plain.csv", encoding="utf-8")))
    safe = list(csv.reader(open(tmp_path / "safe.csv", encoding="utf-8")))
    assert [r[0] for r in plain[1:5]] == ids[:4]  # the data as it is, by default
    assert plain[0][3:] == ["p_=1+1", "p_@SUM(A1)", "p_猫"]
    assert [r[0] for r in safe[1:5]] == ["'" + i for i in ids[:3]] + ["plain"]
    assert {r[1] for r in safe[1:]} <= {"'=1+1", "'@SUM(A1)", "猫"} and {r[1] for r in plain[1:]} <= {"=1+1",
                                                                                                       "@SUM(A1)", "猫"}
    assert [r[2:] for r in safe] == [r[2:] for r in plain]  # numbers and probabilities untouched
    assert_clean_error(zoo_cli("predict", str(bundle), "rows.parquet", "--columns", "f0,f1,f2,f3", "-o", "p.jsonl",
                               "--csv-safe"), "--csv-safe guards CSV cells", code=2)


def test_npy_output_header_is_numpys_own_for_any_class_name(zoo_cli, formulas, tmp_path):
    bundle, X = formulas
    np.save(tmp_path / "rows.npy", X[:40])
    assert zoo_cli("predict", str(bundle), "rows.npy", "-o", "out.npy", "--batch-size", "16").exit_code == 0
    out = np.load(tmp_path / "out.npy")  # numpy reads what it wrote: a format 3.0 header for the name 猫
    assert out.shape == (40,) and out.dtype.names[-1] == "p_猫"
    assert set(out["label"]) <= {"=1+1", "@SUM(A1)", "猫"}


def test_json_lines_carry_null_for_a_number_that_is_not_finite(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    rows = np.zeros((3, 64))
    rows[1, 5] = np.nan
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",")
    assert zoo_cli("predict", "multiclass", "rows.csv", "--allow-nan", "-o", "p.jsonl").exit_code == 0

    def refuse(token):  # what JSON.parse does with NaN, Infinity
        raise ValueError(f"not JSON: {token}")

    lines = [json.loads(line, parse_constant=refuse) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines[1]["label"] is None and lines[1]["class_index"] == -1
    assert set(lines[1]["probabilities"].values()) == {None} and None not in lines[0]["probabilities"].values()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, fragment, code", [
    (["--scheduler", "tcp://[::1:5", "-o", "o"], "--scheduler 'tcp://[::1:5': give local:N", 1),
    (["--scheduler", "tcp://host:99999", "-o", "o"], "give local:N", 1),
    (["--scheduler", "local:1", "-o", "o.csv"], "-o o.csv names a csv file, but --scheduler scores files into a "
                                                "directory", 2),
    (["-o", "o.parquet"], "-o o.parquet names a parquet file, but INPUT names several files", 2),
])
def test_scheduler_and_output_path_mistakes_leave_nothing_behind(zoo_cli, bundle_copy, tmp_path, args, fragment,
                                                                   code):
    bundle_copy()
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "a.npy", np.zeros((2, 64), np.float32))
    source = "in/a.npy" if "--scheduler" in args else "in"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_clean_error(zoo_cli("predict", "multiclass", source, *args), fragment, code=code)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_scheduler_nobody_listens_on_leaves_nothing_behind(zoo_cli, bundle_copy, tmp_path):
    pytest.importorskip("distributed", reason="Dask is the [dask] extra: pip install 'zoo-onnx[dask]'")
    bundle_copy()
    np.save(tmp_path / "a.npy", np.zeros((2, 64), np.float32))
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # Dask's own knob; 30 s by default
        result = zoo_cli("predict", "multiclass", "a.npy", "--scheduler", f"tcp://127.0.0.1:{free_port()}", "-o",
                         "out")
    assert_clean_error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:", "nothing was written", code=1)
    assert not (tmp_path / "out").exists()


# -- what a report says -------------------------------------------------------------------------------


def test_a_failed_verify_says_why_in_one_line_even_under_q(zoo_cli, bundle_copy):
    bundle = bundle_copy()
    model = onnx.load(str(bundle / "model.onnx"))
    bias = next(t for t in model.graph.initializer if onnx.numpy_helper.to_array(t).ndim == 1
                and onnx.numpy_helper.to_array(t).shape[0] == 10)
    value = onnx.numpy_helper.to_array(bias).copy()
    value += 1e-3  # every logit shifts by the same amount: probabilities and labels unchanged, logits not
    bias.CopyFrom(onnx.numpy_helper.from_array(value, bias.name))
    onnx.save(model, str(bundle / "model.onnx"))
    reseal(bundle, "model.onnx")
    quiet = zoo_cli("-q", "verify", "multiclass", "--runtime", "onnxruntime-cpu")
    assert quiet.stdout == ""
    assert_clean_error(quiet, "NOT verified: multiclass/model.onnx: onnxruntime-cpu, test_data_set_0: logits differ by "
                       "up to", code=1)
    shown = zoo_cli("verify", "multiclass", "--runtime", "onnxruntime-cpu")
    failed = [line for line in shown.stdout.splitlines() if "FAILED" in line]
    assert failed and all("(logits)" in line for line in failed), shown.stdout  # the error of what failed


def test_a_failed_export_never_prints_the_criterion_as_passed(zoo_cli):
    result = zoo_cli("export", "binary", "--epochs", "1", "--atol", "0", "--rtol", "0", "-o", "b")
    assert result.exit_code == 1
    assert "\npass:" not in result.stdout and "NOT passed by every runtime above:" in result.stdout, result.stdout


def test_the_tree_check_reads_nothing_but_entries(tmp_path):
    from zoo.errors import VerifyError
    from zoo.exports.bundle import reading

    (tmp_path / "a").mkdir()
    for n in range(reading.MAX_ENTRIES + 1):
        (tmp_path / "a" / f"{n}").touch()
    with pytest.raises(VerifyError, match="holds more than 10,000 files"):
        reading.check_tree(tmp_path)
    assert stat.S_ISDIR(os.lstat(tmp_path).st_mode)


def test_a_planted_record_in_an_output_directory_is_never_followed(zoo_cli, bundle_copy, tmp_path):
    bundle_copy()
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "a.npy", np.zeros((2, 64), np.float32))
    (tmp_path / "out").mkdir()
    os.symlink("/dev/zero", tmp_path / "out" / ".zoo-predict.json")
    started = time.monotonic()
    assert_clean_error(zoo_cli("predict", "multiclass", "in", "-o", "out"), "out holds predictions made with another "
                       "model", code=1)
    assert time.monotonic() - started < 30 and os.path.islink(tmp_path / "out" / ".zoo-predict.json")
    assert zoo_cli("predict", "multiclass", "in", "-o", "out", "--force").exit_code == 0  # replaces the link itself
    assert not os.path.islink(tmp_path / "out" / ".zoo-predict.json") and (tmp_path / "out" / "a.parquet").is_file()
