"""The user's own tables: accuracy against scikit-learn, scoring speed against skl2onnx, reading speed against pyarrow.

    python benchmarks/tables.py [--repeats N]

Four figures, each against a baseline measured in the same run (medians over the repeats):

- accuracy: each table is split 75/25 by scikit-learn (stratified, seeded); ``zoo export multiclass --data
  train.parquet --target COLUMN`` with its defaults, then ``zoo predict`` on test.parquet, scored against the true
  labels; beside it scikit-learn's ``Pipeline(ColumnTransformer(SimpleImputer+StandardScaler,
  SimpleImputer+OneHotEncoder), LogisticRegression)`` fitted on the same training rows. Target: zoo within 3 points.
- scoring: a 1,000,000-row table of 5 numeric columns with gaps and 2 string categories, run through onnxruntime
  (1 thread per session, the same for both) as zoo's ``model.onnx`` (preprocessing and model) and as skl2onnx's
  conversion of ``Pipeline(ColumnTransformer(SimpleImputer+StandardScaler, OneHotEncoder), MLPClassifier(32))``,
  both fed a dict of the raw columns. Target: zoo's rows/s at least skl2onnx's.
- reading: a 1,000,000 x 32 Parquet table (8 categorical) made ready for training: zoo's reader, roles, split and
  encoding (``zoo.data.load_source`` + ``split``) against ``pyarrow.parquet.read_table`` plus the same columns
  encoded by hand (medians filled, categories one-hot). Target: at most 1.25x.
- numeric training: a 100,000 x 20 numeric table trained (``zoo.training.fit``, 3 epochs) from Parquet against the
  same rows from ``.npz`` (the matrix path). Target: at most 1.15x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZOO = [str(Path(sys.executable).with_name("zoo"))]


def _row(figure, value, unit, baseline, baseline_value, ratio, target=None, met=None, spread=None) -> dict:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value,
            "ratio": ratio, "target": target, "met": met, "spread": spread}


# -- tables made from scikit-learn's bundled data: word targets, categories, gaps, ids, dates ---------------


def tables(seed: int = 0) -> dict:
    """name -> (DataFrame, target, extra zoo options)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    rng = np.random.default_rng(seed)

    def holes(frame, columns, share):
        for column in columns:
            frame.loc[rng.random(len(frame)) < share, column] = np.nan
        return frame

    iris = load_iris(as_frame=True).frame
    iris["species"] = np.array(["setosa", "versicolor", "virginica"])[iris.pop("target").to_numpy()]

    wine = load_wine(as_frame=True).frame
    wine["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[wine.pop("target").to_numpy()]
    wine["colour"] = pd.cut(wine["color_intensity"], [0, 3, 6, 20], labels=["pale", "ruby", "deep"]).astype(str)
    wine["region"] = rng.choice(np.array(["north", "south", "east", None], dtype=object), len(wine))
    wine = holes(wine, ["alcohol", "magnesium", "hue"], 0.1)
    wine.insert(0, "bottle_id", [f"b{i:04d}" for i in range(len(wine))])
    wine["bottled"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, len(wine)), "D")

    cancer = load_breast_cancer(as_frame=True).frame
    cancer["diagnosis"] = np.array(["malignant", "benign"])[cancer.pop("target").to_numpy()]
    cancer["size class"] = pd.qcut(cancer["mean radius"], 4, labels=["small", "medium", "large", "huge"]).astype(str)
    cancer["clinic"] = rng.choice(["A", "B", "C", "D", "E"], len(cancer))
    cancer = holes(cancer, ["mean texture", "worst area", "mean smoothness", "size class"], 0.08)
    cancer.loc[cancer["size class"] == "nan", "size class"] = None

    digits = load_digits(as_frame=True).frame
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    digits["digit"] = names[digits.pop("target").to_numpy()]
    digits = holes(digits, [c for c in digits.columns if c.startswith("pixel_3")], 0.05)
    digits.insert(0, "scan", [f"s{i}" for i in range(len(digits))])

    return {"iris": (iris, "species", []),
            "wine": (wine, "cultivar", ["--id-column", "bottle_id", "--ignore", "bottled"]),
            "breast-cancer": (cancer, "diagnosis", []),
            "digits": (digits, "digit", ["--id-column", "scan"])}


def sklearn_accuracy(train, test, target: str, drop: list[str]) -> float:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = train.drop(columns=[target, *drop])
    numeric = [c for c in features.columns if features[c].dtype.kind in "fiub"]
    categorical = [c for c in features.columns if c not in numeric]
    steps = [("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)]
    if categorical:
        steps.append(("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore"))]), categorical))
    model = Pipeline([("columns", ColumnTransformer(steps)), ("classify", LogisticRegression(max_iter=2000))])
    model.fit(_objects(features, categorical), train[target])
    return float((model.predict(_objects(test.drop(columns=[target, *drop]), categorical)) == test[target]).mean())


