"""zoo: classifiers paired with the loss policies they need, exported to verified ONNX.

The public API is small and import-light (no torch at import)::

    import zoo
    zoo.list_models("multi*")            # names, fnmatch patterns
    model = zoo.get_model("multiclass", input_size=64, num_classes=10)
    zoo.get_policy("softmax-cross-entropy")

    result = zoo.train("multiclass", epochs=10)      # training, export and scoring (zoo.api)
    zoo.export(result, "bundles/digits")
    zoo.load_bundle("bundles/digits").predict(X)
    zoo.serve("bundles/digits")                      # REST and gRPC, until SIGTERM

Plugins implement the hooks in :mod:`zoo.hookspecs` with :data:`zoo.hookimpl`.
"""

from zoo.api import export, load_bundle, report, serve, serve_app, train
from zoo.hookspecs import hookimpl
from zoo.policies import LossPolicy
from zoo.registry import (
    get_dataset,
    get_model,
    get_model_spec,
    get_policy,
    get_runtime,
    list_datasets,
    list_models,
    list_policies,
    list_runtimes,
)
from zoo.specs import DatasetSpec, ModelSpec, Runtime, Session

__version__ = "0.1.0"

__all__ = [
    "DatasetSpec",
    "LossPolicy",
    "ModelSpec",
    "Runtime",
    "Session",
    "__version__",
    "export",
    "get_dataset",
    "get_model",
    "get_model_spec",
    "get_policy",
    "get_runtime",
    "hookimpl",
    "list_datasets",
    "list_models",
    "list_policies",
    "list_runtimes",
    "load_bundle",
    "report",
    "serve",
    "serve_app",
    "train",
]
