"""SIGKILL at every file-system step of `zoo export --force` and `zoo train -o --force`.

strace's fault injection kills the process at the k-th call of one system call
(every fsync, rename, mkdir, and a sample of the unlinks of the old version),
for every k. Afterwards the target must be the complete old version or the
complete new one (never absent, never mixed), and the next zoo command on it
must remove whatever the killed run left behind, saying so in one line.
"""

import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import tree

STRACE = shutil.which("strace")
STEPS = ("fsync", "fdatasync", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "unlinkat", "unlink")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(STRACE is None, reason="needs strace (apt-get install -y strace)")]
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}, "PYTHONDONTWRITEBYTECODE": "1",
       "ZOO_LOAD_PLUGINS": ""}


def zoo(cwd, *args, strace=()):
    return subprocess.run([*strace, sys.executable, "-m", "zoo", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


def calls(cwd, args) -> dict[str, int]:
    """How many times each step's system call is made by one run of ``zoo args``."""
    log = cwd / "strace.log"
    done = zoo(cwd, *args, strace=(STRACE, "-f", "-qq", "-o", str(log), "-e", f"trace={','.join(STEPS)}"))
    assert done.returncode == 0, done.stderr
    counts = collections.Counter(m.group(1) for line in log.read_text().splitlines()
                                 if (m := re.match(r"^\d+\s+(\w+)\(", line)))
    log.unlink()
    return counts


def plan(counts: dict[str, int]) -> list[tuple[str, int]]:
    steps = []
    for name, n in sorted(counts.items()):
        ks = range(1, n + 1) if name not in ("unlinkat", "unlink") else sorted({1, 2, n // 2, n - 1, n} - {0})
        steps += [(name, k) for k in ks]
    return steps


def killed_at(cwd, name, k, args):
    return zoo(cwd, *args, strace=(STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={name}",
                                   "-e", f"inject={name}:signal=KILL:when={k}"))


def each_kill(cwd, args):
    """Run ``zoo args`` killed at each step in turn, yielding the step; at the end, most runs must have been killed."""
    steps = plan(calls(cwd, args))
    assert {"fsync"} <= {name for name, _ in steps} and {"rename", "renameat2"} & {name for name, _ in steps}, steps
    killed = 0
    for name, k in steps:
        run = killed_at(cwd, name, k, args)
        assert run.returncode in (0, -9, 137), (name, k, run.returncode, run.stderr[-500:])
        killed += run.returncode != 0  # 0: this run made fewer such calls than the counting run
        yield name, k
    assert killed >= 0.8 * len(steps), (killed, steps)


def leftovers(cwd, keep):
    return sorted(p.name for p in cwd.iterdir() if p.name not in keep)


def test_sigkill_at_every_step_of_an_export_keeps_a_whole_bundle(tmp_path):
    # The card is one more file of the staged bundle; its own steps are killed in the report test below.
    args = ["export", "binary", "--epochs", "1", "-o", "b", "--force", "--no-card", "--runtime", "onnxruntime-cpu"]
    first = tmp_path / "0"
    first.mkdir()
    assert zoo(first, *args[:-3], "--runtime", "onnxruntime-cpu").returncode == 0
    steps = plan(calls(first, args))
    assert {"fsync", "renameat2"} <= {name for name, _ in steps}, steps
    # Every step is a whole export in a fresh interpreter, on about one core: two run at once, each in its own
    # copy of the folder, taking every other step.
    second = tmp_path / "1"
    shutil.copytree(first, second, symlinks=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        halves = [pool.submit(kill_export_at, cwd, steps[i::2], args) for i, cwd in enumerate((first, second))]
        outcomes = sum((half.result() for half in halves), collections.Counter())
    assert outcomes["old"] and outcomes["new"], outcomes  # kills before and after the swap were both tried
    assert outcomes["killed"] >= 0.8 * len(steps), outcomes


def kill_export_at(cwd, steps, args) -> collections.Counter:
    """``zoo args`` killed at each of ``steps`` in ``cwd``: what is left is the whole old bundle or the whole new
    one, and the next command tidies up without touching it."""
    old = tree(cwd / "b")
    outcomes = collections.Counter()
    for name, k in steps:
        run = killed_at(cwd, name, k, args)
        assert run.returncode in (0, -9, 137), (name, k, run.returncode, run.stderr[-500:])
        outcomes["killed" if run.returncode else "finished"] += 1  # 0: this run made fewer such calls
        now = tree(cwd / "b")
        if now == old:
            outcomes["old"] += 1
        else:  # the new bundle, complete: it verifies on its own test data and checksum
            verified = zoo(cwd, "verify", "b", "--runtime", "onnxruntime-cpu", "--json")
            assert verified.returncode == 0, (name, k, verified.stdout[-800:], verified.stderr)
            assert json.loads(verified.stdout)["verified"]
            outcomes["new"] += 1
            old = tree(cwd / "b")
        left = leftovers(cwd, {"b"})
        after = zoo(cwd, "verify", "b", "--runtime", "onnxruntime-cpu")  # the next command on the target
        assert after.returncode == 0, (name, k, after.stdout[-800:], after.stderr)
        assert leftovers(cwd, {"b"}) == [], (name, k, left)
        if left:
            assert re.search(r"^zoo: (removed what an interrupted run left beside b|an interrupted run .* had left "
                             r"its lock on b)", after.stderr, re.M), (name, k, left, after.stderr)
        assert tree(cwd / "b") == old  # tidying never touches the bundle
    return outcomes


def test_sigkill_at_every_step_of_a_checkpoint_write(tmp_path):
    args = ["train", "binary", "--epochs", "1", "-o", "m.pt", "--force"]
    assert zoo(tmp_path, *args).returncode == 0
    before = (tmp_path / "m.pt").read_bytes()
    for name, k in each_kill(tmp_path, args):
        now = (tmp_path / "m.pt").read_bytes()
        if now != before:  # a whole new checkpoint: it exports
            exported = zoo(tmp_path, "export", "binary", "--checkpoint", "m.pt", "-o", f"x{name}{k}",
                           "--runtime", "onnxruntime-cpu")
            assert exported.returncode == 0, (name, k, exported.stderr)
            shutil.rmtree(tmp_path / f"x{name}{k}")
            before = now
        nxt = zoo(tmp_path, *args)  # the next command on the target tidies up, then writes it whole
        assert nxt.returncode == 0, nxt.stderr
        assert leftovers(tmp_path, {"m.pt"}) == [], (name, k)
        before = (tmp_path / "m.pt").read_bytes()


def test_sigkill_at_every_step_of_zoo_report_keeps_a_whole_card(tmp_path):
    assert zoo(tmp_path, "export", "binary", "--epochs", "1", "-o", "b", "--runtime", "onnxruntime-cpu").returncode == 0
    args = ["report", "b"]
    card = (tmp_path / "b" / "report.html").read_bytes()
    for name, k in each_kill(tmp_path, args):
        now = (tmp_path / "b" / "report.html").read_bytes()
        assert now == card or (now.endswith(b"</html>\n") and b'id="usage"' in now), (name, k)
        after = zoo(tmp_path, *args)  # the next command on the card tidies up, then writes it whole
        assert after.returncode == 0, (name, k, after.stderr)
        card = (tmp_path / "b" / "report.html").read_bytes()
        assert leftovers(tmp_path, {"b"}) == [] and not [p for p in (tmp_path / "b").iterdir()
                                                          if p.name.startswith(".")], (name, k)


def test_every_file_and_directory_is_fsynced_before_the_swap(tmp_path):
    """A power cut after "verified" must not leave empty files: each is fsynced before the exchange."""
    log = tmp_path / "strace.log"
    args = ["export", "binary", "--epochs", "1", "-o", "b", "--runtime", "onnxruntime-cpu"]
    assert zoo(tmp_path, *args).returncode == 0
    done = zoo(tmp_path, *args, "--force", strace=(STRACE, "-f", "-qq", "-y", "-o", str(log),
                                                   "-e", "trace=fsync,fdatasync,renameat2,rename"))
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    swap = next(i for i, line in enumerate(lines) if "renameat2(" in line and "RENAME_EXCHANGE" in line)
    synced = {m.group(1) for line in lines[:swap] if (m := re.search(r"fsync\(\d+<([^>]+)>", line))}
    staged = re.search(r'renameat2\(AT_FDCWD(?:<[^>]*>)?, "([^"]+)"', lines[swap]).group(1)
    staging = str(tmp_path / staged) if not staged.startswith("/") else staged
    expected = {str(p).replace(str(tmp_path / "b"), staging) for p in (tmp_path / "b").rglob("*")} | {staging}
    assert expected - synced == set()
    assert any(str(tmp_path) == m.group(1) for line in lines[swap:]
               if (m := re.search(r"fsync\(\d+<([^>]+)>", line)))  # the parent, after the swap


def synced_before_rename(log: str, target: str) -> list[str]:
    """The temporary files renamed onto ``target`` (a basename) whose own fd was fsynced before that rename.

    From ``strace -f -e trace=openat,close,fsync,rename,renameat,renameat2``: the fd each temporary file was
    opened as (per process), an fsync of that fd while it was still open, then the rename.
    """
    pending, lines = {}, []
    for line in log.splitlines():  # stitch calls that another thread interrupted
        m = re.match(r"^(\d+)\s+(.*)$", line)
        if not m:
            continue
        pid, call = m.groups()
        if call.endswith("<unfinished ...>"):
            pending[pid] = call[:-len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"^<\.\.\. \w+ resumed>\s?(.*)$", call)
        if resumed:
            call = pending.pop(pid, "") + resumed.group(1)
        lines.append((pid, call))
    open_fds: dict[tuple[str, str], str] = {}
    synced, renamed = set(), []
    for pid, call in lines:
        if m := re.match(r'^openat\([^,]+, "([^"]+)", [^)]*\)\s+= (\d+)$', call):
            open_fds[(pid, m.group(2))] = os.path.basename(m.group(1))
        elif m := re.match(r"^close\((\d+)\)", call):
            open_fds.pop((pid, m.group(1)), None)
        elif m := re.match(r"^fsync\((\d+)\)\s+= 0$", call):
            if (pid, m.group(1)) in open_fds:
                synced.add(open_fds[(pid, m.group(1))])
        elif call.startswith(("rename(", "renameat(", "renameat2(")) and call.endswith("= 0"):
            source, dest = (os.path.basename(p) for p in re.findall(r'"([^"]+)"', call)[:2])
            if dest == target and source.startswith(f".{target}.") and source.endswith(".tmp"):
                renamed.append((source, source in synced))
    assert renamed, f"no temporary file was renamed onto {target}"
    return [source for source, was_synced in renamed if was_synced]


def test_each_single_file_is_fsynced_before_its_rename(tmp_path):
    """train -o, predict -o and report write one file each: its bytes reach the disk before the name does."""
    import numpy as np

    assert zoo(tmp_path, "export", "binary", "--epochs", "1", "-o", "b", "--no-card",
               "--runtime", "onnxruntime-cpu").returncode == 0
    np.save(tmp_path / "rows.npy", np.zeros((3, 30), dtype=np.float32))
    log = tmp_path / "strace.log"
    trace = (STRACE, "-f", "-qq", "-o", str(log), "-e", "trace=openat,close,fsync,rename,renameat,renameat2")
    synced = {}
    for args, target in ((["train", "binary", "--epochs", "1", "-o", "m.pt"], "m.pt"),
                         (["predict", "b", "rows.npy", "-o", "p.csv"], "p.csv"),
                         (["report", "b"], "report.html")):
        done = zoo(tmp_path, *args, strace=trace)
        assert done.returncode == 0, (args, done.stderr)
        synced[target] = len(synced_before_rename(log.read_text(), target))
        log.unlink()
    assert synced == {"m.pt": 1, "p.csv": 1, "report.html": 1}  # each temporary file's fd, fsynced, then renamed
