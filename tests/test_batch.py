"""Batch scoring: Parquet, Arrow and CSV in; Parquet, CSV, JSON lines and .npy out; columns by name.

The reference side never goes through zoo's readers, writers or Predictor: rows
are made here with numpy, run through a bare onnxruntime session and the trained
torch module, and the outputs are read back with pandas and numpy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from zoo.exports.export.pipeline import export_bundle
from zoo.training import fit
from zoo.training.config import TrainConfig

from conftest import assert_clean_error, export_both, torch_labels, tree


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return root, export_both(root, runtimes=["onnxruntime-cpu"])


@pytest.fixture
def bundle(bundles, tmp_path):
    root, results = bundles

    def copy(name="multiclass"):
        shutil.copytree(root / name, tmp_path / name)
        return results[name]

    return copy


def rows_of(result, n=500, seed=0):
    """Raw feature rows like the training data's (its range), made with numpy alone."""
    X = result.split.X_test
    rng = np.random.default_rng(seed)
    return (X[rng.integers(0, len(X), n)] + rng.normal(0, 0.5, (n, X.shape[1]))).astype(np.float32)


def frame(result, X, ids=True):
    df = pd.DataFrame(X, columns=list(result.feature_names))
    if ids:
        df.insert(0, "id", [f"row-{i}" for i in range(len(X))])
    return df


def reference(tmp_path, name, X):
    """A bare onnxruntime session on the bundle's file: probabilities and labels, no zoo code."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / name / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(["probabilities", "label"], {session.get_inputs()[0].name: X})
    return probabilities, labels


def read_output(path):
    """The output file as a DataFrame, read by pandas/numpy (never by zoo)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, dtype={"id": str, "label": str})
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in path.read_text().splitlines()]
        flat = [{k: v for k, v in r.items() if k != "probabilities"} |
                {f"p_{c}": p for c, p in r["probabilities"].items()} for r in records]
        return pd.DataFrame(flat).astype({"label": str})
    return pd.DataFrame(np.load(path))


def assert_scores(df, result, X, probabilities, labels, ids=None):
    names = list(result.class_labels)
    assert list(df["class_index"]) == labels.tolist()
    assert np.array_equal(labels, torch_labels(result, X))
    assert list(df["label"]) == [names[i] for i in labels]
    columns = [c for c in df.columns if c.startswith("p_")]
    assert columns == [f"p_{c}" for c in (names if len(columns) > 1 else names[1:])]
    np.testing.assert_array_equal(df[columns].to_numpy(np.float32), probabilities)  # written exactly
    if ids is not None:
        assert list(df.columns[:1]) == ["id"] and list(df["id"]) == ids


@pytest.mark.parametrize("source", ["rows.parquet", "rows.feather", "rows.csv"])
@pytest.mark.parametrize("target", ["out.parquet", "out.csv", "out.jsonl"])
def test_a_table_with_an_id_column_is_scored_into_every_format(zoo_cli, bundle, tmp_path, source, target):
    result = bundle()
    X = rows_of(result)
    df = frame(result, X)
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    feather.write_feather(df, tmp_path / "rows.feather")
    df.to_csv(tmp_path / "rows.csv", index=False)
    run = zoo_cli("predict", "multiclass", source, "--id-column", "id", "-o", target, "--batch-size", "128")
    assert run.exit_code == 0, run.output
    assert "wrote 500 rows" in run.stderr
    probabilities, labels = reference(tmp_path, "multiclass", X)
    assert_scores(read_output(tmp_path / target), result, X, probabilities, labels, ids=list(df["id"]))


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_npy_in_and_npy_out_without_ids(zoo_cli, bundle, tmp_path, name):
    result = bundle(name)
    X = rows_of(result, 300)
    np.save(tmp_path / "rows.npy", X)
    run = zoo_cli("predict", name, "rows.npy", "-o", "out.npy")
    assert run.exit_code == 0, run.output
    out = np.load(tmp_path / "out.npy")  # a structured array: no pickle needed
    assert out.dtype.names[:2] == ("label", "class_index") and len(out) == 300
    probabilities, labels = reference(tmp_path, name, X)
    assert_scores(pd.DataFrame(out), result, X, probabilities, labels)


