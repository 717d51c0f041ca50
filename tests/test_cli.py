"""The command line, as a user meets it: the main job, start-up cost, and every bad input."""

import json
import os
import subprocess

import numpy as np
import pytest
import torch

from zoo.exports.runtimes import statuses

from conftest import HEAVY, assert_clean_error, tree, zoo_without

BLOCK_HEAVY = zoo_without(*HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["info", "multiclass"],
                                  ["export", "--help"], ["--version"]])
def test_help_and_list_import_no_heavy_library(python, args):
    """torch, onnx, onnxruntime and scikit-learn are made unimportable; these commands still work."""
    proc = subprocess.run([python, "-c", BLOCK_HEAVY, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_list_and_info(zoo_cli):
    result = zoo_cli("list")
    assert result.exit_code == 0
    for word in ("multiclass", "binary", "softmax-cross-entropy", "sigmoid-bce", "digits"):
        assert word in result.stdout
    data = json.loads(zoo_cli("list", "multi*", "--json").stdout)
    assert [m["name"] for m in data["models"]] == ["multiclass"]
    info = zoo_cli("info", "multiclass")
    assert "input_size: from the data" in info.stdout and "num_classes: from the data" in info.stdout
    assert "784" not in info.stdout  # the builder's fallback, never what a trained model gets
    assert "CrossEntropyLoss" in info.stdout and "class-index" in info.stdout
    assert json.loads(zoo_cli("info", "sigmoid-bce", "--json").stdout)["decision"] == "threshold"


@pytest.mark.parametrize("name, dataset", [("multiclass", "digits"), ("binary", "breast-cancer")])
def test_export_with_defaults_is_verified(zoo_cli, tmp_path, name, dataset):
    result = zoo_cli("export", name)
    assert result.exit_code == 0, result.output
    accuracy = float(result.stdout.split("held-out accuracy ")[1].split()[0])
    assert accuracy >= 0.93
    assert f"on {dataset}" in result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for status in statuses():
        if status.available:
            assert " fp32 " in lines[status.name] and lines[status.name].split()[-1] == "PASSED", lines[status.name]
        else:
            assert lines[status.name].split("skipped: ")[1] == status.reason
    assert "onnxruntime-cpu" in lines and "onnx-reference" in lines
    assert (tmp_path / "zoo-exports" / name / "model.onnx").stat().st_size > 0
    assert result.stderr == ""  # no exporter noise


def test_export_json_and_output_dir(zoo_cli, tmp_path):
    result = zoo_cli("export", "multiclass", "--data", "iris", "--epochs", "3", "-o", "out/iris", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"] and report["training"]["data"] == "iris" and report["path"] == "out/iris"
    assert report["parity"]["cells"][0]["status"] == "passed"


def test_train_then_export_the_checkpoint(zoo_cli, tmp_path):
    trained = zoo_cli("train", "binary", "--epochs", "3", "--hidden-size", "4")
    assert trained.exit_code == 0, trained.output
    assert "wrote checkpoints/binary.pt" in trained.stdout
    exported = zoo_cli("export", "binary", "--checkpoint", "checkpoints/binary.pt", "--json")
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert report["model"]["config"]["hidden_size"] == 4 and report["verified"]
    again = zoo_cli("train", "binary", "--epochs", "1")
    assert_clean_error(again, "already exists: pass --force")
    wrong = zoo_cli("export", "multiclass", "--checkpoint", "checkpoints/binary.pt", "-o", "w")
    assert_clean_error(wrong, "holds model 'binary', not 'multiclass'", code=2)
    assert not (tmp_path / "w").exists()


def test_a_checkpoint_is_self_contained(zoo_cli, tmp_path):
    """Copied alone, after its training data changed or vanished, it exports what was trained."""
    import shutil

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (80, 3)), rng.normal(2, 1, (80, 3))])
    y = np.repeat([0, 1], 80)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",")
    trained = zoo_cli("train", "binary", "--data", "d.csv", "--epochs", "5", "-o", "m.pt", "--json")
    assert trained.exit_code == 0, trained.output
    claimed = json.loads(trained.stdout)["metrics"]["holdout_accuracy"]
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, 1 - y]), delimiter=",")  # the labels, swapped
    (tmp_path / "elsewhere").mkdir()
    shutil.move(tmp_path / "m.pt", tmp_path / "elsewhere" / "m.pt")
    (tmp_path / "d.csv").rename(tmp_path / "moved.csv")
    exported = zoo_cli("export", "binary", "--checkpoint", "elsewhere/m.pt", "-o", "b", "--json")
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert report["training"]["metrics"]["holdout_accuracy"] == claimed and report["verified"]
    assert all(c["accuracy"] == claimed for c in report["parity"]["cells"] if c["status"] == "passed")
    # --data must be the data it was trained on; other data is evaluation data, asked for by name
    changed = zoo_cli("export", "binary", "--checkpoint", "elsewhere/m.pt", "--data", "moved.csv", "-o", "c")
    assert_clean_error(changed, "the data changed since training: moved.csv has sha256", "--eval-data moved.csv",
                       code=1)
    assert not (tmp_path / "c").exists()
    evaluated = zoo_cli("export", "binary", "--checkpoint", "elsewhere/m.pt", "--eval-data", "moved.csv", "-o", "e",
                        "--json")
    assert evaluated.exit_code == 0, evaluated.output
    training = json.loads(evaluated.stdout)["training"]
    metrics = training["metrics"]
    assert metrics["evaluated_on"] == "moved.csv" and metrics["holdout_rows"] == 160
    assert training["data"] == "d.csv"  # what it was trained on stays recorded
    assert metrics["holdout_accuracy"] == pytest.approx(1 - claimed, abs=0.05)  # measured on it, swapped labels


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "3"], "--epochs does not apply with --checkpoint"),
    (["--hidden-size", "8", "--lr", "0.1"], "--hidden-size, --lr do not apply with --checkpoint"),
    (["--nproc-per-node", "2"], "--nproc-per-node does not apply with --checkpoint"),
])
def test_options_that_do_not_apply_to_a_checkpoint_are_refused(zoo_cli, args, fragment):
    assert zoo_cli("train", "binary", "--epochs", "1", "-o", "m.pt").exit_code == 0
    assert_clean_error(zoo_cli("export", "binary", "--checkpoint", "m.pt", "-o", "b", *args), fragment, code=2)
    assert_clean_error(zoo_cli("export", "binary", "--eval-data", "iris", "-o", "b"),
                       "--eval-data measures a trained model: give it with --checkpoint FILE", code=2)


