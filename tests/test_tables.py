"""The user's own tables: word targets, categories, gaps, ids and dates, from file to verified bundle to predictions.

Real data (scikit-learn's bundled iris and wine), real exports, real onnxruntime sessions. The checks go through
paths that share no code with what they check: pandas for the statistics, a bare onnxruntime session fed a dict of
numpy columns for the deployed graph, the true labels for accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.conftest import assert_clean_error
from zoo.data import load_source, split
from zoo.errors import DataError, VerifyError
from zoo.tables.features import Features, TableOptions

ort = pytest.importorskip("onnxruntime")

SPECIES = np.array(["setosa", "versicolor", "virginica"])


def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = SPECIES[frame.pop("target").to_numpy()]
    return frame


def wine_frame(seed: int = 1) -> pd.DataFrame:
    """Wine with a word target in the second column, two categorical columns (one with gaps), gaps in three
    numeric columns, an id column and a date column."""
    from sklearn.datasets import load_wine

    rng = np.random.default_rng(seed)
    frame = load_wine(as_frame=True).frame
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[frame.pop("target").to_numpy()]
    frame["colour"] = pd.cut(frame["color_intensity"], [0, 3, 6, 20], labels=["pale", "ruby", "deep"]).astype(str)
    frame["region"] = rng.choice(np.array(["north", "south", "east", None], dtype=object), len(frame))
    for column in ("alcohol", "magnesium", "hue"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    frame["bottle_id"] = [f"b{i:04d}" for i in range(len(frame))]
    frame["bottled"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, len(frame)), "D")
    return frame[["bottle_id", "cultivar"] + [c for c in frame.columns if c not in ("bottle_id", "cultivar")]]


WINE_ARGS = ("--target", "cultivar", "--id-column", "bottle_id", "--ignore", "bottled")


@pytest.fixture(scope="module")
def wine_bundle(tmp_path_factory):
    """The wine table as Parquet, exported once for the tests that read the bundle."""
    from click.testing import CliRunner

    from zoo.cli import cli

    root = tmp_path_factory.mktemp("wine")
    wine_frame().to_parquet(root / "wine.parquet")
    result = CliRunner().invoke(cli, ["export", "multiclass", "--data", str(root / "wine.parquet"), *WINE_ARGS,
                                      "-o", str(root / "bundle"), "--no-card"])
    assert result.exit_code == 0, result.output
    return root


def bare_session_labels(model: Path, frame: pd.DataFrame) -> np.ndarray:
    """The deployed graph in a bare onnxruntime session, fed a dict of the raw columns (no zoo code)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = {}
    for graph_input in session.get_inputs():
        column = frame[graph_input.name]
        if graph_input.type == "tensor(string)":
            values = np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in column],
                              dtype=object)
        else:
            values = column.to_numpy(dtype=np.float32, na_value=np.nan)
        feed[graph_input.name] = values.reshape(-1, 1)
    return session.run(["label"], feed)[0]


# -- iris, the first table at hand ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_iris_with_species_names_exports_verifies_and_predicts_the_names(zoo_cli, tmp_path, suffix):
    frame = iris_frame()
    path = tmp_path / f"iris{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    exported = zoo_cli("export", "multiclass", "--data", path.name, "--target", "species", "--epochs", "60",
                       "-o", "bundle", "--no-card")
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["class_labels"] == list(SPECIES)
    assert [c["name"] for c in manifest["features"]["columns"]] == list(frame.columns[:4])
    assert zoo_cli("verify", "bundle").exit_code == 0
    predicted = zoo_cli("predict", "bundle", path.name, "-o", "out.csv")
    assert predicted.exit_code == 0, predicted.output
    out = pd.read_csv(tmp_path / "out.csv")
    assert set(out["label"]) <= set(SPECIES)
    assert (out["label"].to_numpy() == frame["species"].to_numpy()).mean() > 0.9  # against the true labels


def test_the_target_may_be_named_by_convention_and_sits_anywhere(tmp_path):
    frame = iris_frame().rename(columns={"species": "Class"})
    frame = frame[["Class", *frame.columns[:4]]]
    frame.to_csv(tmp_path / "iris.csv", index=False)
    dataset = load_source(str(tmp_path / "iris.csv"))
    assert dataset.class_labels == tuple(SPECIES)
    assert dataset.feature_names == tuple(frame.columns[1:])