def test_numeric_ids_go_into_an_npy_and_text_ids_are_refused_there(zoo_cli, bundle, tmp_path):
    result = bundle()
    X = rows_of(result, 50)
    df = frame(result, X, ids=False)
    df.insert(0, "id", np.arange(1000, 1050, dtype=np.int64))
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    assert zoo_cli("predict", "multiclass", "rows.parquet", "--id-column", "id", "-o", "out.npy").exit_code == 0
    assert np.load(tmp_path / "out.npy")["id"].tolist() == list(range(1000, 1050))
    frame(result, X).to_parquet(tmp_path / "text.parquet", index=False)
    assert_clean_error(zoo_cli("predict", "multiclass", "text.parquet", "--id-column", "id", "-o", "t.npy"),
                       "an .npy output holds numbers only", "write .parquet or .csv")
    assert not (tmp_path / "t.npy").exists()


def test_columns_are_taken_by_name_whatever_their_order(zoo_cli, bundle, tmp_path):
    result = bundle()
    X = rows_of(result, 200)
    df = frame(result, X)
    shuffled = df[["id"] + list(np.random.default_rng(1).permutation(result.feature_names))]
    shuffled.to_parquet(tmp_path / "shuffled.parquet", index=False)
    run = zoo_cli("predict", "multiclass", "shuffled.parquet", "--id-column", "id", "-o", "out.parquet")
    assert run.exit_code == 0, run.output
    probabilities, labels = reference(tmp_path, "multiclass", X)
    assert_scores(pd.read_parquet(tmp_path / "out.parquet"), result, X, probabilities, labels, list(df["id"]))


def test_columns_option_maps_other_names_onto_the_features(zoo_cli, bundle, tmp_path):
    result = bundle()
    X = rows_of(result, 100)
    renamed = pd.DataFrame(X, columns=[f"f{i}" for i in range(64)])
    renamed["note"] = "text"
    renamed.to_parquet(tmp_path / "renamed.parquet", index=False)
    assert_clean_error(zoo_cli("predict", "multiclass", "renamed.parquet"), "lacks the feature columns 'pixel_0_0'",
                       "--columns")
    picked = ",".join(f"f{i}" for i in range(64))
    run = zoo_cli("predict", "multiclass", "renamed.parquet", "--columns", picked, "-o", "out.csv")
    assert run.exit_code == 0, run.output
    probabilities, labels = reference(tmp_path, "multiclass", X)
    assert_scores(read_output(tmp_path / "out.csv"), result, X, probabilities, labels)


def test_a_bundle_without_feature_names_takes_every_numeric_column(zoo_cli, tmp_path):
    data = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    np.savez(tmp_path / "train.npz", X=data, y=(data[:, 0] > 0).astype(np.int64))
    result = fit("multiclass", data=str(tmp_path / "train.npz"), config=TrainConfig(epochs=2, device="cpu"))
    assert result.feature_names is None
    export_bundle(result, tmp_path / "plain", runtimes=["onnxruntime-cpu"])
    table = pd.DataFrame(data[:20], columns=list("abcde"))
    table.insert(2, "name", "x")  # not numeric: left out
    table.insert(0, "key", np.arange(20))  # numeric, but the id column: left out
    table.to_parquet(tmp_path / "in.parquet", index=False)
    run = zoo_cli("predict", "plain", "in.parquet", "--id-column", "key", "-o", "out.parquet")
    assert run.exit_code == 0, run.output
    probabilities, labels = reference(tmp_path, "plain", data[:20])
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["key"].tolist() == list(range(20)) and out["class_index"].tolist() == labels.tolist()
    np.testing.assert_array_equal(out[["p_0", "p_1"]].to_numpy(np.float32), probabilities)
    assert_clean_error(zoo_cli("predict", "plain", "in.parquet"), "has 6 numeric columns (not numeric: 'name')",
                       "takes 5 features")