def test_resume_goes_on_exactly_where_training_stopped(zoo_cli, tmp_path):
    import torch

    assert zoo_cli("train", "multiclass", "--epochs", "4", "-o", "straight.pt").exit_code == 0
    assert zoo_cli("train", "multiclass", "--epochs", "2", "-o", "half.pt").exit_code == 0
    resumed = zoo_cli("train", "multiclass", "--epochs", "2", "--resume", "half.pt", "-o", "resumed.pt")
    assert resumed.exit_code == 0, resumed.output
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("straight.pt", "resumed.pt"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["metrics"]["loss_history"] == b["metrics"]["loss_history"] and b["state"]["epoch"] == 4
    assert a["metrics"]["history"] == b["metrics"]["history"] and b["metrics"]["history"]["epoch"] == [1, 2, 3, 4]
    assert_clean_error(zoo_cli("train", "multiclass", "--resume", "half.pt", "--lr", "0.5", "-o", "x.pt"),
                       "--lr does not apply with --resume", code=2)
    assert_clean_error(zoo_cli("train", "binary", "--resume", "half.pt", "-o", "x.pt"),
                       "half.pt holds model 'multiclass', not 'binary'", code=2)
    assert_clean_error(zoo_cli("train", "multiclass", "--resume", "half.pt", "--data", "wine", "-o", "x.pt"),
                       "the data changed since training", code=1)


def test_a_checkpoint_with_a_pickled_payload_is_refused(zoo_cli, tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > pwned.txt",))

    torch.save({"format": "zoo-checkpoint/1", "evil": Payload()}, tmp_path / "evil.pt")
    result = zoo_cli("export", "binary", "--checkpoint", "evil.pt", "-o", "x")
    assert_clean_error(result, "cannot load checkpoint evil.pt: it holds pickled objects, which zoo never unpickles",
                       "(torch: Trying to load unsupported GLOBAL posix.system")  # torch's own reason, whole
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "x").exists()


# -- bad input: one line, exit != 0, no traceback, nothing written --------------------------


@pytest.mark.parametrize("args, fragment, code", [
    (["export", "multiclas"], "unknown model 'multiclas': did you mean 'multiclass'?", 1),
    (["export", "multiclass", "--policy", "softmax-crossentropy"], "did you mean 'softmax-cross-entropy'", 1),
    (["info", "binar"], "did you mean 'binary'", 1),
    (["export", "multiclass", "--hidden-size", "0"], "'--hidden-size': 0 is not in the range x>=1", 2),
    (["export", "multiclass", "--hidden-size", "-3"], "'--hidden-size': -3 is not in the range x>=1", 2),
    (["export", "multiclass", "--epochs", "0"], "'--epochs': 0 is not in the range x>=1", 2),
    (["train", "multiclass", "--epochs", "0"], "'--epochs': 0 is not in the range x>=1", 2),
    (["export", "binary", "--policy", "softmax-cross-entropy"], "a 1-wide output under softmax", 1),
    (["export", "binary-seed", "--policy", "sigmoid-bce"], "double activation", 1),
    (["export", "binary", "--policy", "sigmoid-in-model-bce"], "expects probabilities", 1),
    (["export", "multiclass", "--policy", "sigmoid-bce"], "two classes, got 10", 1),
    (["export", "multiclass", "--data", "nowhere.csv"], "nowhere.csv does not exist", 1),
    (["export", "multiclass", "--lr", "0"], "'--lr'", 2),
    (["export", "multiclass", "--exporter", "fast"], "'--exporter'", 2),
    (["verify"], "Missing argument 'PATH'", 2),
])
def test_bad_input(zoo_cli, tmp_path, args, fragment, code):
    assert_clean_error(zoo_cli(*args), fragment, code=code)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_device_cuda_without_cuda(zoo_cli, tmp_path):
    assert_clean_error(zoo_cli("export", "multiclass", "--device", "cuda"), "torch sees no CUDA device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, fragment", [
    ("1,2,0\n3,x,1\n", "line 2, column 2: 'x' is not a number; a CSV without a header holds numbers only"),
    ("1,2,0\n3,4,1\n5,6,12\n", "label 12 is out of range for 2 classes"),
    ("1,2,0\n3,4,-1\n", "label -1 is out of range"),
])
def test_bad_csv(zoo_cli, tmp_path, text, fragment):
    (tmp_path / "d.csv").write_text(text)
    assert_clean_error(zoo_cli("export", "binary", "--data", "d.csv", "-o", "out"), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_output_parent_is_a_file(zoo_cli, tmp_path):
    (tmp_path / "afile").write_text("keep")
    assert_clean_error(zoo_cli("export", "multiclass", "-o", "afile/bundle"), "afile is a file")
    assert_clean_error(zoo_cli("train", "multiclass", "-o", "afile/m.pt"), "afile is a file")
    assert (tmp_path / "afile").read_text() == "keep"


def test_existing_output_without_force_is_kept(zoo_cli, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.onnx").write_bytes(b"previous")
    assert_clean_error(zoo_cli("export", "binary", "-o", "b"), "b already exists: pass --force")
    assert tree(tmp_path / "b") == {"model.onnx": b"previous"}


def test_force_with_a_failing_parity_keeps_the_previous_bundle(zoo_cli, tmp_path):
    assert zoo_cli("export", "binary", "--epochs", "1", "-o", "b").exit_code == 0
    before = tree(tmp_path / "b")
    result = zoo_cli("export", "multiclass", "--epochs", "1", "-o", "b", "--force", "--atol", "0", "--rtol", "0")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "nothing was written at b" in result.stderr
    assert tree(tmp_path / "b") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.slow  # 8 s: two exports in a fresh interpreter
def test_verbose_shows_the_exporters_own_output(python, tmp_path):
    def run(*extra):
        return subprocess.run([python, "-m", "zoo", "export", "binary", "--epochs", "1", *extra],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    quiet, loud = run("-o", "q"), run("-o", "l", "--verbose")
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert quiet.stderr == "" and "DeprecationWarning" in loud.stderr


def test_user_csv_end_to_end(zoo_cli, tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (60, 3))])
    y = np.repeat([0, 1], 60)
    np.savetxt(tmp_path / "mine.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,label", comments="")
    result = zoo_cli("export", "binary", "--data", "mine.csv", "-o", "mine", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["training"]["metrics"]["holdout_accuracy"] >= 0.9 and report["model"]["config"]["input_size"] == 3


def test_console_script_entry_point(python, tmp_path):
    """The installed `zoo` command (a real console-script entry point)."""
    exe = os.path.join(os.path.dirname(python), "zoo")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("zoo, version ")
    proc = subprocess.run([exe, "export", "nope"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: unknown model 'nope'")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", "4294967296"])
def test_seeds_out_of_range_are_one_line(zoo_cli, seed):
    assert_clean_error(zoo_cli("train", "binary", "--seed", seed), "Invalid value for '--seed'", "0<=x<=4294967295",
                       code=2)


def test_the_default_dataset_is_found_beside_a_directory_of_its_name(zoo_cli, tmp_path):
    (tmp_path / "breast-cancer").mkdir()
    result = zoo_cli("train", "binary", "--epochs", "1", "-o", "m.pt")
    assert result.exit_code == 0, result.output
    assert "on breast-cancer (456 rows" in result.stdout


def test_a_checkpoint_keeps_a_seeded_sample_of_ten_thousand_held_out_rows(zoo_cli, tmp_path):
    """12,000 held-out rows: the checkpoint keeps 10,000 of them, and the export claims the accuracy on those."""
    import onnxruntime

    from zoo.data import load_source, split

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60_000, 4)).astype(np.float32)
    X[:, 0] = np.arange(60_000)  # feature 0 names the row: kept rows can be traced back to the data
    y = np.digitize(X[:, 1], [-0.5, 0.5]).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    trained = zoo_cli("train", "multiclass", "--data", "d.npz", "--epochs", "1", "--batch-size", "4096",
                      "--hidden-size", "4", "--seed", "3", "-o", "m.pt")
    assert trained.exit_code == 0, trained.output
    held = torch.load(tmp_path / "m.pt", weights_only=True)["held_out"]
    held_out_rows = split(load_source(str(tmp_path / "d.npz")), 0.2, 3).X_test[:, 0].astype(np.int64)
    assert len(held_out_rows) == held["rows_at_training"] == 12_000
    kept = held["X"].numpy()[:, 0].astype(np.int64)
    assert len(kept) == 10_000 and np.all(np.diff(kept) > 0)  # exactly the cap, sorted, no row twice
    assert set(kept) <= set(held_out_rows)  # held-out rows only ...
    assert kept[-1] > held_out_rows[9_999] and kept[0] >= held_out_rows[0]  # ... sampled, not the first 10,000
    np.testing.assert_array_equal(held["X"].numpy(), X[kept])
    np.testing.assert_array_equal(held["y"].numpy(), y[kept])
    again = zoo_cli("train", "multiclass", "--data", "d.npz", "--epochs", "1", "--batch-size", "4096",
                    "--hidden-size", "4", "--seed", "3", "-o", "again.pt")
    assert again.exit_code == 0, again.output
    assert torch.equal(torch.load(tmp_path / "again.pt", weights_only=True)["held_out"]["X"], held["X"])  # seeded
    exported = zoo_cli("export", "multiclass", "--checkpoint", "m.pt", "-o", "b", "--no-card",
                       "--runtime", "onnxruntime-cpu", "--json")
    assert exported.exit_code == 0, exported.output
    metrics = json.loads(exported.stdout)["training"]["metrics"]
    assert metrics["holdout_rows"] == 10_000 and metrics["holdout_rows_at_training"] == 12_000
    session = onnxruntime.InferenceSession(str(tmp_path / "b" / "model.onnx"), providers=["CPUExecutionProvider"])
    [labels] = session.run(["label"], {"input": X[kept]})
    assert metrics["holdout_accuracy"] == pytest.approx(float(np.mean(labels == y[kept])), abs=2e-4)
    assert metrics["holdout_accuracy"] == held["accuracy"]


def test_a_large_import_leaves_the_collector_as_it_was_and_its_objects_frozen(python):
    """A command imports torch with the collector paused, then freezes what the import made: the collector is
    on again afterwards (off, if it was off), and an import that already happened freezes nothing."""
    code = ("import gc, sys\n"
            "from zoo.cli import import_without_collections\n"
            "import_without_collections('torch')\n"
            "print('torch' in sys.modules, gc.isenabled(), gc.get_freeze_count() > 100_000)\n"
            "gc.unfreeze(); gc.disable()\n"
            "import_without_collections('torch')\n"
            "print(gc.isenabled(), gc.get_freeze_count())\n"
            "import_without_collections('fractions')\n"
            "print(gc.isenabled(), gc.get_freeze_count() > 0)\n")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True", "False", "0", "False", "True"]
