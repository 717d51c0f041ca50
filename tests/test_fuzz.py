"""Random bytes and mutated models given to `zoo verify` and `zoo predict`: a clean answer every time."""

import random
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.exports.pipeline import export_bundle
from zoo.training import TrainConfig, fit


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    export_bundle(fit("binary", config=TrainConfig(epochs=1, device="cpu")), root / "b")
    return (root / "b" / "model.onnx").read_bytes()


def run_cli(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(cli, args, prog_name="zoo")


def assert_clean(result):
    """Exit 0, or exit != 0 with one 'Error:' line; never an exception escaping, never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code not in (0, 1):
        pytest.fail(f"unexpected exit code {result.exit_code}: {result.output}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code and lines:
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "splice", "zero"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(1, len(data)):]
    elif kind == "splice":
        start = rng.randrange(len(data))
        data[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        start = rng.randrange(len(data))
        data[start:start + rng.randint(1, 64)] = bytes(64)[: min(64, len(data) - start)]
    return bytes(data)


@pytest.mark.parametrize("seed", range(60))
def test_mutated_models(tmp_path, monkeypatch, model_bytes, seed):
    rng = random.Random(seed)
    (tmp_path / "m.onnx").write_bytes(mutate(model_bytes, rng) if seed else model_bytes)
    np.savetxt(tmp_path / "rows.csv", np.random.default_rng(seed).normal(size=(3, 30)), delimiter=",")
    assert_clean(run_cli(["verify", "m.onnx"], tmp_path, monkeypatch))
    assert_clean(run_cli(["predict", "m.onnx", "rows.csv"], tmp_path, monkeypatch))


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    (tmp_path / "m.onnx").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096))))
    (tmp_path / "rows.csv").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 512))))
    for args in (["verify", "m.onnx"], ["predict", "m.onnx", "rows.csv"]):
        result = run_cli(args, tmp_path, monkeypatch)
        assert_clean(result)
        assert result.exit_code == 1


@pytest.mark.parametrize("seed", range(20))
def test_random_inputs_to_a_good_model(tmp_path, monkeypatch, model_bytes, seed):
    rng = random.Random(seed)
    (tmp_path / "m.onnx").write_bytes(model_bytes)
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
    suffix = rng.choice([".csv", ".npy", ".npz"])
    (tmp_path / f"in{suffix}").write_bytes(blob)
    assert_clean(run_cli(["predict", "m.onnx", f"in{suffix}"], tmp_path, monkeypatch))
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)
