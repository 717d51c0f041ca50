"""Streaming training: a table read in pieces gives what the whole table gives.

The references here are computed apart from zoo's streaming code: the held-out rows from the split's definition
(splitmix64 of the row's index and the seed, in Python integers), the statistics with pandas over those rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import assert_clean_error
from zoo.errors import DataError
from zoo.tables.features import TableOptions

M64 = (1 << 64) - 1


def held_out_rows(rows: int, fraction: float, seed: int) -> np.ndarray:
    """The split's definition, in Python integers: splitmix64 of (index + an offset from the seed)."""
    offset = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & M64
    out = []
    for i in range(rows):
        z = (i + offset) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z ^= z >> 31
        out.append((z >> 11) < int(fraction * (1 << 53)))
    return np.array(out)


def frame(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.exponential(2.0, rows) - 1.5  # skewed: its median is not its mean
    color = rng.choice(["red", "green", "blue", "", None], rows, p=[0.3, 0.3, 0.3, 0.05, 0.05])
    size = rng.integers(0, 50, rows).astype(float)
    label = np.where(x + (color == "red") * 2 > 0.5, "cat", np.where(size > 25, "dog", "eel"))
    x[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame({"x": x, "color": color, "size": size, "id": np.arange(rows), "label": label})


@pytest.fixture
def table(tmp_path):
    """The frame in 3 Parquet files of row groups of 400 rows."""
    df = frame()
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), folder / f"part-{k}.parquet",
                       row_group_size=400)
    return folder, df


def prepared(folder, holdout=0.2, seed=3, options=TableOptions(ignore=("id",))):
    from zoo.training import streaming

    return streaming.prepare(str(folder), options, holdout, seed, 0, 1)


def test_the_scan_fits_what_pandas_fits_on_the_training_rows(table):
    folder, df = table
    got = prepared(folder)
    held = held_out_rows(len(df), 0.2, 3)
    train = df[~held]
    assert got.rows == (~held).sum() and got.held_rows == held.sum()
    assert sorted(got.split.raw_test.columns["x"].shape) == [1, held.sum()]  # every held-out row kept (< 10,000)
    features = {f.name: f for f in got.features.columns}
    median = train["x"].median()
    assert features["x"].median == pytest.approx(median, rel=1e-12) and features["x"].missing == train["x"].isna().sum()
    assert features["color"].categories == ("blue", "green", "red") and features["color"].missing_level
    # The standardization of the encoded columns: x with its gaps as the median, one-hot shares of color
    filled = train["x"].fillna(median)
    levels = train["color"].fillna("").replace("", "(missing)")
    expected_mean = [filled.mean(), *[(levels == c).mean() for c in ("blue", "green", "red", "(missing)")],
                     train["size"].mean()]
    expected_std = [filled.std(ddof=0), *[np.sqrt(p * (1 - p)) for p in expected_mean[1:5]], train["size"].std(ddof=0)]
    np.testing.assert_allclose(got.split.mean, expected_mean, rtol=1e-6)
    np.testing.assert_allclose(1 / got.split.scale, expected_std, rtol=1e-5)
    # The held-out rows are exactly those of the definition, with their own labels
    np.testing.assert_array_equal(np.sort(got.split.raw_test.columns["size"].ravel()),
                                  np.sort(df["size"][held].to_numpy(np.float32)))
    assert got.classes == ["cat", "dog", "eel"]
    assert [got.classes[i] for i in got.split.y_test] == df["label"][held].tolist()


def test_the_split_is_the_same_however_the_table_is_cut(table, tmp_path):
    folder, df = table
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), whole, row_group_size=1000)
    a, b = prepared(folder), prepared(whole)
    np.testing.assert_array_equal(a.split.y_test, b.split.y_test)
    np.testing.assert_array_equal(a.split.mean, b.split.mean)
    assert a.features == b.features and a.rows == b.rows


