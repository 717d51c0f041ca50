"""Data sources: bundled datasets, user files, synthetic data, the split and standardization."""

import re

import numpy as np
import pytest

from zoo.data import Dataset, load_source, split, synthetic
from zoo.errors import DataError


@pytest.mark.parametrize("name, loader, shape, classes", [
    ("digits", "load_digits", (1797, 64), 10),
    ("breast-cancer", "load_breast_cancer", (569, 30), 2),
    ("iris", "load_iris", (150, 4), 3),
    ("wine", "load_wine", (178, 13), 3),
])
def test_bundled_datasets_equal_scikit_learns(registry, name, loader, shape, classes):
    import sklearn.datasets

    ours = registry.get("dataset", name).load()
    theirs = getattr(sklearn.datasets, loader)()
    assert ours.X.shape == shape and ours.num_classes == classes
    np.testing.assert_allclose(ours.X, theirs.data.astype(np.float32))
    np.testing.assert_array_equal(ours.y, theirs.target)
    assert list(ours.labels) == [str(t) for t in theirs.target_names]
    assert list(ours.feature_names) == [str(n) for n in theirs.feature_names]


def test_csv_with_header(tmp_path):
    """A header makes a table: the target by name, the features by name, encoded at the split."""
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,4.5,1\n\n5,6,2\n1,2,0\n3,4.5,1\n5,6,2\n")
    ds = load_source(str(path))
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2] and ds.y.dtype == np.int64 and ds.class_labels == ("0", "1", "2")
    assert ds.feature_names == ("a", "b")
    parts = split(ds, 0.34, 0)
    assert sorted(parts.X_train.tolist() + parts.X_test.tolist()) == sorted([[1, 2], [3, 4.5], [5, 6]] * 2)
    assert parts.X_train.dtype == np.float32 and parts.features.names == ("a", "b")


