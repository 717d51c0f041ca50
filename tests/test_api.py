"""The Python API: zoo.train, zoo.export and zoo.load_bundle, checked against a bare onnxruntime session,
the trained torch module and the true labels, never against zoo's own scoring code."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import zoo
from zoo.errors import PredictInputError, ZooError
from zoo.exports.export.pipeline import Outcome
from zoo.training import TrainResult


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    results, outcomes = {}, {}
    for name in ("multiclass", "binary"):
        results[name] = zoo.train(name, epochs=3, device="cpu")
        outcomes[name] = zoo.export(results[name], root / name, runtimes=["onnxruntime-cpu"])
    return root, results, outcomes


def bare_session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])


def test_train_and_export_return_typed_results_and_a_bundle_that_verifies(trained, tmp_path):
    root, results, outcomes = trained
    assert isinstance(results["multiclass"], TrainResult) and isinstance(outcomes["multiclass"], Outcome)
    assert outcomes["multiclass"].verified and outcomes["multiclass"].path == root / "multiclass"
    assert outcomes["multiclass"].manifest.input["feature_names"] == list(results["multiclass"].feature_names)
    verify = subprocess.run([sys.executable, "-m", "zoo", "verify", str(root / "binary")], capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    # export trains first when given a name, with the same keywords as train
    outcome = zoo.export("multiclass", tmp_path / "named", epochs=1, hidden_size=8, device="cpu",
                         runtimes=["onnxruntime-cpu"])
    assert outcome.manifest.model["config"]["hidden_size"] == 8 and (tmp_path / "named" / "model.onnx").exists()
    # the card: written with the bundle unless card=False, and remade by zoo.report from the bundle alone
    assert outcome.card.path == tmp_path / "named" / "report.html" and outcome.card.size > 10_000
    bare = zoo.export(results["binary"], tmp_path / "bare", card=False, runtimes=["onnxruntime-cpu"])
    assert bare.card is None and not (tmp_path / "bare" / "report.html").exists()
    assert zoo.report(tmp_path / "bare") == tmp_path / "bare" / "report.html"
    assert zoo.report(tmp_path / "bare", tmp_path / "card.html").read_text().endswith("</html>\n")
    with pytest.raises(TypeError, match="trained already"):
        zoo.export(results["multiclass"], tmp_path / "again", epochs=3)
    with pytest.raises(ZooError, match="already exists"):
        zoo.export(results["multiclass"], root / "multiclass")


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_predict_and_predict_proba_on_numpy_pandas_and_arrow(trained, name):
    root, results, _ = trained
    result = results[name]
    X, y = result.split.X_test, result.split.y_test
    model = zoo.load_bundle(root / name)
    session = bare_session(root / name)
    probabilities, labels = session.run(["probabilities", "label"], {session.get_inputs()[0].name: X})
    frame = pd.DataFrame(X, columns=list(model.feature_names))
    for given in (X, frame, pa.Table.from_pandas(frame), X.astype(np.float64).tolist()):
        assert model.predict(given).tolist() == [result.class_labels[i] for i in labels]
        proba = model.predict_proba(given)
        assert proba.shape == (len(X), len(result.class_labels))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(proba[:, -1], probabilities[:, -1])
    # the accuracy on the true labels is the one the bundle claims
    accuracy = float(np.mean(model.predict(X) == np.array(result.class_labels)[y]))
    assert accuracy == pytest.approx(result.metrics["holdout_accuracy"], abs=1e-12)
    assert set(model.run(X[:3])) == {o.name for o in session.get_outputs()}
    assert list(model.classes_) == list(result.class_labels) and model.n_features == X.shape[1]
    assert model.predict(X[0]).shape == (1,)  # one row


def test_a_predictor_pickles_and_scores_in_another_process(trained):
    root, results, _ = trained
    X = results["multiclass"].split.X_test
    model = zoo.load_bundle(root / "multiclass")
    copy = pickle.loads(pickle.dumps(model))
    assert copy.predict(X).tolist() == model.predict(X).tolist() and repr(copy) == repr(model)
    assert len(pickle.dumps(model)) < 1000  # a path and a runtime name, not the model
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # fresh interpreters: the session reopens there
        parts = pool.map(model.predict, np.array_split(X, 4))
    assert np.concatenate(parts).tolist() == model.predict(X).tolist()


def test_bad_input_gets_one_clear_error(trained):
    root, results, _ = trained
    model = zoo.load_bundle(root / "multiclass")
    X = results["multiclass"].split.X_test[:5]
    with pytest.raises(PredictInputError, match=r"takes rows of 64 features, got an array of shape \(5, 3\)"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="features must be numbers"):  # a ValueError, as scikit-learn raises
        model.predict(np.array([["a"] * 64]))
    frame = pd.DataFrame(X, columns=list(model.feature_names)).assign(target=1)
    with pytest.raises(PredictInputError, match="has column 'target' that the model does not take: drop it"):
        model.predict(frame)
    assert model.predict(frame, columns=list(model.feature_names)).tolist() == model.predict(X).tolist()
    with pytest.raises(PredictInputError, match="not named"):
        model.predict(pd.DataFrame(X))
    bad = X.copy()
    bad[2, 5] = np.nan
    with pytest.raises(PredictInputError, match=r"row 3, feature 6 \('pixel_0_5'\) is nan"):
        model.predict(bad)
    lenient = zoo.load_bundle(root / "multiclass", allow_nan=True)
    assert lenient.predict(bad)[2] == "" and lenient.predict(bad)[0] == model.predict(X)[0]
    with pytest.raises(ZooError, match="unknown runtime .nope."):
        zoo.load_bundle(root / "multiclass", runtime="nope")
    with pytest.raises(ZooError, match="not a zoo bundle"):
        zoo.load_bundle(root)


def test_importing_zoo_stays_light():
    code = "import sys, zoo; print(sorted(m for m in ('torch', 'onnxruntime', 'pyarrow', 'onnx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_bundle_re_exported_in_place_is_loaded_anew_in_the_same_process(trained, zoo_cli, tmp_path):
    import shutil

    root, results, _ = trained
    shutil.copytree(root / "multiclass", tmp_path / "b")
    X = results["multiclass"].split.X_test
    before = zoo.load_bundle(tmp_path / "b").predict_proba(X)
    session = bare_session(tmp_path / "b")
    np.testing.assert_array_equal(before, session.run(["probabilities"], {"input": X})[0])
    again = zoo_cli("export", "multiclass", "--epochs", "1", "--seed", "1", "-o", "b", "--force", "--no-card",
                    "--runtime", "onnxruntime-cpu")
    assert again.exit_code == 0, again.output
    session = bare_session(tmp_path / "b")  # the new file
    p, labels = session.run(["probabilities", "label"], {"input": X})
    assert not np.array_equal(p, before)  # another model ...
    model = zoo.load_bundle(tmp_path / "b")  # ... which a new Predictor serves, not the session opened before
    np.testing.assert_array_equal(model.predict_proba(X), p)
    np.testing.assert_array_equal(model.run(X, ["label"])["label"], labels)


@pytest.mark.parametrize("rows", [65_537, 131_073])
def test_every_row_is_scored_when_a_batch_is_one_row_past_a_slice(trained, rows):
    """Rows run 65,536 at a time: one row past a whole number of slices is still scored, in its place."""
    root, results, _ = trained
    X_test = results["multiclass"].split.X_test
    X = X_test[np.random.default_rng(rows).integers(0, len(X_test), rows)]
    X[-1] = X_test[0]  # the last row, known
    session = bare_session(root / "multiclass")
    expected = dict(zip(["logits", "probabilities", "label"], session.run(["logits", "probabilities", "label"],
                                                                          {"input": X})))
    model = zoo.load_bundle(root / "multiclass")
    proba = model.predict_proba(X)
    assert proba.shape == (rows, 10)
    np.testing.assert_array_equal(proba, expected["probabilities"])
    got = model.run(X)
    assert {k: v.shape[0] for k, v in got.items()} == {k: rows for k in expected}
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    assert model.predict(X)[-1] == model.predict(X_test[:1])[0]