# -- a table no one wrote for zoo: words, categories, gaps, ids and dates --------------------------------------


def test_a_table_with_categories_and_gaps_verifies_and_openvino_is_skipped_with_its_reason(wine_bundle, zoo_cli):
    result = zoo_cli("verify", str(wine_bundle / "bundle"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ran = {r["runtime"] for r in report["replays"] if r["status"] == "passed"}
    assert {"onnxruntime-cpu", "onnx-reference"} <= ran
    skipped = {r["runtime"]: r["reason"] for r in report["replays"] if r["status"] == "skipped"}
    if "openvino-cpu" in skipped and "not installed" not in skipped["openvino-cpu"]:
        assert "string inputs" in skipped["openvino-cpu"] and "'colour'" in skipped["openvino-cpu"]


def test_the_manifest_records_each_column_and_its_gaps(wine_bundle):
    manifest = json.loads((wine_bundle / "bundle" / "manifest.json").read_text())
    features = Features.from_dict(manifest["features"], "manifest")
    by_name = {f.name: f for f in features.columns}
    assert features.target == "cultivar" and features.id_column == "bottle_id" and features.ignored == ("bottled",)
    assert "bottle_id" not in by_name and "bottled" not in by_name and "cultivar" not in by_name
    assert by_name["colour"].kind == "categorical" and by_name["colour"].categories == ("deep", "pale", "ruby")
    assert by_name["region"].missing_level and by_name["region"].categories == ("east", "north", "south")
    assert by_name["alcohol"].kind == "numeric" and by_name["alcohol"].missing > 0
    # The statistics come from the training rows alone: pandas recomputes them on the rows the split kept.
    frame = wine_frame()
    dataset = load_source(str(wine_bundle / "wine.parquet"), table=TableOptions("cultivar", None, ("bottled",),
                                                                                "bottle_id"))
    parts = split(dataset, 0.2, 0)
    key = ["proline", "flavanoids", "malic_acid", "ash"]  # a row's key: no two wines share all four
    held_out = set(zip(*(parts.raw_test.columns[k].reshape(-1).tolist() for k in key)))
    keys = zip(*(frame[k].astype(np.float32).tolist() for k in key))
    training = frame[[k not in held_out for k in keys]]
    assert features.rows == len(parts.y_train) == len(training)
    assert by_name["alcohol"].median == training["alcohol"].median()
    assert by_name["region"].missing == training["region"].isna().sum()


def test_a_bare_onnxruntime_session_on_a_dict_of_columns_gives_zoo_predicts_labels(wine_bundle, zoo_cli, tmp_path):
    frame = wine_frame(seed=7)
    frame.loc[::5, "colour"] = "rosé"  # a category the training rows never had
    frame.loc[::3, "alcohol"] = np.nan
    frame.loc[::4, "region"] = None
    frame.to_parquet(tmp_path / "new.parquet")
    predicted = zoo_cli("predict", str(wine_bundle / "bundle"), "new.parquet", "-o", "out.parquet")
    assert predicted.exit_code == 0, predicted.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    labels = json.loads((wine_bundle / "bundle" / "manifest.json").read_text())["class_labels"]
    bare = np.array(labels)[bare_session_labels(wine_bundle / "bundle" / "model.onnx", frame)]
    assert (out["label"].to_numpy() == bare).all()
    assert (bare == frame["cultivar"].to_numpy()).mean() > 0.8  # and it still knows wine


def test_the_python_api_trains_on_a_dataframe_and_predicts_from_a_table_or_a_dict(wine_bundle):
    import zoo

    frame = wine_frame()
    model = zoo.load_bundle(wine_bundle / "bundle")
    from_frame = model.predict(frame)
    from_table = model.predict(pa.Table.from_pandas(frame, preserve_index=False))
    columns = {name: frame[name].tolist() for name in model.model.features.names}
    assert (from_frame == from_table).all() and (from_frame == model.predict(columns)).all()
    assert model.predict_proba(frame.head(3)).shape == (3, 3)
    with pytest.raises(zoo.errors.PredictInputError, match="a table's columns"):
        model.predict(np.zeros((2, 15), np.float32))
    result = zoo.train("multiclass", data=frame, target="cultivar", id_column="bottle_id", ignore=["bottled"],
                       epochs=5)
    assert result.split.features.names == model.model.features.names
    with pytest.raises(zoo.errors.DataError, match=r"ignore=\['bottled'\]"):
        zoo.train("multiclass", data=frame, target="cultivar", id_column="bottle_id", epochs=1)


def test_columns_in_another_order_and_the_target_present_are_fine_but_an_unknown_column_is_not(wine_bundle, zoo_cli,
                                                                                                 tmp_path):
    frame = wine_frame()
    frame[frame.columns[::-1]].to_csv(tmp_path / "reversed.csv", index=False)
    assert zoo_cli("predict", str(wine_bundle / "bundle"), "reversed.csv", "-o", "a.csv").exit_code == 0
    frame.assign(extra=1).to_parquet(tmp_path / "extra.parquet")
    assert_clean_error(zoo_cli("predict", str(wine_bundle / "bundle"), "extra.parquet", "-o", "b.csv"), "'extra'")
    frame.drop(columns=["hue"]).to_parquet(tmp_path / "lacks.parquet")
    assert_clean_error(zoo_cli("predict", str(wine_bundle / "bundle"), "lacks.parquet", "-o", "c.csv"), "'hue'")
    frame.assign(hue="high").to_parquet(tmp_path / "words.parquet")
    assert_clean_error(zoo_cli("predict", str(wine_bundle / "bundle"), "words.parquet", "-o", "d.csv"),
                       "'hue'", "as numbers")
    assert not any((tmp_path / n).exists() for n in ("b.csv", "c.csv", "d.csv"))


# -- bad tables: one line, nothing written ---------------------------------------------------------------------


def _bad(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    one_class = frame.assign(cultivar="barolo")
    many = frame.assign(colour=[f"shade {i}" for i in range(len(frame))])
    no_target = frame.drop(columns=["cultivar"])
    gaps_in_target = frame.assign(cultivar=frame["cultivar"].where(frame.index % 9 != 0, None))
    infinite = frame.assign(ash=frame["ash"].where(frame.index != 3, np.inf))
    return {"one_class": one_class, "many": many, "no_target": no_target, "gaps_in_target": gaps_in_target,
            "infinite": infinite}


@pytest.mark.parametrize("case, args, fragments", [
    ("wine", ("--id-column", "bottle_id", "--ignore", "bottled"), ("which column is the target", "--target COLUMN")),
    ("wine", ("--target", "cultivar", "--id-column", "bottle_id"), ("'bottled'", "timestamp", "--ignore bottled")),
    ("wine", ("--target", "cultivar", "--ignore", "bottled"), ("'bottle_id'", "178 distinct", "--id-column")),
    ("many", WINE_ARGS, ("'colour'", "--max-categories 178")),
    ("one_class", WINE_ARGS, ("one class", "'barolo'")),
    ("wine", WINE_ARGS + ("--missing", "refuse"), ("gaps in", "'alcohol'", "'region'")),
    ("no_target", WINE_ARGS, ("no column 'cultivar'",)),
    ("gaps_in_target", WINE_ARGS, ("target 'cultivar' is empty in 20 rows",)),
    ("infinite", WINE_ARGS, ("'ash'", "infinite")),
    ("wine", ("--target", "cultivar", "--id-column", "bottle_id", "--ignore", "bottled,nope"), ("no column 'nope'",)),
])
def test_each_bad_table_gets_one_line_and_nothing_is_written(zoo_cli, tmp_path, case, args, fragments):
    frame = wine_frame()
    table = frame if case == "wine" else _bad(frame)[case]
    table.to_parquet(tmp_path / "t.parquet")
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "t.parquet", *args, "-o", "out"), *fragments)
    assert not (tmp_path / "out").exists()


def test_table_options_on_data_that_is_no_table_are_refused(zoo_cli):
    assert_clean_error(zoo_cli("train", "multiclass", "--data", "synthetic:100x4x3", "--target", "y"),
                       "--target", "not a table")


def test_a_binary_model_refuses_a_three_class_target(zoo_cli, tmp_path):
    iris_frame().to_csv(tmp_path / "iris.csv", index=False)
    assert_clean_error(zoo_cli("export", "binary", "--data", "iris.csv", "--target", "species", "-o", "out"),
                       "3 classes", "multiclass")


# -- what the reader makes of a table --------------------------------------------------------------------------


def test_class_labels_keep_a_documented_order(tmp_path):
    numbers = pd.DataFrame({"x": np.arange(40.0), "y": np.tile([10, 9, 2, 100], 10)})
    assert load_source(numbers).class_labels == ("2", "9", "10", "100")  # by value, not as text
    flags = pd.DataFrame({"x": np.arange(40.0), "y": np.tile([True, False], 20)})
    assert load_source(flags).class_labels == ("False", "True")
    words = pd.DataFrame({"x": np.arange(40.0), "label": np.tile(["b", "B", "a", "é"], 10)})
    assert load_source(words).class_labels == ("B", "a", "b", "é")  # by code point


def test_a_csv_with_a_bom_quoted_cells_and_a_late_word_column(tmp_path):
    rows = ["\ufeffsize,colour,label"] + [f'{i},"red, dark",{"yes" if i % 2 else "no"}' for i in range(5000)]
    rows[4500] = '4499,"blue",yes'
    rows.append('12,late words,no')
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    dataset = load_source(str(tmp_path / "t.csv"))
    assert dataset.feature_names == ("size", "colour") and dataset.class_labels == ("no", "yes")
    assert dataset.table.kinds == {"size": "numeric", "colour": "categorical"}


def test_the_trainers_encoding_and_the_oracles_numpy_encoding_agree(tmp_path):
    """pyarrow (what the model trains on) and numpy (the oracle's, on the graph's inputs): two paths, one result,
    gaps and unseen categories included."""
    from zoo.exports.export.oracle import encode as numpy_encode
    from zoo.tables.encoding import encode, fit, frame

    rng = np.random.default_rng(3)
    n = 500
    table = pa.table({"a": pa.array(np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))),
                      "b": pa.array(rng.choice(["x", "y", "z", "", None], n)),
                      "c": pa.array(rng.integers(0, 5, n)).dictionary_encode(),
                      "d": pa.array(rng.choice([True, False, None], n), pa.bool_())})
    kinds = {"a": "numeric", "b": "categorical", "c": "categorical", "d": "numeric"}
    features = fit(table.slice(0, 300), kinds)
    assert features.columns[1].categories == ("x", "y", "z") and features.columns[1].missing_level
    assert features.columns[2].categories == ("0", "1", "2", "3", "4")
    np.testing.assert_array_equal(encode(features, table), numpy_encode(features, frame(features, table)))
    unseen = pa.table({"a": [1.0], "b": ["w"], "c": pa.array([7]).dictionary_encode(), "d": [None]})
    np.testing.assert_array_equal(encode(features, unseen), numpy_encode(features, frame(features, unseen)))
    assert encode(features, unseen)[0, 1:4].sum() == 0  # an unseen category: all zeros