def test_a_sample_keeps_the_rows_with_the_smallest_keys_merged_across_scans(table, monkeypatch):
    """Two scans over halves of the rows, merged, keep what one scan keeps: the bounded samples, the moments."""
    from zoo.tables import scan as scans
    from zoo.tables.features import roles
    from zoo.tables.stream import open_pieces, read

    folder, df = table
    pieces = open_pieces(str(folder))
    target, kinds = roles(pieces.schema, "t", TableOptions(ignore=("id",)))
    types = {n: str(pieces.schema.field(n).type) for n in kinds}

    def scan(lo, hi):
        s = scans.Scan("t", target, kinds, types, TableOptions(), 0.2, 3, sample_rows=100, held_rows=50)
        for piece in pieces.pieces:
            for batch, first in read(piece, [*kinds, target], lo, hi):
                s.add(batch, first)
        return s

    one = scan(0, len(df)).finish()
    halves = scan(0, 1234)
    halves.merge([scan(1234, len(df)).state()])
    two = halves.finish()
    assert one[0] == two[0]  # features, medians from the 100-row sample included
    for k in (2, 3):  # the samples: the same rows, 100 training and 50 held-out ones
        assert one[k].column("__zoo_row__").to_pylist() == two[k].column("__zoo_row__").to_pylist()
    assert one[3].num_rows == 50 and one[2].num_rows == 100
    sampled = one[2].column("__zoo_row__").to_pylist()  # in key order: its first rows (calibration) span the table
    assert sampled != sorted(sampled) and max(sampled[:20]) > len(df) // 2
    np.testing.assert_allclose(one[4], two[4], rtol=1e-12)
    np.testing.assert_allclose(one[5], two[5], rtol=1e-12)
    held = np.flatnonzero(held_out_rows(len(df), 0.2, 3))
    assert set(one[3].column("__zoo_row__").to_pylist()) <= set(held.tolist())


def test_ranks_split_the_training_rows_evenly_each_reading_only_its_range():
    from zoo.tables.stream import rank_rows

    rows, held = 5000, held_out_rows(5000, 0.3, 7)
    total = int((~held).sum())
    for world in (1, 2, 3, 7):
        ranges = [rank_rows(rows, 0.3, 7, r, world) for r in range(world)]
        assert all(n == total // world for _, _, n in ranges)
        for lo, hi, n in ranges:
            assert int((~held[lo:hi]).sum()) == n
        assert all(ranges[r][1] <= ranges[r + 1][0] for r in range(world - 1))  # disjoint, in order


def test_every_epoch_streams_each_training_row_once_in_a_seeded_order(table, registry):
    from zoo.training.streaming import StreamFeed

    folder, df = table
    got = prepared(folder)
    policy = registry.get("policy", "softmax-cross-entropy")

    def epoch(e, buffer_rows):
        feed = StreamFeed(got, policy, 3, 32, buffer_rows, 3, 0.2, 0, "cpu")
        blocks = list(feed.blocks(e))
        assert all(len(y) % 32 == 0 for _, y in blocks[:-1])
        return np.concatenate([X for X, _ in blocks]), np.concatenate([y for _, y in blocks])

    X1, y1 = epoch(1, 500)
    X1b, _ = epoch(1, 500)
    X2, y2 = epoch(2, 500)
    assert len(y1) == got.rows
    np.testing.assert_array_equal(X1, X1b)  # the same seed and epoch: the same order
    assert not np.array_equal(X1, X2)
    # the same rows every epoch: sort by the standardized 'size' column and the label
    order1, order2 = np.lexsort((y1, X1[:, -1])), np.lexsort((y2, X2[:, -1]))
    np.testing.assert_array_equal(y1[order1], y2[order2])
    held = held_out_rows(len(df), 0.2, 3)
    sizes = (df["size"][~held].to_numpy() - got.split.mean[-1]) * got.split.scale[-1]
    np.testing.assert_allclose(np.sort(X1[:, -1]), np.sort(sizes.astype(np.float32)), rtol=1e-5, atol=1e-6)


def test_resume_is_exact_while_streaming(table, tmp_path, zoo_cli):
    folder, _ = table
    common = ["--data", folder, "--stream", "--ignore", "id", "--shuffle-buffer", "300", "--batch-size", "64"]
    assert zoo_cli("train", "multiclass", *common, "--epochs", "4", "-o", tmp_path / "straight.pt").exit_code == 0
    assert zoo_cli("train", "multiclass", *common, "--epochs", "2", "-o", tmp_path / "half.pt").exit_code == 0
    resumed = zoo_cli("train", "multiclass", "--resume", tmp_path / "half.pt", "--epochs", "2",
                      "-o", tmp_path / "resumed.pt")
    assert resumed.exit_code == 0, resumed.output
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("straight.pt", "resumed.pt"))
    assert a["metrics"]["loss_history"] == b["metrics"]["loss_history"]
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert a["train_config"]["stream"] is True