def test_a_csv_header_picks_columns_by_name_and_a_headerless_csv_is_positional(zoo_cli, bundle, tmp_path):
    result = bundle("binary")  # breast-cancer: names with spaces ("mean radius")
    X = rows_of(result, 40)
    frame(result, X).to_csv(tmp_path / "named.csv", index=False)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "named.csv").read_bytes())
    np.savetxt(tmp_path / "bare.csv", X, delimiter=",")
    outputs = [zoo_cli("predict", "binary", "named.csv", "--id-column", "id").stdout,
               zoo_cli("predict", "binary", "bom.csv", "--id-column", "id").stdout]
    assert outputs[0] == outputs[1] and outputs[0].startswith("id,label,class_index,p_")
    from io import StringIO

    bare = pd.read_csv(StringIO(zoo_cli("predict", "binary", "bare.csv").stdout))
    named = pd.read_csv(StringIO(outputs[0]))
    assert named["id"].tolist() == [f"row-{i}" for i in range(40)]
    pd.testing.assert_frame_equal(named.drop(columns="id"), bare)


@pytest.mark.parametrize("make, args, fragment", [
    (lambda t, df: df.drop(columns=["pixel_3_3"]).to_parquet(t / "in.parquet"), ["--id-column", "id"],
     "lacks the feature column 'pixel_3_3'"),
    (lambda t, df: df.assign(extra=1.0).to_parquet(t / "in.parquet"), ["--id-column", "id"],
     "has column 'extra' that the model does not take"),
    (lambda t, df: df.to_parquet(t / "in.parquet"), [], "has column 'id' that the model does not take"),
    (lambda t, df: df.to_parquet(t / "in.parquet"), ["--id-column", "key"], "has no column 'key' (--id-column"),
    (lambda t, df: df.assign(pixel_0_0="a").to_parquet(t / "in.parquet"), ["--id-column", "id"],
     "column 'pixel_0_0' holds large_string values, not numbers"),
    (lambda t, df: df.to_parquet(t / "in.parquet"), ["--id-column", "id", "--columns", "pixel_0_0,pixel_0_1"],
     "names 2 columns, but the model takes 64 features"),
    (lambda t, df: df.to_parquet(t / "in.parquet"), ["--columns", "nope"], "has no column 'nope' (--columns"),
    (lambda t, df: df.rename(columns={"id": "label"}).to_parquet(t / "in.parquet"), ["--id-column", "label"],
     "the id column 'label' has the name of an output column"),
    (lambda t, df: df.assign(pixel_1_1=df["pixel_1_1"].where(df.index != 3)).to_parquet(t / "in.parquet"),
     ["--id-column", "id"], "row 4, feature 10 ('pixel_1_1') is nan"),
    (lambda t, df: (t / "in.parquet").write_bytes(b"PAR1 not really"), [], "not a readable Parquet file"),
    (lambda t, df: (t / "in.feather").write_bytes(b"ARROW1 not really"), [], "not an Arrow IPC"),
    (lambda t, df: df.assign(pixel_2_2=df["pixel_2_2"].astype(str).where(df.index != 7, "abc"))
     .to_csv(t / "in.csv", index=False), ["--id-column", "id"], "in.csv line 9, column 20 ('pixel_2_2'): 'abc' is "
     "not a number"),
    (lambda t, df: (t / "in.csv").write_text("id," + ",".join(df.columns[1:]) + "\nx,1,2\n"), ["--id-column", "id"],
     "in.csv line 2: 3 values, but the header has 65"),
    (lambda t, df: np.save(t / "in.npy", df.iloc[:, 1:].to_numpy(np.float32)), ["--id-column", "id"],
     "--id-column applies to Parquet, Arrow and CSV inputs"),
    (lambda t, df: np.savetxt(t / "in.csv", df.iloc[:, 1:].to_numpy(), delimiter=","), ["--columns", "a"],
     "has no header line to pick --columns from"),
])
def test_bad_tables_get_one_line_and_no_output(zoo_cli, bundle, tmp_path, make, args, fragment):
    result = bundle()
    make(tmp_path, frame(result, rows_of(result, 20)))
    source = next(p.name for p in tmp_path.iterdir() if p.name.startswith("in."))
    (tmp_path / "out.parquet").write_bytes(b"the previous output")
    before = tree(tmp_path)
    assert_clean_error(zoo_cli("predict", "multiclass", source, "-o", "out.parquet", "--force", *args), fragment)
    assert tree(tmp_path) == before  # the previous output intact, no temporary left


