"""Scale-out on torch.distributed: 2 CPU processes over gloo on loopback, DDP, rank 0 exports."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.training import TrainConfig, fit

from conftest import assert_clean_error


def zoo(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # 13 s: two worker processes; .ci/run exports on two processes besides
def test_export_on_two_processes_verifies_and_matches_one_process(tmp_path):
    proc = zoo("export", "multiclass", "--nproc-per-node", "2", "-o", "b", "--json", cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    report = json.loads(stdout)
    metrics = report["training"]["metrics"]
    assert metrics["processes"] == 2 and report["verified"]
    single = fit("multiclass", config=TrainConfig(device="cpu")).metrics["holdout_accuracy"]
    assert abs(metrics["holdout_accuracy"] - single) <= 0.01, (metrics["holdout_accuracy"], single)
    verify = subprocess.run([sys.executable, "-m", "zoo", "verify", "b"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


@pytest.mark.slow  # 11 s
def test_a_worker_killed_mid_run_stops_the_job(tmp_path):
    proc = zoo("export", "multiclass", "--nproc-per-node", "2", "--epochs", "5000", "-o", "b", cwd=tmp_path)
    workers = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = [c for c in children(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(workers) >= 2, "the workers never started"
    time.sleep(8)  # into training: imports, rendezvous and DDP set-up come first
    os.kill(workers[-1], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the job stopped: worker rank "), stderr
    assert "killed by SIGKILL" in lines[0] and lines[0].endswith("nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_a_rendezvous_port_in_use(zoo_cli, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = zoo_cli("export", "multiclass", "--nproc-per-node", "2", "--rdzv-endpoint", f"127.0.0.1:{port}",
                         "-o", "b")
    assert_clean_error(result, f"rendezvous port {port} on 127.0.0.1 is already in use")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, fragment", [("0", "0 is not in the range x>=1"),
                                             ("two", "'two' is not a valid integer")])
def test_bad_process_counts(zoo_cli, value, fragment):
    assert_clean_error(zoo_cli("export", "multiclass", "--nproc-per-node", value), fragment, code=2)
    assert_clean_error(zoo_cli("train", "multiclass", "--nproc-per-node", value), fragment, code=2)


def test_several_machines_need_an_endpoint(zoo_cli):
    assert_clean_error(zoo_cli("train", "multiclass", "--nnodes", "2"), "needs --rdzv-endpoint HOST:PORT")