def test_the_choice_between_memory_and_stream_is_said_with_its_reason(table, zoo_cli, tmp_path, monkeypatch):
    from zoo.training import streaming

    folder, _ = table
    result = zoo_cli("train", "multiclass", "--data", folder, "--ignore", "id", "--epochs", "1", "-o", tmp_path / "a")
    assert "parts whole: 3,000 rows x 5 columns take about 351 KiB, within 25% of the" in result.output, result.output
    assert "training on 1 thread" in result.output
    monkeypatch.setattr(streaming, "available_memory", lambda: 1 << 20)  # 1 MiB: the table would not fit
    result = zoo_cli("train", "multiclass", "--data", folder, "--ignore", "id", "--epochs", "1", "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert "streaming parts: 9 pieces in 3 files, 3,000 rows" in result.output
    assert "more than 25% of the 1 MiB available (--no-stream loads it anyway)" in result.output
    assert torch.load(tmp_path / "b", weights_only=True)["train_config"]["stream"] is True
    result = zoo_cli("train", "multiclass", "--data", folder, "--ignore", "id", "--epochs", "1", "--no-stream",
                     "--threads", "2", "-o", tmp_path / "c")
    assert "parts whole (--no-stream)" in result.output and "training on 2 threads (--threads" in result.output


def test_a_streamed_table_model_exports_a_verified_bundle(table, zoo_cli, tmp_path):
    folder, _ = table
    result = zoo_cli("export", "multiclass", "--data", folder, "--stream", "--ignore", "id", "--epochs", "3",
                     "-o", tmp_path / "bundle")
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    verified = zoo_cli("verify", tmp_path / "bundle")
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize("make, fragment", [
    (lambda p: pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]}).to_csv(p / "t.csv", index=False) or p / "t.csv",
     "--stream reads Parquet or Arrow IPC files in pieces, not a CSV file"),
    (lambda p: [pq.write_table(pa.table({"x": [1.0, 2.0], "label": [0, 1]}), p / "a.parquet"),
                pq.write_table(pa.table({"x": ["a", "b"], "label": [0, 1]}), p / "b.parquet")] and p,
     "b.parquet: its columns differ from a.parquet's ('x' is string, not double)"),
])
def test_a_table_that_cannot_stream_is_refused_in_one_line(make, fragment, tmp_path, zoo_cli):
    source = make(tmp_path)
    result = zoo_cli("train", "multiclass", "--data", source, "--stream", "-o", tmp_path / "x.pt")
    assert_clean_error(result, fragment)
    assert not (tmp_path / "x.pt").exists()


def test_the_scan_refuses_what_the_in_memory_path_refuses(tmp_path):
    df = pd.DataFrame({"x": [1.0, np.inf, 3.0, 4.0] * 10, "label": ["a", "b"] * 20})
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "t.parquet", row_group_size=7)
    with pytest.raises(DataError, match="column 'x' holds 10 infinite values"):
        prepared(tmp_path / "t.parquet", options=TableOptions())
    df = pd.DataFrame({"city": [f"c{i}" for i in range(300)], "label": ["a", "b"] * 150})
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "u.parquet", row_group_size=50)
    with pytest.raises(DataError, match="column 'city' has at least 150 distinct values, more than --max-categories "
                       "100 allows for a category; pass --ignore city, --id-column city or a larger --max-categories"):
        prepared(tmp_path / "u.parquet", options=TableOptions())