def test_a_tampered_features_record_is_one_line(wine_bundle, tmp_path):
    import shutil

    from zoo.exports.bundle.model import open_model

    bundle = tmp_path / "b"
    shutil.copytree(wine_bundle / "bundle", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["features"]["columns"][0]["median"] = "NaN"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError, match="no finite median"):
        open_model(bundle)
    with pytest.raises(DataError, match="kind"):
        Features.from_dict({"columns": [{"name": "a", "kind": "date"}]}, "x")


# -- a numeric table with gaps: OpenVINO, variants, the card, bench -----------------------------------------


@pytest.fixture(scope="module")
def numeric_bundle(tmp_path_factory):
    """Breast cancer as a numeric table with gaps and a word target, exported with both variants and its card (the
    guard loosened: on 113 held-out rows one label is 0.9 points, and these tests are about the graphs)."""
    from click.testing import CliRunner
    from sklearn.datasets import load_breast_cancer

    from zoo.cli import cli

    root = tmp_path_factory.mktemp("numeric")
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = np.array(["malignant", "benign"])[frame.pop("target").to_numpy()]
    rng = np.random.default_rng(0)
    for column in ("mean radius", "worst area", "mean texture"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    frame.to_parquet(root / "cancer.parquet")
    result = CliRunner().invoke(cli, ["export", "binary", "--data", str(root / "cancer.parquet"), "--target",
                                      "diagnosis", "--variant", "fp16", "--variant", "int8", "--min-agreement", "90",
                                      "--max-accuracy-drop", "5", "-o", str(root / "bundle")])
    assert result.exit_code == 0, result.output
    return root


def test_an_all_numeric_table_with_gaps_verifies_on_openvino(numeric_bundle, zoo_cli):
    pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
    result = zoo_cli("verify", str(numeric_bundle / "bundle"), "--runtime", "openvino-cpu", "--json")
    assert result.exit_code == 0, result.output
    replays = json.loads(result.stdout)["replays"]
    assert {r["status"] for r in replays} == {"passed"} and {r["model"] for r in replays} == {"fp32", "fp16", "int8"}


def test_variants_lower_the_model_behind_the_preprocessing_which_stays_exact(numeric_bundle):
    import onnx
    from onnx import numpy_helper

    from zoo.tables.graph import PREFIX

    def preprocessing(path):
        model = onnx.load(str(path))
        nodes = [(n.op_type, list(n.input)) for n in model.graph.node if n.name.startswith(PREFIX)]
        medians = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name.startswith(PREFIX)}
        return nodes, medians, [(i.name, i.type.tensor_type.elem_type) for i in model.graph.input]

    fp32 = preprocessing(numeric_bundle / "bundle" / "model.onnx")
    assert fp32[1] and all(v.dtype == np.float32 for v in fp32[1].values())
    for variant in ("fp16", "int8"):
        nodes, medians, inputs = preprocessing(numeric_bundle / "bundle" / "variants" / variant / "model.onnx")
        assert nodes == fp32[0] and inputs == fp32[2]
        assert all(np.array_equal(medians[k], v) and medians[k].dtype == np.float32 for k, v in fp32[1].items())


