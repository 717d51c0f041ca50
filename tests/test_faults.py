"""Faults from the machine and the data: full disks, no permission, one class, -q and -v."""

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from zoo.exports.export.pipeline import export_bundle
from zoo.training import TrainConfig, fit

from conftest import assert_clean_error, tree


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    export_bundle(fit("binary", config=TrainConfig(epochs=1, device="cpu")), root / "b")
    return root / "b"


def zoo(*args, cwd, preexec_fn=None, prefix=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    return subprocess.run([*prefix, sys.executable, "-m", "zoo", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=preexec_fn)


def small_file_limit():
    """Files may grow to 64 KiB only: writing more fails with EFBIG, as a full disk fails with ENOSPC."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))


def test_a_full_disk_during_predict_leaves_no_partial_file(bundle_dir, tmp_path):
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(20000, 30)).astype(np.float32))
    (tmp_path / "out.csv").write_text("previous\n")
    result = zoo("predict", str(bundle_dir), "rows.npy", "-o", "out.csv", "--force", cwd=tmp_path,
                 preexec_fn=small_file_limit)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["Error: cannot write out.csv: File too large; nothing was written"]
    assert (tmp_path / "out.csv").read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "rows.npy"]


@pytest.mark.slow  # 6 s: a real export on a full file system
def test_a_full_disk_during_export_keeps_the_previous_bundle(tmp_path):
    first = zoo("export", "binary", "--epochs", "1", "-o", "b", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = tree(tmp_path / "b")
    result = zoo("export", "multiclass", "--epochs", "1", "-o", "b", "--force", cwd=tmp_path,
                 preexec_fn=small_file_limit)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert tree(tmp_path / "b") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def without_privileges() -> tuple[str, ...]:
    """A command prefix under which this user obeys file permissions: nothing for an ordinary user; for root,
    which may write anywhere, setpriv with every capability dropped (root then owns, but may not write, a
    directory of mode 0555)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux) to drop root's capabilities")
    return (setpriv, "--bounding-set=-all", "--inh-caps=-all", "--")


def test_no_permission_to_write(bundle_dir):
    prefix = without_privileges()
    with tempfile.TemporaryDirectory() as root:
        np.save(os.path.join(root, "rows.npy"), np.zeros((2, 30), dtype=np.float32))
        os.chmod(root, 0o555)  # readable by everyone, writable by nobody without privileges
        try:
            for args, fragment in (
                (["predict", str(bundle_dir), "rows.npy", "-o", "out.csv"], "no permission to write in"),
                (["train", "binary", "-o", "sub/m.pt"], "no permission to write in"),
            ):
                result = zoo(*args, cwd=root, prefix=prefix)
                assert result.returncode == 1, result.stderr
                assert fragment in result.stderr and result.stderr.count("\n") == 1, result.stderr
            assert sorted(os.listdir(root)) == ["rows.npy"]
        finally:
            os.chmod(root, 0o755)


def test_a_location_even_root_cannot_write(bundle_dir, tmp_path):
    target = "/sys/zoo-predictions.csv"
    if os.access("/sys", os.W_OK) and os.geteuid() != 0:
        pytest.skip("/sys is writable here")
    np.save(tmp_path / "rows.npy", np.zeros((2, 30), dtype=np.float32))
    result = zoo("predict", str(bundle_dir), "rows.npy", "-o", target, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {target}: "), result.stderr
    assert not os.path.exists(target)


def test_training_data_with_one_class(zoo_cli, tmp_path):
    np.savez(tmp_path / "one.npz", X=np.random.default_rng(0).normal(size=(50, 3)), y=np.zeros(50, dtype=int))
    assert_clean_error(zoo_cli("export", "binary", "--data", "one.npz", "-o", "x"),
                       "every row has label 0; a classifier needs at least two classes")
    assert not (tmp_path / "x").exists()


def test_training_data_with_no_rows(zoo_cli, tmp_path):
    np.savez(tmp_path / "none.npz", X=np.zeros((0, 3)), y=np.zeros(0, dtype=int))
    assert_clean_error(zoo_cli("export", "binary", "--data", "none.npz", "-o", "x"), "no rows to train on")


def test_training_data_with_nan(zoo_cli, tmp_path):
    X = np.ones((20, 3))
    X[4, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, y=np.arange(20) % 2)
    assert_clean_error(zoo_cli("train", "binary", "--data", "nan.npz"), "1 NaN/Inf feature values (first at row 4")


def test_a_run_whose_loss_turns_nan_exports_nothing(zoo_cli, tmp_path):
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(100, 3)), y=np.arange(100) % 3)
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "d.npz", "--lr", "1e30", "-o", "x"),
                       "the training loss became nan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_quiet_and_verbose(zoo_cli, bundle_dir, tmp_path):
    quiet = zoo_cli("-q", "verify", str(bundle_dir))
    assert quiet.exit_code == 0 and quiet.output == ""
    loud = zoo_cli("verify", str(bundle_dir))
    assert "verified:" in loud.stdout
    np.save(tmp_path / "rows.npy", np.zeros((3, 30), dtype=np.float32))
    assert zoo_cli("-q", "predict", str(bundle_dir), "rows.npy").stdout.count("\n") == 4  # results still shown
    assert_clean_error(zoo_cli("-q", "-v", "list"), "contradict", code=2)
    json_out = zoo_cli("-q", "verify", str(bundle_dir), "--json")
    assert json_out.stdout.lstrip().startswith("{")  # machine output is not "information"


