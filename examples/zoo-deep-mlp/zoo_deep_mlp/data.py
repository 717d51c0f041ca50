"""A dataset a shallow net finds hard: three spirals wound around each other."""

import numpy as np

from zoo.data import Dataset


def spirals(points_per_class: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(classes):
        radius = np.linspace(0.0, 1.0, points_per_class)
        angle = np.linspace(k * 4.0, (k + 1) * 4.0, points_per_class) + rng.normal(0, noise, points_per_class)
        X.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
        y.append(np.full(points_per_class, k))
    return Dataset("spirals", np.vstack(X), np.concatenate(y), tuple(f"arm-{k}" for k in range(classes)))