@pytest.mark.parametrize("args, fragment", [
    (["-o", "out.txt"], "cannot tell the format of out.txt"),
    (["-o", "out.csv", "--format", "parquet"], "--format parquet contradicts -o out.csv"),
    (["--format", "parquet"], "parquet is binary: write it to a file with -o FILE.parquet"),
    (["--scheduler", "spark://x"], "give local:N"),
    (["--scheduler", "local:0"], "give the number of worker processes"),
    (["--columns", "a,,b"], "has an empty name"),
])
def test_bad_output_options_are_refused(zoo_cli, bundle, tmp_path, args, fragment):
    result = bundle()
    np.save(tmp_path / "rows.npy", rows_of(result, 5))
    assert_clean_error(zoo_cli("predict", "multiclass", "rows.npy", *args), fragment)


def test_the_csv_header_is_valid_csv_whatever_the_class_names(zoo_cli, tmp_path):
    data = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=data, y=(data[:, 0] > 0).astype(np.int64),
             class_labels=np.array(['no, "never"', "yes\nplease"]))
    result = fit("multiclass", data=str(tmp_path / "d.npz"), config=TrainConfig(epochs=1, device="cpu"))
    export_bundle(result, tmp_path / "odd", runtimes=["onnxruntime-cpu"])
    np.save(tmp_path / "rows.npy", data[:10])
    assert zoo_cli("predict", "odd", "rows.npy", "-o", "out.csv").exit_code == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["label", "class_index", 'p_no, "never"', "p_yes\nplease"]
    assert set(out["label"]) <= {'no, "never"', "yes\nplease"} and len(out) == 10


def test_csv_on_stdin_with_a_header_and_an_id(bundle, tmp_path):
    import subprocess
    import sys

    result = bundle()
    X = rows_of(result, 30)
    text = frame(result, X).to_csv(index=False).encode()
    piped = subprocess.run([sys.executable, "-m", "zoo", "predict", "multiclass", "-", "--id-column", "id"],
                           input=text, capture_output=True, cwd=tmp_path, timeout=120)
    assert piped.returncode == 0, piped.stderr
    from io import StringIO

    out = pd.read_csv(StringIO(piped.stdout.decode()), dtype={"label": str})
    probabilities, labels = reference(tmp_path, "multiclass", X)
    assert_scores(out, result, X, probabilities, labels, ids=[f"row-{i}" for i in range(30)])


def test_parquet_is_read_a_batch_at_a_time(bundle, tmp_path):
    from zoo.tables.readers import Columns, read

    result = bundle()
    X = rows_of(result, 1000)
    pq.write_table(pa.Table.from_pandas(frame(result, X), preserve_index=False), tmp_path / "rows.parquet",
                   row_group_size=1000)  # one row group: still read in batches
    chunks = list(read(tmp_path / "rows.parquet", Columns(64, result.feature_names, None, "id"), 300))
    assert [len(c.X) for c in chunks] == [300, 300, 300, 100]
    assert np.array_equal(np.concatenate([c.X for c in chunks]), X)
    assert sum((c.ids.to_pylist() for c in chunks), []) == [f"row-{i}" for i in range(1000)]