# -- crash consistency: locks and modes ------------------------------------------------------------


def test_a_second_writer_to_the_same_target_is_refused(zoo_cli, tmp_path):
    import fcntl

    lock = tmp_path / ".m.pt.lock"
    with open(lock, "w") as handle:  # a live writer holds the target's lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("4242")
        handle.flush()
        result = zoo_cli("train", "binary", "--epochs", "1", "-o", "m.pt")
        assert_clean_error(result, "another zoo process (pid 4242) is writing m.pt: wait for it to finish", code=1)
        assert not (tmp_path / "m.pt").exists()
    assert zoo_cli("train", "binary", "--epochs", "1", "-o", "m.pt").exit_code == 0  # released: the next one wins
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                       (0o002, 0o664, 0o775)])
def test_modes_follow_the_umask(zoo_cli, tmp_path, umask, file_mode, dir_mode):
    import stat

    old = os.umask(umask)
    try:
        assert zoo_cli("export", "binary", "--epochs", "1", "-o", "b", "--runtime", "onnxruntime-cpu").exit_code == 0
        assert zoo_cli("train", "binary", "--epochs", "1", "-o", "m.pt").exit_code == 0
        np.save(tmp_path / "rows.npy", np.zeros((2, 30), dtype=np.float32))
        assert zoo_cli("predict", "b", "rows.npy", "-o", "p.csv").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert modes["b"] == dir_mode and modes["b/test_data_set_0"] == dir_mode
    for name in ("b/model.onnx", "b/manifest.json", "b/checkpoint.pt", "b/test_data_set_0/input_0.pb", "m.pt",
                 "p.csv"):
        assert modes[name] == file_mode, (name, oct(modes[name]))


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit, ValueError])
def test_an_interrupted_write_leaves_the_previous_file_and_no_temporary(tmp_path, raised):
    from zoo.files import atomic_write

    target = tmp_path / "out.csv"
    target.write_text("the previous file\n")

    def write(handle):
        handle.write(b"half of a new")
        raise raised()

    with pytest.raises(raised):
        atomic_write(target, write)
    assert target.read_text() == "the previous file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary file, no lock


def test_an_old_bundle_set_aside_by_a_killed_swap_is_restored_or_removed(bundle_copy, zoo_cli, tmp_path):
    """Where no atomic exchange exists, the swap renames the old bundle aside (.NAME.old-*) before the new one
    goes in: killed between the two renames, the next zoo command on the target puts the old one back; with
    the target in place, the copy set aside is removed."""
    import shutil

    old = tree(bundle_copy("binary"))
    (tmp_path / "binary").rename(tmp_path / ".binary.old-1234abcd")  # killed between the two renames
    verified = zoo_cli("verify", "binary", "--runtime", "onnxruntime-cpu")
    assert verified.exit_code == 0, verified.output
    assert [line for line in verified.stderr.splitlines() if line.startswith("zoo: ")] == [
        "zoo: restored binary from an interrupted run's copy"]  # one line: nothing was removed
    assert tree(tmp_path / "binary") == old and sorted(p.name for p in tmp_path.iterdir()) == ["binary"]
    shutil.copytree(tmp_path / "binary", tmp_path / ".binary.old-1234abcd")  # killed after the second rename
    remade = zoo_cli("report", "binary")
    assert remade.exit_code == 0, remade.output
    assert [line for line in remade.stderr.splitlines() if line.startswith("zoo: ")] == [
        "zoo: removed what an interrupted run left beside binary: .binary.old-1234abcd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary"]
    assert {k: v for k, v in tree(tmp_path / "binary").items() if k != "report.html"} == \
        {k: v for k, v in old.items() if k != "report.html"}