def test_a_csv_without_a_header_keeps_its_features_positional(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,0\n3,4,1\n")
    ds = load_source(str(path))
    assert ds.feature_names is None and ds.X.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [0, 1]


@pytest.mark.parametrize("header", [",,label\n", "a,a,label\n"])
def test_a_header_with_blank_or_repeated_names_is_refused(tmp_path, header):
    path = tmp_path / "d.csv"
    path.write_text(header + "1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match="names a column more than once, or leaves one unnamed"):
        load_source(str(path))


def test_feature_names_must_fit_the_columns():
    with pytest.raises(DataError, match="3 feature names for 2 feature columns"):
        Dataset("x", np.zeros((2, 2)), np.array([0, 1]), feature_names=("a", "b", "c"))
    with pytest.raises(DataError, match="'a' appears more than once"):
        Dataset("x", np.zeros((2, 2)), np.array([0, 1]), feature_names=("a", "a"))


@pytest.mark.parametrize("text, message", [
    ("1,2,0\n3,abc,1\n", "line 2, column 2: 'abc' is not a number; a CSV without a header"),
    ("1,2,0\n3,4\n", "line 2: 2 values, but earlier rows have 3"),
    ("1,2,0.5\n", "label 0.5 is not an integer"),
    ("1,2,-1\n", "label -1 is out of range"),
    ("1,2,nan\n", "line 1, column 3 is empty or NaN"),
    ("a,b,c\n", "no data rows"),
    ("", "no rows"),
    ("1,inf,0\n1,2,1\n", "NaN/Inf feature values"),
    ("a,b,label\n1,inf,0\n1,2,1\n", "column 'b' holds 1 infinite value"),
    ("a,b,label\n1,2,0\n1,2,\n", "the target 'label' is empty in 1 rows (first at row 2)"),
])
def test_bad_csv(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        load_source(str(path))


def test_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(12.0).reshape(6, 2), y=np.array([0, 1, 0, 1, 0, 1]),
             class_labels=np.array(["no", "yes"]))
    ds = load_source(str(path))
    assert ds.labels == ("no", "yes") and ds.X.shape == (6, 2) and ds.feature_names is None
    np.savez(path, X=np.arange(12.0).reshape(6, 2), y=np.array([0, 1, 0, 1, 0, 1]),
             feature_names=np.array(["height", "width"]))
    assert load_source(str(path)).feature_names == ("height", "width")
    np.savez(tmp_path / "e.npz", features=np.zeros((2, 2)))
    with pytest.raises(DataError, match="missing array X and y"):
        load_source(str(tmp_path / "e.npz"))
    (tmp_path / "f.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_source(str(tmp_path / "f.npz"))


def test_one_hot_labels_in_a_file_are_refused():
    with pytest.raises(DataError, match="look one-hot"):
        Dataset("x", np.zeros((3, 2)), np.eye(3))


def test_missing_and_unknown_sources(tmp_path, registry):
    with pytest.raises(DataError, match="does not exist"):
        load_source(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match=r"give a table \(.parquet, .arrow, .feather, .csv"):
        (tmp_path / "data.txt").write_text("1,2\n")
        load_source(str(tmp_path / "data.txt"))
    with pytest.raises(LookupError, match="did you mean 'digits'"):
        load_source("digit", registry)


def test_synthetic_source():
    ds = load_source("synthetic:300x5x4")
    assert ds.X.shape == (300, 5) and ds.num_classes == 4
    assert np.array_equal(ds.X, synthetic(300, 5, 4).X)
    assert load_source("synthetic").X.shape == (1000, 20)


def test_split_is_stratified_deterministic_and_standardizes_on_train_only(registry):
    ds = registry.get("dataset", "digits").load()
    a, b = split(ds, 0.2, seed=3), split(ds, 0.2, seed=3)
    assert np.array_equal(a.X_test, b.X_test) and not np.array_equal(a.X_test, split(ds, 0.2, seed=4).X_test)
    assert len(a.y_test) + len(a.y_train) == len(ds.y)
    assert set(np.unique(a.y_test)) == set(range(10))
    np.testing.assert_allclose(a.mean, a.X_train.mean(axis=0), rtol=1e-5, atol=1e-6)
    standardized = (a.X_train - a.mean) * a.scale
    varying = a.X_train.std(axis=0) > 0
    np.testing.assert_allclose(standardized[:, varying].std(axis=0), 1.0, rtol=1e-4)
    assert np.all(a.scale[~varying] == 1.0)  # constant pixels stay finite


def test_too_few_rows_for_a_split():
    with pytest.raises(DataError, match="too few"):
        split(Dataset("tiny", np.zeros((1, 2)), np.array([0])), 0.2)


# -- found on review -----------------------------------------------------------------------------


def test_a_directory_named_like_a_dataset_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    (tmp_path / "iris").write_text("not a dataset")
    assert load_source("digits").X.shape == (1797, 64)
    assert load_source("iris").X.shape == (150, 4)
    with pytest.raises(DataError, match="digits/ is a directory without .parquet files"):
        load_source("digits/")  # an empty directory: no Parquet files in it


@pytest.mark.parametrize("source, fragment", [
    ("synthetic:0x5x3", "synthetic:0x5x3: synthetic data needs at least 2 rows"),
    ("synthetic:10x0x3", "synthetic:10x0x3: synthetic data needs at least 2 rows, 1 feature"),
    ("synthetic:10x5x1", "and 2 classes"),
])
def test_synthetic_sizes_are_taken_as_written(source, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        load_source(source)


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    rows = "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
    for name, text in (("excel.csv", rows), ("excel-header.csv", "a,b,label\n" + rows)):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        data = load_source(str(tmp_path / name))
        assert data.y.tolist() == [0, 1, 0, 1]
        if name == "excel.csv":
            assert data.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
        else:
            assert data.feature_names == ("a", "b")  # the mark is not part of the first name