def _objects(frame, categorical):
    frame = frame.copy()
    for column in categorical:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def bench_accuracy(work: Path) -> list[dict]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    rows = []
    for name, (frame, target, options) in tables().items():
        train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[target])
        folder = work / name
        folder.mkdir()
        train.to_parquet(folder / "train.parquet", index=False)
        test.drop(columns=[target]).to_parquet(folder / "test.parquet", index=False)
        subprocess.run([*ZOO, "export", "multiclass", "--data", str(folder / "train.parquet"), "--target", target,
                        *options, "-o", str(folder / "bundle"), "--no-card"], check=True, capture_output=True)
        subprocess.run([*ZOO, "predict", str(folder / "bundle"), str(folder / "test.parquet"), "-o",
                        str(folder / "out.parquet")], check=True, capture_output=True)
        zoo = float((pd.read_parquet(folder / "out.parquet")["label"].to_numpy() == test[target].to_numpy()).mean())
        drop = [options[i + 1] for i, o in enumerate(options) if o in ("--id-column", "--ignore")]
        theirs = sklearn_accuracy(train, test, target, drop)
        rows.append(_row(f"accuracy, {name} ({len(test)} held-out rows), zoo's defaults", 100 * zoo, "%",
                         "scikit-learn LogisticRegression pipeline", 100 * theirs, zoo / theirs,
                         "within 3 points", 100 * (zoo - theirs) >= -3.0))
    return rows


# -- scoring a 1M-row table -----------------------------------------------------------------------------------


def scoring_table(rows: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, rows)
    frame = pd.DataFrame({f"x{i}": rng.normal(classes * (i % 3 - 1), 1.0) for i in range(5)})
    for i in range(5):
        frame.loc[rng.random(rows) < 0.1, f"x{i}"] = np.nan
    frame["shop"] = np.array(["north", "south", "east", "west"], dtype=object)[(classes + rng.integers(0, 2, rows)) % 4]
    frame["tier"] = np.array(["gold", "silver", "bronze"], dtype=object)[rng.integers(0, 3, rows)]
    frame["kind"] = np.array(["apple", "pear", "plum"])[classes]
    return frame


def _feed(frame, session) -> dict:
    feed = {}
    for graph_input in session.get_inputs():
        values = frame[graph_input.name]
        if graph_input.type == "tensor(string)":
            feed[graph_input.name] = values.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feed[graph_input.name] = values.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
    return feed