def test_text_ids_with_commas_quotes_and_newlines_round_trip_through_csv(zoo_cli, bundle, tmp_path):
    import csv

    result = bundle()
    ids = ["a,b", 'say "hi"', "two\nlines", 'all, "of"\nthem', "plain", "", " padded ", "crlf\r\nend"]
    X = rows_of(result, len(ids))
    df = frame(result, X, ids=False)
    df.insert(0, "ID", ids)
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    run = zoo_cli("predict", "multiclass", "rows.parquet", "--id-column", "ID", "-o", "out.csv")
    assert run.exit_code == 0, run.output
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        read = list(csv.reader(handle))
    assert read[0][:3] == ["ID", "label", "class_index"] and len(read) == 1 + len(ids)
    assert [row[0] for row in read[1:]] == ids  # every id exactly, whatever it holds
    _, labels = reference(tmp_path, "multiclass", X)
    assert [int(row[2]) for row in read[1:]] == labels.tolist()
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype={"ID": str})
    assert out["ID"].tolist() == ids and len(out) == len(ids)


def test_a_parquet_file_with_a_repeated_column_name_is_refused(zoo_cli, bundle, tmp_path):
    result = bundle()
    table = pa.Table.from_pandas(frame(result, rows_of(result, 20)), preserve_index=False)
    table = table.append_column("pixel_0_0", pa.array(np.zeros(20, np.float32)))  # a second 'pixel_0_0'
    assert table.schema.names.count("pixel_0_0") == 2
    pq.write_table(table, tmp_path / "dup.parquet")
    before = tree(tmp_path)
    assert_clean_error(zoo_cli("predict", "multiclass", "dup.parquet", "--id-column", "id", "-o", "out.csv"),
                       "dup.parquet: column 'pixel_0_0' appears more than once")
    assert tree(tmp_path) == before  # nothing written, no temporary left


def test_force_rescores_every_finished_part_of_a_directory(zoo_cli, bundle, tmp_path):
    result = bundle()
    (tmp_path / "in").mkdir()
    X = {name: rows_of(result, 30, seed) for seed, name in enumerate(("a", "b"))}
    for name, rows in X.items():
        frame(result, rows, ids=False).to_parquet(tmp_path / "in" / f"{name}.parquet", index=False)
    first = zoo_cli("predict", "multiclass", "in", "-o", "out")
    assert first.exit_code == 0, first.output
    fresh = (tmp_path / "out" / "a.parquet").read_bytes()
    pq.write_table(pq.read_table(tmp_path / "out" / "a.parquet").slice(0, 5), tmp_path / "out" / "a.parquet")
    changed = (tmp_path / "out" / "a.parquet").read_bytes()
    assert changed != fresh
    skipped = zoo_cli("predict", "multiclass", "in", "-o", "out")
    assert skipped.exit_code == 0 and "2 of 2 inputs already scored in out: skipped" in skipped.stderr
    assert (tmp_path / "out" / "a.parquet").read_bytes() == changed  # finished parts are not redone ...
    forced = zoo_cli("predict", "multiclass", "in", "-o", "out", "--force")
    assert forced.exit_code == 0, forced.output
    assert "wrote 2 files (60 rows)" in forced.stderr and "skipped" not in forced.stderr
    for name, rows in X.items():  # ... unless --force: each part is scored again, whole
        probabilities, labels = reference(tmp_path, "multiclass", rows)
        assert_scores(pd.read_parquet(tmp_path / "out" / f"{name}.parquet"), result, rows, probabilities, labels)
    assert (tmp_path / "out" / "a.parquet").read_bytes() == fresh


def test_two_inputs_that_would_write_one_output_are_refused(zoo_cli, bundle, tmp_path):
    result = bundle()
    (tmp_path / "in").mkdir()
    df = frame(result, rows_of(result, 10), ids=False)
    df.to_parquet(tmp_path / "in" / "a.parquet", index=False)
    df.to_csv(tmp_path / "in" / "a.csv", index=False)
    before = tree(tmp_path)
    assert_clean_error(zoo_cli("predict", "multiclass", "in", "-o", "out"), "a.csv and", "a.parquet would both write",
                       "rename one")
    assert tree(tmp_path) == before and not (tmp_path / "out").exists()