def test_the_card_has_a_features_section_from_the_manifest(numeric_bundle):
    page = (numeric_bundle / "bundle" / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((numeric_bundle / "bundle" / "manifest.json").read_text())
    section = page.split('id="table-features"', 1)[1].split("</table>", 1)[0]
    for column in manifest["features"]["columns"]:
        assert f"<td>{column['name']}</td>" in section
    radius = next(c for c in manifest["features"]["columns"] if c["name"] == "mean radius")
    assert f"a gap becomes the median {radius['median']:.6g}" in section and f"{radius['missing']:,} (" in section


def test_bench_times_a_table_model_on_its_held_out_columns(numeric_bundle, zoo_cli):
    result = zoo_cli("bench", str(numeric_bundle / "bundle"), "--runtime", "onnxruntime-cpu", "--repeats", "1",
                     "--batch-size", "1", "--batch-size", "256", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert {(r["runtime"], r["batch_size"]) for r in rows} >= {("onnxruntime-cpu", 256), ("torch-eager", 256)}


# -- checkpoints of table models --------------------------------------------------------------------------------


def test_a_table_models_checkpoint_exports_alone_and_measures_other_data(wine_bundle, zoo_cli, tmp_path):
    checkpoint = wine_bundle / "bundle" / "checkpoint.pt"
    again = zoo_cli("export", "multiclass", "--checkpoint", str(checkpoint), "-o", "again", "--no-card")
    assert again.exit_code == 0, again.output
    first, second = (json.loads((d / "manifest.json").read_text())
                     for d in (wine_bundle / "bundle", tmp_path / "again"))
    assert first["features"] == second["features"] and first["class_labels"] == second["class_labels"]
    other = wine_frame(seed=5)
    other.to_parquet(tmp_path / "other.parquet")
    measured = zoo_cli("export", "multiclass", "--checkpoint", str(checkpoint), "--eval-data", "other.parquet",
                       "-o", "measured", "--no-card", "--json")
    assert measured.exit_code == 0, measured.output
    report = json.loads(measured.stdout)
    cell = next(c for c in report["parity"]["cells"] if c["runtime"] == "onnxruntime-cpu")
    assert report["parity"]["rows"] == len(other) and cell["status"] == "passed"


def test_a_feature_named_like_an_output_is_refused_at_export(zoo_cli, tmp_path):
    frame = iris_frame().rename(columns={"petal width (cm)": "probabilities"})
    frame.to_parquet(tmp_path / "t.parquet")
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "t.parquet", "--target", "species", "-o", "out"),
                       "'probabilities' has the name of a tensor in the model")
    assert not (tmp_path / "out").exists()