def bench_scoring(work: Path, repeats: int) -> list[dict]:
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = scoring_table(1_000_000)
    sample = frame.iloc[:20_000]
    sample.to_parquet(work / "sample.parquet", index=False)
    subprocess.run([*ZOO, "export", "multiclass", "--data", str(work / "sample.parquet"), "--target", "kind",
                    "--hidden-size", "32", "-o", str(work / "scoring"), "--no-card"], check=True, capture_output=True)
    numeric, categorical = [f"x{i}" for i in range(5)], ["shop", "tier"]
    pipeline = Pipeline([("columns", ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])),
        ("classify", MLPClassifier((32,), max_iter=50, random_state=0))])
    pipeline.fit(sample[numeric + categorical], sample["kind"])
    types = [(c, FloatTensorType([None, 1])) for c in numeric] + [(c, StringTensorType([None, 1])) for c in categorical]
    converted = to_onnx(pipeline, initial_types=types, options={MLPClassifier: {"zipmap": False}})
    (work / "skl2onnx.onnx").write_bytes(converted.SerializeToString())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {"zoo": ort.InferenceSession(str(work / "scoring" / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"]),
                "skl2onnx": ort.InferenceSession(str(work / "skl2onnx.onnx"), options,
                                                 providers=["CPUExecutionProvider"])}
    feeds = {name: _feed(frame, session) for name, session in sessions.items()}
    seconds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, session in sessions.items():  # interleaved: a noisy neighbour slows both alike
            started = time.perf_counter()
            for start in range(0, len(frame), 65536):
                session.run(None, {k: v[start:start + 65536] for k, v in feeds[name].items()})
            seconds[name].append(time.perf_counter() - started)
    zoo, theirs = (len(frame) / statistics.median(seconds[n]) for n in ("zoo", "skl2onnx"))
    return [_row("scoring 1,000,000 rows x 7 columns (5 numeric with gaps, 2 string), onnxruntime, 1 thread", zoo,
                 "rows/s", "skl2onnx pipeline (Imputer, Scaler, OneHotEncoder, MLP 32)", theirs, zoo / theirs,
                 ">= 1.0", zoo >= theirs)]


# -- reading a 1M x 32 table for training -----------------------------------------------------------------------


def reading_table(path: Path, rows: int = 1_000_000, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {f"n{i}": pa.array(np.where(rng.random(rows) < 0.05, np.nan, rng.normal(size=rows))) for i in range(23)}
    for i in range(8):
        words = np.array([f"c{i}-{k}" for k in range(5 + 3 * i)], dtype=object)
        columns[f"c{i}"] = pa.array(words[rng.integers(0, len(words), rows)])
    columns["label"] = pa.array(np.array(["yes", "no"], dtype=object)[rng.integers(0, 2, rows)])
    pq.write_table(pa.table(columns), path)


def by_hand(path: Path) -> np.ndarray:
    """pyarrow's read_table, then each feature column encoded by hand: numbers with the median in a gap,
    categories one-hot."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    blocks = []
    for name in table.column_names:
        if name == "label":
            continue
        column = table.column(name)
        if name.startswith("n"):
            values = pc.fill_null(column, float("nan")).to_numpy()
            values = np.where(np.isnan(values), np.nanmedian(values), values).astype(np.float32)
            blocks.append(values[:, None])
        else:
            encoded = pc.dictionary_encode(column.combine_chunks())
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            blocks.append(np.eye(len(encoded.dictionary), dtype=np.float32)[codes])
    return np.concatenate(blocks, axis=1)


def zoo_reading(path: Path):
    from zoo.data import load_source, split
    from zoo.tables.features import TableOptions

    return split(load_source(str(path), table=TableOptions(target="label")), 0.2, 0)


def bench_reading(work: Path, repeats: int) -> list[dict]:
    path = work / "wide.parquet"
    reading_table(path)
    seconds: dict[str, list[float]] = {"zoo": [], "hand": []}
    zoo_reading(path), by_hand(path)  # once untimed: the imports and the page cache are no one's cost
    for _ in range(repeats):
        for name, run in (("zoo", zoo_reading), ("hand", by_hand)):
            started = time.perf_counter()
            run(path)
            seconds[name].append(time.perf_counter() - started)
    zoo, hand = statistics.median(seconds["zoo"]), statistics.median(seconds["hand"])
    return [_row("reading 1,000,000 x 32 Parquet (8 categorical) for training: read, roles, split, encode", zoo, "s",
                 "pyarrow read_table + encoding by hand", hand, zoo / hand, "<= 1.25", zoo / hand <= 1.25,
                 {"min": min(seconds["zoo"]), "max": max(seconds["zoo"])})]


# -- numeric tables train as fast as matrices ---------------------------------------------------------------------


def bench_numeric_training(work: Path, repeats: int) -> list[dict]:
    import pandas as pd

    from zoo.training import TrainConfig, fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 20)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1)
    np.savez(work / "numeric.npz", X=X, y=y)
    pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]).assign(y=y).to_parquet(work / "numeric.parquet")
    config = TrainConfig(epochs=3, device="cpu")
    for source in ("numeric.parquet", "numeric.npz"):  # once untimed: the first fit in a process builds torch's state
        fit("multiclass", data=str(work / source), config=TrainConfig(epochs=1, device="cpu"))
    seconds: dict[str, list[float]] = {"table": [], "matrix": []}
    for _ in range(repeats):
        for name, source in (("table", "numeric.parquet"), ("matrix", "numeric.npz")):
            started = time.perf_counter()
            fit("multiclass", data=str(work / source), config=config)
            seconds[name].append(time.perf_counter() - started)
    table, matrix = statistics.median(seconds["table"]), statistics.median(seconds["matrix"])
    return [_row("training on a 100,000 x 20 numeric table (Parquet), 3 epochs, read to trained", table, "s",
                 "the same rows as an .npz matrix", matrix, table / matrix, "<= 1.15", table / matrix <= 1.15)]


def bench_tables(repeats: int, work: Path) -> list[dict]:
    rows = []
    for name, bench in (("accuracy", lambda: bench_accuracy(work / "accuracy")),
                        ("scoring", lambda: bench_scoring(work / "scoring", max(repeats, 1))),
                        ("reading", lambda: bench_reading(work / "reading", max(repeats, 1))),
                        ("numeric", lambda: bench_numeric_training(work / "numeric", max(repeats, 1)))):
        (work / name).mkdir()
        rows += bench()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_tables(args.repeats, Path(tmp))
    for r in rows:
        print(json.dumps(r))
    if not all(r["met"] for r in rows):
        raise SystemExit("a target was not met")


if __name__ == "__main__":
    main()
