"""Random bytes, mutated files and crafted bundles given to zoo verify, predict and report: a clean answer, every time.

A bundle's pieces are fuzzed two ways. *Mutated*: one file changed in place, as a disk or a careless edit
would; the manifest's size and sha256 catch every such change, so the command must fail, in one line.
*Crafted*: the file changed and the manifest resealed to match, as someone making a hostile bundle would;
the parsers behind the checksum then meet the bytes themselves, and the answer must be a success or one line.
"""

import json
import random
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.exports.export.pipeline import export_bundle
from zoo.training import TrainConfig, fit

from conftest import reseal

#: The files of a bundle that zoo reads (report.html it only writes).
PIECES = ["model.onnx", "evaluation.npz", "test_data_set_0/input_0.pb", "test_data_set_1/output_0.pb",
          "test_data_set_2/output_1.pb", "test_data_set_3/input_0.pb"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    export_bundle(fit("binary", config=TrainConfig(epochs=1, device="cpu")), root / "b", card=False)
    return root / "b"


@pytest.fixture(scope="module")
def model_bytes(bundle):
    return (bundle / "model.onnx").read_bytes()


def run_cli(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(cli, args, prog_name="zoo")


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("zoo: ")]


def assert_fails_in_one_line(result):
    """Exit 1 and exactly one 'Error:' line on stderr; never an exception escaping, never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def assert_clean(result):
    """Exit 0 with nothing but notices on stderr, or a failure in one line."""
    if result.exit_code == 0:
        assert result.exception is None and error_lines(result) == [], result.stderr
    else:
        assert_fails_in_one_line(result)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` changed by a flip, a cut, a splice or a run of zeros; never returned unchanged."""
    while True:
        out = bytearray(data)
        kind = rng.choice(["flip", "truncate", "splice", "zero"])
        if kind == "flip":
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del out[rng.randrange(0, len(out)):]
        elif kind == "splice":
            start = rng.randrange(len(out))
            out[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        else:
            start = rng.randrange(len(out))
            out[start:start + rng.randint(1, 64)] = bytes(64)[: min(64, len(out) - start)]
        if bytes(out) != data:
            return bytes(out)


def copy_with(bundle, tmp_path, seed, *, crafted: bool):
    """The bundle copied, one of its pieces mutated (and, when ``crafted``, the manifest resealed)."""
    rng = random.Random(seed)
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    piece = PIECES[seed % len(PIECES)]
    (copy / piece).write_bytes(mutate((copy / piece).read_bytes(), rng))
    if crafted:
        reseal(copy, piece)
    return piece


@pytest.mark.parametrize("seed", range(24))
def test_a_mutated_piece_fails_verify_in_one_line(bundle, tmp_path, monkeypatch, seed):
    piece = copy_with(bundle, tmp_path, seed, crafted=False)
    command = ["report", "b"] if piece == "evaluation.npz" else ["verify", "b"]
    if piece == "evaluation.npz":
        pytest.importorskip("matplotlib", reason="zoo report needs matplotlib (the [report] extra)")
    result = run_cli(command, tmp_path, monkeypatch)
    assert_fails_in_one_line(result)
    assert "checksum mismatch" in result.stderr or "the manifest says" in result.stderr, result.stderr


@pytest.mark.parametrize("seed", range(36))
def test_a_crafted_piece_meets_a_clean_answer(bundle, tmp_path, monkeypatch, seed):
    piece = copy_with(bundle, tmp_path, seed, crafted=True)
    np.savetxt(tmp_path / "rows.csv", np.random.default_rng(seed).normal(size=(3, 30)), delimiter=",")
    if piece == "evaluation.npz":  # read by the model card and by variants
        pytest.importorskip("matplotlib", reason="zoo report needs matplotlib (the [report] extra)")
        assert_clean(run_cli(["report", "b"], tmp_path, monkeypatch))
        return
    assert_clean(run_cli(["verify", "b"], tmp_path, monkeypatch))
    assert_clean(run_cli(["predict", "b", "rows.csv"], tmp_path, monkeypatch))


@pytest.mark.parametrize("seed", range(24))
def test_a_mutated_manifest_meets_a_clean_answer(bundle, tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    shutil.copytree(bundle, tmp_path / "b")
    manifest = (tmp_path / "b" / "manifest.json").read_bytes()
    if seed % 2:  # bytes: a broken JSON text, mostly
        (tmp_path / "b" / "manifest.json").write_bytes(mutate(manifest, rng))
    else:  # structure: valid JSON, one field of another type or gone
        data = json.loads(manifest)
        path, node = [], data
        while isinstance(node, (dict, list)) and node:
            key = rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
            path.append(key)
            if rng.random() < 0.4:
                break
            node = node[key]
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        replacement = rng.choice([None, "text", -1, 1e308, [], {}, [1, 2], {"x": 1}, True, "../../etc/passwd"])
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
        (tmp_path / "b" / "manifest.json").write_text(json.dumps(data))
    np.savetxt(tmp_path / "rows.csv", np.zeros((2, 30)), delimiter=",")
    for args in (["verify", "b"], ["predict", "b", "rows.csv"], ["info", "b"], ["variants", "b"]):
        assert_clean(run_cli(args, tmp_path, monkeypatch))


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    (tmp_path / "m.onnx").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096))))
    (tmp_path / "rows.csv").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 512))))
    for args in (["verify", "m.onnx"], ["predict", "m.onnx", "rows.csv"]):
        assert_fails_in_one_line(run_cli(args, tmp_path, monkeypatch))


@pytest.mark.parametrize("seed", range(20))
def test_random_inputs_to_a_good_model(tmp_path, monkeypatch, model_bytes, seed):
    rng = random.Random(seed)
    (tmp_path / "m.onnx").write_bytes(model_bytes)
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
    suffix = rng.choice([".csv", ".npy", ".npz"])
    (tmp_path / f"in{suffix}").write_bytes(blob)
    assert_clean(run_cli(["predict", "m.onnx", f"in{suffix}"], tmp_path, monkeypatch))