# -- found by trying tables no one on the project wrote ----------------------------------------------------------


def test_a_csv_reads_alike_at_both_ends_na_words_numeric_names_and_booleans(zoo_cli, tmp_path):
    """'NA' in a text column is a gap when training and when scoring; a column named '2021' is a name; a column
    of True/False scores from the CSV it trained on; a feature may be called 'input'."""
    frame = iris_frame().rename(columns={"sepal length (cm)": "2021", "sepal width (cm)": "input"})
    frame["flag"] = frame.index % 2 == 0
    frame["colour"] = np.array(["red", "green", "NA"], dtype=object)[frame.index % 3]
    frame.to_csv(tmp_path / "t.csv", index=False)
    exported = zoo_cli("export", "multiclass", "--data", "t.csv", "--target", "species", "-o", "b", "--no-card")
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    colour = next(c for c in manifest["features"]["columns"] if c["name"] == "colour")
    assert colour["categories"] == ["green", "red"] and colour["missing_level"]
    assert next(c for c in manifest["features"]["columns"] if c["name"] == "flag")["type"] == "bool"
    assert zoo_cli("predict", "b", "t.csv", "-o", "all.csv").exit_code == 0  # the file it trained on
    rows = frame.drop(columns=["species"]).iloc[[0, 0]].copy()
    rows["colour"] = ["NA", ""]
    rows.to_csv(tmp_path / "gaps.csv", index=False)
    scored = zoo_cli("predict", "b", "gaps.csv", "-o", "gaps-out.csv")
    assert scored.exit_code == 0, scored.output
    out = pd.read_csv(tmp_path / "gaps-out.csv")
    np.testing.assert_array_equal(out.iloc[0].to_numpy(), out.iloc[1].to_numpy())  # 'NA' is the gap '' is


