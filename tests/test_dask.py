"""Batch scoring over many files, in one process and on real Dask clusters (worker processes, killed too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from zoo.exports.export.pipeline import export_bundle
from zoo.training import fit
from zoo.training.config import TrainConfig

from conftest import assert_clean_error

distributed = pytest.importorskip("distributed", reason="Dask is the [dask] extra: pip install 'zoo-onnx[dask]'")
psutil = pytest.importorskip("psutil")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A bundle, 8 Parquet files of 40,000 rows, and the same files scored one at a time, in this process."""
    root = tmp_path_factory.mktemp("dask")
    result = fit("multiclass", config=TrainConfig(epochs=2, device="cpu"))
    export_bundle(result, root / "bundle", runtimes=["onnxruntime-cpu"])
    rng = np.random.default_rng(0)
    (root / "data").mkdir()
    truth = {}
    for k in range(8):
        X = (result.split.X_test[rng.integers(0, len(result.split.X_test), 40_000)]).astype(np.float32)
        frame = pd.DataFrame(X, columns=list(result.feature_names))
        frame.insert(0, "id", np.arange(k * 40_000, (k + 1) * 40_000))
        frame.to_parquet(root / "data" / f"part-{k}.parquet", index=False)
        truth[f"part-{k}.parquet"] = X
    single = root / "single"
    single.mkdir()
    for name in truth:
        done = zoo(root, "predict", "bundle", f"data/{name}", "--id-column", "id", "-o", f"single/{name}")
        assert done.returncode == 0, done.stderr
    return root, result, truth


def zoo(cwd, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kwargs)


def same_as_single(root, out):
    for path in sorted((root / "single").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(out / path.name), pd.read_parquet(path))


def test_single_process_results_are_the_models(scored):
    import onnxruntime

    root, result, truth = scored
    session = onnxruntime.InferenceSession(str(root / "bundle" / "model.onnx"), providers=["CPUExecutionProvider"])
    for name, X in truth.items():
        out = pd.read_parquet(root / "single" / name)
        assert out["class_index"].tolist() == session.run(["label"], {"input": X})[0].tolist()


def test_a_local_cluster_gives_the_same_files(scored, tmp_path):
    root, _, _ = scored
    out = tmp_path / "out"
    run = zoo(root, "predict", "bundle", "data/*.parquet", "--id-column", "id", "-o", str(out),
              "--scheduler", "local:2")
    assert run.returncode == 0, run.stderr
    assert "wrote 8 files (320,000 rows)" in run.stderr
    same_as_single(root, out)
    again = zoo(root, "predict", "bundle", "data/*.parquet", "--id-column", "id", "-o", str(out),
                "--scheduler", "local:2")
    assert "8 of 8 inputs already scored" in again.stderr and "wrote 0 files" in again.stderr


def test_a_worker_killed_mid_run_is_replaced_and_its_part_rerun(scored, tmp_path):
    root, _, _ = scored
    out = tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-m", "zoo", "predict", "bundle", "data", "--id-column", "id",
                            "-o", str(out), "--scheduler", "local:2", "--batch-size", "4096"], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and job.poll() is None:
            for process in psutil.Process(job.pid).children(recursive=True):
                try:
                    writing = [f.path for f in process.open_files() if f.path.startswith(str(out))]
                except psutil.Error:
                    continue
                if writing:  # a worker in the middle of writing its part: kill it there
                    process.send_signal(signal.SIGKILL)
                    killed = writing
                    break
            time.sleep(0.01)
        stdout, stderr = job.communicate(timeout=240)
    finally:
        if job.poll() is None:
            job.kill()
    assert killed is not None, "the job ended before a worker could be killed mid-run"
    assert job.returncode == 0, stderr
    assert sorted(p.name for p in out.glob("*.parquet")) == [f"part-{k}.parquet" for k in range(8)]
    same_as_single(root, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".zoo-predict.json"]