def _rank(rank: int, world: int, source: str, store: str, out: str) -> None:
    """One rank of a 2-process job: the scan and an epoch, every read logged (run by torch.multiprocessing)."""
    import json

    import torch.distributed as dist

    from zoo.registry import default_registry
    from zoo.tables import stream
    from zoo.training import streaming

    reads = []
    real = stream.read

    def logged(piece, columns, lo=0, hi=None, schema=None):
        for batch, first in real(piece, columns, lo, hi, schema):
            reads.append([first, first + batch.num_rows])
            yield batch, first

    streaming.read = logged
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        got = streaming.prepare(source, TableOptions(ignore=("id",)), 0.2, 3, rank, world)
        scanned, reads[:] = list(reads), []
        policy = default_registry().get("policy", "softmax-cross-entropy")
        rows = sum(len(y) for _, y in streaming.StreamFeed(got, policy, 3, 16, 100, 3, 0.2, rank, "cpu").blocks(1))
        with open(out, "w") as handle:
            json.dump({"scanned": scanned, "epoch": reads, "lo": got.lo, "hi": got.hi, "rows": rows,
                       "trained": got.rows, "mean": got.split.mean.tolist(), "held": got.split.y_test.tolist(),
                       "features": repr(got.features)}, handle)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # 6 s: two processes
def test_each_rank_reads_only_its_own_rows_and_the_merged_scan_is_one_process(table, tmp_path):
    import json

    import torch.multiprocessing as mp

    folder, df = table
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    mp.spawn(_spawned, args=(str(folder), str(tmp_path / "store"), [str(o) for o in outs]), nprocs=2, join=True)
    ranks = [json.loads(o.read_text()) for o in outs]
    one = prepared(folder)
    half = len(df) // 2
    for r, got in enumerate(ranks):
        assert all(r * half <= a and b <= (r + 1) * half for a, b in got["scanned"]), got["scanned"]  # its half
        assert all(got["lo"] <= a and b <= got["hi"] for a, b in got["epoch"])  # its training range, nothing else
        assert got["rows"] == got["trained"] == one.rows // 2
        assert got["features"] == repr(one.features)
        np.testing.assert_allclose(got["mean"], one.split.mean, rtol=1e-6)
        assert got["held"] == one.split.y_test.tolist()
    assert ranks[0]["hi"] <= ranks[1]["lo"]


def _spawned(rank: int, source: str, store: str, outs: list) -> None:
    _rank(rank, 2, source, store, outs[rank])


def test_training_runs_on_the_threads_it_says_then_gives_the_process_its_own_back():
    from zoo.training import TrainConfig, fit

    before = torch.get_num_threads()
    seen: list[int] = []
    lines: list[str] = []
    try:
        torch.set_num_threads(2)
        result = fit("multiclass", data="synthetic:200x8x3", config=TrainConfig(epochs=2), note=lines.append,
                     on_epoch=lambda *_: seen.append(torch.get_num_threads()))
        assert seen == [1, 1] and result.metrics["threads"] == 1 and torch.get_num_threads() == 2
        assert lines == [next(line for line in lines if line.startswith("training on 1 thread: a step of"))]
        seen.clear()
        fit("multiclass", data="synthetic:200x8x3", config=TrainConfig(epochs=1, threads=3),
            on_epoch=lambda *_: seen.append(torch.get_num_threads()))
        assert seen == [3] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_files_whose_types_differ_in_width_stream_as_the_wider_type(tmp_path, zoo_cli):
    """int32 in one file and int64 in another, a column empty (null) in one file, the columns in another order: the
    in-memory path concatenates them promoted; streaming casts each file's rows to the same types."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        x = rng.normal(size=400)
        label = np.where(x > 0, "up", "down")
        count = pa.array(rng.integers(0, 9, 400), pa.int32() if k == 0 else pa.int64())
        note = pa.nulls(400) if k == 1 else pa.array(rng.choice(["a", "b"], 400))
        columns = {"x": x, "count": count, "note": note, "label": label}
        order = ["label", "note", "count", "x"] if k == 2 else list(columns)
        pq.write_table(pa.table({name: columns[name] for name in order}), folder / f"p{k}.parquet")
    streamed = prepared(folder, options=TableOptions())
    types = {f.name: f.type for f in streamed.features.columns}
    assert types == {"x": "double", "count": "int64", "note": "string"}
    assert streamed.features.columns[2].missing > 0  # the empty file's rows are gaps
    result = zoo_cli("export", "binary", "--data", folder, "--stream", "--epochs", "2", "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output


def test_a_process_whose_rows_hold_no_held_out_row_sends_an_empty_sample(table):
    """A rank that read rows none of which is held out (a small table on several processes) has an empty sample to
    send: the exchange carries it, and the merge is the other ranks' sample."""
    from zoo.tables import scan as scans
    from zoo.tables.features import roles
    from zoo.tables.stream import open_pieces, read

    folder, df = table
    pieces = open_pieces(str(folder))
    target, kinds = roles(pieces.schema, "t", TableOptions(ignore=("id",)))
    types = {n: str(pieces.schema.field(n).type) for n in kinds}
    held = np.flatnonzero(held_out_rows(len(df), 0.2, 3))
    lo, hi = 0, int(held[0])  # the rows before the first held-out one

    def scan(a, b):
        s = scans.Scan("t", target, kinds, types, TableOptions(), 0.2, 3)
        for piece in pieces.pieces:
            for batch, first in read(piece, [*kinds, target], a, b):
                s.add(batch, first)
        return s

    empty, rest = scan(lo, hi), scan(hi, len(df))
    keys = [empty.sample_keys(), rest.sample_keys()]
    assert len(keys[0][1]) == 0
    merged = scan(hi, hi)
    merged.merge([empty.state([None, None]), rest.state([None, None])])
    assert merged.finish()[3].num_rows == len(held)