def test_more_refusals_a_newcomer_met(zoo_cli, tmp_path):
    frame = iris_frame()
    placeholders = frame.astype({"sepal length (cm)": object})
    placeholders.loc[::10, "sepal length (cm)"] = "?"
    placeholders.to_csv(tmp_path / "q.csv", index=False)
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "q.csv", "--target", "species", "-o", "o"),
                       "holds numbers, and '?' in 15 rows", "leave those cells empty")
    frame.assign(rid=[f"r{i}" for i in range(len(frame))]).to_csv(tmp_path / "id.csv", index=False)
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "id.csv", "--target", "rid", "--max-categories",
                               "500", "-o", "o"), "each of its 150 classes has a single row")
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "id.csv", "--target", "rid", "--id-column", "rid",
                               "-o", "o"), "'rid' is the target; it cannot be the id column too")
    frame.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    assert_clean_error(zoo_cli("export", "multiclass", "--data", "semi.csv", "--target", "species", "-o", "o"),
                       "looks separated by ';'")
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_of_a_table_model_takes_its_data_again_but_no_table_options(zoo_cli, tmp_path):
    iris_frame().to_parquet(tmp_path / "iris.parquet")
    trained = zoo_cli("train", "multiclass", "--data", "iris.parquet", "--target", "species", "--epochs", "3",
                      "-o", "ck.pt")
    assert trained.exit_code == 0, trained.output
    again = zoo_cli("export", "multiclass", "--checkpoint", "ck.pt", "--data", "iris.parquet", "-o", "b", "--no-card")
    assert again.exit_code == 0, again.output
    assert_clean_error(zoo_cli("export", "multiclass", "--checkpoint", "ck.pt", "--target", "species", "-o", "c"),
                       "--target does not apply with --checkpoint")


def test_headerless_csv_for_a_table_model(wine_bundle, zoo_cli, tmp_path):
    frame = wine_frame()
    columns = json.loads((wine_bundle / "bundle" / "manifest.json").read_text())["features"]["columns"]
    numbers = frame[[c["name"] for c in columns if c["kind"] == "numeric"]].head(3)
    numbers.to_csv(tmp_path / "rows.csv", index=False, header=False)
    assert_clean_error(zoo_cli("predict", str(wine_bundle / "bundle"), "rows.csv"), "has no header line",
                       "add the header")


def test_the_standardization_taken_from_the_columns_is_the_encoded_blocks(wine_bundle):
    """fit_encode's mean and deviation (a one-hot column's from its share) against numpy on the encoded block: parity
    cannot see a wrong scale, as the graph and the oracle would share it."""
    dataset = load_source(str(wine_bundle / "wine.parquet"), table=TableOptions("cultivar", None, ("bottled",),
                                                                                "bottle_id"))
    parts = split(dataset, 0.2, 0)
    std = parts.X_train.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(parts.mean, parts.X_train.astype(np.float64).mean(axis=0), rtol=1e-6, atol=1e-7)
    varying = std > 1e-12
    np.testing.assert_allclose(parts.scale[varying], 1 / std[varying], rtol=1e-5)
    assert np.all(parts.scale[~varying] == 1.0)