def test_a_killed_job_resumes_where_it_stopped(scored, tmp_path):
    root, _, _ = scored
    out = tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-m", "zoo", "predict", "bundle", "data/*.parquet", "--id-column", "id",
                            "-o", str(out), "--scheduler", "local:2"], cwd=root, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.poll() is None:
        if out.exists() and list(out.glob("*.parquet")):
            break
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)  # the job and every worker: a lost machine
    job.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    assert 0 < len(finished) < 8, finished
    rerun = zoo(root, "predict", "bundle", "data/*.parquet", "--id-column", "id", "-o", str(out), "--scheduler",
                "local:2")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} of 8 inputs already scored" in rerun.stderr
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == finished  # not written again
    same_as_single(root, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".zoo-predict.json"]


def test_a_running_scheduler_is_joined_by_address(scored, tmp_path):
    from distributed import LocalCluster

    root, _, _ = scored
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        run = zoo(root, "predict", "bundle", "data/part-[01].parquet", "--id-column", "id", "-o", str(tmp_path / "o"),
                  "--scheduler", cluster.scheduler_address)
    assert run.returncode == 0, run.stderr
    for name in ("part-0.parquet", "part-1.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "o" / name), pd.read_parquet(root / "single" / name))


def test_a_directory_of_other_predictions_is_not_mixed_in(scored, zoo_cli, tmp_path):
    root, _, _ = scored
    data = str(root / "data" / "part-[0].parquet")
    bundle = str(root / "bundle")
    assert zoo_cli("predict", bundle, data, "--id-column", "id", "-o", "out").exit_code == 0
    assert_clean_error(zoo_cli("predict", bundle, data, "-o", "out", "--id-column", "id", "--format", "csv"),
                       "out holds predictions made with other settings", "--force")
    assert zoo_cli("predict", bundle, data, "-o", "out", "--id-column", "id", "--format", "csv", "--force") \
        .exit_code == 0
    assert (tmp_path / "out" / "part-0.csv").exists()
    assert_clean_error(zoo_cli("predict", bundle, str(root / "data" / "none-*.parquet"), "-o", "x"), "no file matches")
    assert_clean_error(zoo_cli("predict", bundle, data), "give -o DIR")


def test_without_dask_the_scheduler_option_says_what_to_install(scored, tmp_path):
    root, _, _ = scored
    script = ("import sys\n"
              "class Block:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name.split('.')[0] in ('distributed', 'dask'):\n"
              "            raise ImportError('blocked: ' + name)\n"
              "sys.meta_path.insert(0, Block())\n"
              "from zoo.cli import main\n"
              "sys.argv = ['zoo', *sys.argv[1:]]\n"
              "main()\n")
    run = subprocess.run([sys.executable, "-c", script, "predict", "bundle", "data/part-0.parquet", "--id-column", "id",
                          "-o", str(tmp_path / "o"), "--scheduler", "local:2"], cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.strip().splitlines() == [
        "Error: --scheduler needs Dask: pip install 'zoo-onnx[dask]'"], run.stderr
    assert not (tmp_path / "o").exists()  # refused before any work


def test_a_finished_part_whose_run_was_killed_before_it_unlocked_is_tidied(scored, zoo_cli, tmp_path):
    root, _, _ = scored
    data, bundle = str(root / "data" / "part-[01].parquet"), str(root / "bundle")
    assert zoo_cli("predict", bundle, data, "--id-column", "id", "-o", "out").exit_code == 0
    stale = tmp_path / "out" / ".part-0.parquet.lock"
    stale.write_text("999999")  # killed after its rename, before it removed its lock
    before = (tmp_path / "out" / "part-0.parquet").stat().st_mtime_ns
    again = zoo_cli("predict", bundle, data, "--id-column", "id", "-o", "out")
    assert again.exit_code == 0 and "2 of 2 inputs already scored" in again.stderr
    assert not stale.exists() and (tmp_path / "out" / "part-0.parquet").stat().st_mtime_ns == before