def test_a_streamed_checkpoint_exports_on_its_own_data_and_refuses_changed_data(table, zoo_cli, tmp_path):
    folder, df = table
    trained = zoo_cli("train", "multiclass", "--data", folder, "--stream", "--ignore", "id", "--epochs", "1",
                      "-o", tmp_path / "ck.pt")
    assert trained.exit_code == 0, trained.output
    same = zoo_cli("export", "multiclass", "--checkpoint", tmp_path / "ck.pt", "--data", folder, "--no-card",
                   "-o", tmp_path / "b")
    assert same.exit_code == 0, same.output
    pq.write_table(pa.Table.from_pandas(df.iloc[:10], preserve_index=False), folder / "part-9.parquet")
    assert_clean_error(zoo_cli("export", "multiclass", "--checkpoint", tmp_path / "ck.pt", "--data", folder,
                               "-o", tmp_path / "c"), "the data changed since training")


@pytest.mark.parametrize("args, fragment", [
    (["export", "multiclass", "--checkpoint", "ck.pt", "--threads", "2"], "--threads does not apply with --checkpoint"),
    (["export", "multiclass", "--checkpoint", "ck.pt", "--no-stream"], "--no-stream does not apply with --checkpoint"),
    (["export", "multiclass", "--checkpoint", "ck.pt", "--shuffle-buffer", "9"], "--shuffle-buffer does not apply"),
    (["train", "multiclass", "--resume", "ck.pt", "--stream"], "--stream does not apply with --resume"),
    (["train", "multiclass", "--data", "digits", "--shuffle-buffer", "9"],
     "--shuffle-buffer does not apply to data that is not a Parquet or Arrow table"),
    (["train", "multiclass", "--data", "parts", "--no-stream", "--shuffle-buffer", "9"],
     "--shuffle-buffer does not apply with --no-stream"),
    (["train", "multiclass", "--data", "empty", "--stream"], "empty is a directory without .parquet files"),
    (["train", "multiclass", "--data", "empty", "--id-column", "id"], "empty is a directory without .parquet files"),
    (["train", "multiclass", "--data", "hive"], "hive/year=2020 holds Parquet files, which zoo does not read as part "
                                                "of hive"),
])
def test_streaming_options_that_do_not_apply_and_directories_that_are_no_table(args, fragment, table, zoo_cli,
                                                                              tmp_path):
    folder, _ = table
    (tmp_path / "ck.pt").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "hive" / "year=2020").mkdir(parents=True)
    (folder / "part-0.parquet").rename(tmp_path / "hive" / "year=2020" / "part-0.parquet")
    assert_clean_error(zoo_cli(*args, "-o", tmp_path / "out"), fragment)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["--stream", "--no-stream"])
def test_a_symlink_out_of_the_table_directory_is_not_followed(how, table, zoo_cli, tmp_path):
    folder, _ = table
    outside = tmp_path / "elsewhere.parquet"
    (folder / "part-2.parquet").rename(outside)
    (folder / "part-2.parquet").symlink_to(outside)
    assert_clean_error(zoo_cli("train", "multiclass", "--data", folder, how, "-o", tmp_path / "x.pt"),
                       "part-2.parquet is a symlink out of", "zoo does not follow it")
    assert not (tmp_path / "x.pt").exists()