def test_an_infinite_number_at_scoring_is_one_line_unless_allowed(wine_bundle, zoo_cli, tmp_path):
    frame = wine_frame().head(4).copy()
    frame.loc[2, "proline"] = np.inf
    frame.to_parquet(tmp_path / "inf.parquet")
    assert_clean_error(zoo_cli("predict", str(wine_bundle / "bundle"), "inf.parquet", "-o", "out.csv"),
                       "row 3, column 'proline' is inf")
    assert not (tmp_path / "out.csv").exists()
    allowed = zoo_cli("predict", str(wine_bundle / "bundle"), "inf.parquet", "--allow-nan", "-o", "out.csv")
    assert allowed.exit_code == 0, allowed.output
    assert pd.read_csv(tmp_path / "out.csv")["class_index"].tolist()[2] == -1  # no class, by the graph itself


def test_pandas_stored_index_is_never_a_feature(zoo_cli, tmp_path):
    frame = iris_frame().set_index(pd.Index([f"f{i}" for i in range(150)], name=None))
    frame.to_parquet(tmp_path / "indexed.parquet")
    import pyarrow.parquet as pq

    assert "__index_level_0__" in pq.read_schema(tmp_path / "indexed.parquet").names
    exported = zoo_cli("export", "multiclass", "--data", "indexed.parquet", "--target", "species", "-o", "b",
                       "--no-card")
    assert exported.exit_code == 0, exported.output
    names = [c["name"] for c in json.loads((tmp_path / "b" / "manifest.json").read_text())["features"]["columns"]]
    assert names == list(frame.columns[:4])
    assert zoo_cli("predict", "b", "indexed.parquet", "-o", "p.csv").exit_code == 0


# -- a table bundle from someone else ------------------------------------------------------------------------


def _tamper_metadata(bundle: Path) -> str:
    import onnx

    model = onnx.load(str(bundle / "model.onnx"))
    for prop in model.metadata_props:
        if prop.key == "zoo.features":
            record = json.loads(prop.value)
            record["columns"][0]["median"] += 1.0
            prop.value = json.dumps(record)
    onnx.save(model, str(bundle / "model.onnx"))
    return "model.onnx"


def _rename_input(bundle: Path) -> str:
    import onnx

    model = onnx.load(str(bundle / "model.onnx"))
    old = model.graph.input[0].name
    model.graph.input[0].name = "renamed"
    for node in model.graph.node:
        node.input[:] = ["renamed" if n == old else n for n in node.input]
    onnx.save(model, str(bundle / "model.onnx"))
    return "model.onnx"


def _float_for_strings(bundle: Path) -> str:
    from onnx import numpy_helper

    features = json.loads((bundle / "manifest.json").read_text())["features"]["columns"]
    k = next(i for i, c in enumerate(features) if c["kind"] == "categorical")
    relative = f"test_data_set_0/input_{k}.pb"
    tensor = numpy_helper.from_array(np.zeros((1, 1), np.float32), features[k]["name"])
    (bundle / relative).write_bytes(tensor.SerializeToString())
    return relative


def _text_for_numbers(bundle: Path) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(bundle / "evaluation.npz") as archive:
        arrays = {name[:-4]: np.load(io.BytesIO(archive.read(name))) for name in archive.namelist()}
    arrays["column_0"] = arrays["column_0"].astype(str)
    with open(bundle / "evaluation.npz", "wb") as handle:
        np.savez(handle, **arrays)
    return "evaluation.npz"


@pytest.mark.parametrize("tamper, command, fragment", [
    (_tamper_metadata, "verify", "features is"),
    (_rename_input, "verify", "are not the"),
    (_float_for_strings, "verify", "takes strings (batch, 1)"),
    (_text_for_numbers, "report", "array 'column_0' is"),
])
def test_a_tampered_table_bundle_is_one_line(wine_bundle, zoo_cli, tmp_path, tamper, command, fragment):
    """Each piece a table bundle adds, changed as someone crafting it would (the checksums resealed)."""
    import shutil

    from tests.conftest import reseal

    bundle = tmp_path / "b"
    shutil.copytree(wine_bundle / "bundle", bundle)
    reseal(bundle, tamper(bundle))
    assert_clean_error(zoo_cli(command, str(bundle)), fragment)
