"""Real datasets that ship inside scikit-learn, read from its package data without importing it.

``import sklearn.datasets`` costs about 1.7 s; the files themselves load in
milliseconds. The arrays are the ones ``sklearn.datasets.load_*`` return (a
test compares them); if a future scikit-learn moves the files, zoo falls back
to its loaders.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from zoo import DatasetSpec, hookimpl
from zoo.errors import DataError


def _sklearn_data_dir() -> Path | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


#: scikit-learn's ``feature_names`` for each file (its loaders spell them out in code, not in the files;
#: a test compares them with the loaders').
FEATURE_NAMES = {
    "digits": tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8)),
    "breast-cancer": tuple(f"{kind} {what}" if kind != "error" else f"{what} error"
                           for kind in ("mean", "error", "worst")
                           for what in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                                        "concavity", "concave points", "symmetry", "fractal dimension")),
    "iris": ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"),
    "wine": ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
             "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines",
             "proline"),
}


def _load_bundled(name: str, filename: str, sklearn_loader: str):
    """sklearn's CSV layout: a header 'rows,features,class names...', then features and the label."""
    import gzip

    import numpy as np

    from zoo.data import Dataset

    directory = _sklearn_data_dir()
    if directory is None:
        raise DataError(f"dataset {name!r} needs scikit-learn: pip install scikit-learn")
    path = directory / filename
    if path.exists():
        opener = gzip.open if filename.endswith(".gz") else open
        with opener(path, "rt") as handle:
            header = None if filename.startswith("digits") else handle.readline().strip().split(",")
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
        labels = header[2:] if header else [str(i) for i in range(10)]
        return Dataset(name, table[:, :-1], table[:, -1].astype(np.int64), tuple(labels), FEATURE_NAMES[name])
    import sklearn.datasets  # the files moved: take the slow, sure path

    bunch = getattr(sklearn.datasets, sklearn_loader)()
    return Dataset(name, bunch.data, bunch.target, tuple(str(t) for t in bunch.target_names),
                   tuple(str(n) for n in bunch.feature_names))


def load_digits():
    return _load_bundled("digits", "digits.csv.gz", "load_digits")


def load_breast_cancer():
    return _load_bundled("breast-cancer", "breast_cancer.csv", "load_breast_cancer")


def load_iris():
    return _load_bundled("iris", "iris.csv", "load_iris")


def load_wine():
    return _load_bundled("wine", "wine_data.csv", "load_wine")


DATASETS = (
    DatasetSpec("digits", "8x8 handwritten digits, 1,797 x 64, 10 classes (scikit-learn)",
                "multiclass", load_digits),
    DatasetSpec("breast-cancer", "Wisconsin breast cancer, 569 x 30, 2 classes (scikit-learn)",
                "binary", load_breast_cancer),
    DatasetSpec("iris", "Fisher's iris, 150 x 4, 3 classes (scikit-learn)", "multiclass", load_iris),
    DatasetSpec("wine", "Wine recognition, 178 x 13, 3 classes (scikit-learn)", "multiclass", load_wine),
    DatasetSpec("synthetic", "Gaussian blobs, 1,000 x 20, 3 classes; synthetic:ROWSxFEATURES[xCLASSES]",
                "multiclass", "zoo.data:synthetic"),
)


@hookimpl
def register_datasets(register):
    for spec in DATASETS:
        register(spec)
