"""What the card shows, measured from the bundle alone: scores, replays and the torch reference's differences."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.exports.bundle.evaluation import read as read_evaluation
from zoo.exports.bundle.manifest import Manifest
from zoo.exports.bundle.model import open_model
from zoo.exports.bundle.testdata import load_test_data
from zoo.exports.card.numbers import confusion, reliability
from zoo.exports.deploy.verify import VerifyReport, verify
from zoo.exports.runtimes import DEFAULT_RUNTIME, Runtimes, open_session, run, select


@dataclass
class Evidence:
    bundle: Path
    shown_as: str  # the bundle's path as the usage snippets name it
    manifest: Manifest
    model_sha256: str
    y: np.ndarray  # the held-out rows' true labels
    probabilities: np.ndarray  # model.onnx on those rows, (rows, classes)
    predicted: np.ndarray  # model.onnx's label output on those rows
    differences: np.ndarray  # |onnxruntime - torch reference| of every finite probability in the test data sets
    replays: VerifyReport
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        """One output column, P(positive class): a sigmoid head (as zoo.load_bundle's predict_proba reads it)."""
        return self.manifest.policy.get("head") != "softmax"

    @property
    def verified(self) -> bool:
        return self.manifest.verified and self.replays.verified

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.class_labels)

    @functools.cached_property
    def matrix(self):
        """The confusion matrix (a figure and the per-class table show it)."""
        return confusion(self.y, self.predicted, len(self.labels))

    @functools.cached_property
    def calibration(self) -> dict[str, Any]:
        """Binary: P(positive) against the positive rate; multiclass: the top label's probability against accuracy."""
        if self.binary:
            return reliability(self.probabilities[:, 1], self.y == 1)
        return reliability(self.probabilities.max(axis=1), self.predicted == self.y)


def gather(bundle: Path, shown_as: str | None = None, runtimes: Runtimes = None) -> Evidence:
    """Open the bundle (checksums, ONNX checker), score its held-out rows and replay its test data (on
    ``runtimes``: the command's selection, or every runtime that can run here)."""
    bundle = Path(bundle)
    started = time.perf_counter()
    deployed = open_model(bundle)
    if deployed.manifest is None:
        raise ZooError(f"{bundle} is not a bundle directory: a card is made from one (zoo export writes it)")
    manifest = deployed.manifest
    evaluation = read_evaluation(bundle, manifest)
    [(default, _)] = select([DEFAULT_RUNTIME])  # a base dependency: select refuses it in one line if broken
    session = open_session(default, deployed.model_path)
    scored = run(session, evaluation.X, ["probabilities", "label"])
    probabilities = scored["probabilities"].astype(np.float64)
    if manifest.policy.get("head") != "softmax":
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    differences = []
    for _, x, expected in load_test_data(deployed):
        got = run(session, x, ["probabilities"])["probabilities"].astype(np.float64)
        diff = np.abs(got - expected["probabilities"].astype(np.float64)).ravel()
        differences.append(diff[np.isfinite(diff)])
    measured = time.perf_counter()
    replays = verify(bundle, runtimes=runtimes)
    return Evidence(bundle, str(bundle) if shown_as is None else shown_as, manifest,
                    manifest.sha256[manifest.files.model], evaluation.y, probabilities,
                    scored["label"].astype(np.int64), np.concatenate(differences), replays,
                    {"scoring": measured - started, "replay": time.perf_counter() - measured})

