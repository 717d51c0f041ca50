"""The Python API beside the CLI: ``zoo.train``, ``zoo.export``, ``zoo.load_bundle``, ``zoo.report`` and
``zoo.serve``.

Each mirrors its command and returns a typed result; each imports the module that does the work when
called, so ``import zoo`` stays light (no numpy, torch or onnxruntime)::

    import zoo
    result = zoo.train("multiclass", epochs=10)                # a zoo.training.TrainResult
    zoo.train("multiclass", data=frame, target="species")      # a pandas DataFrame, a pyarrow Table, a path
    outcome = zoo.export(result, "bundles/digits")              # a zoo.exports.export.pipeline.Outcome, verified
    model = zoo.load_bundle("bundles/digits")                   # a zoo.exports.deploy.predictor.Predictor
    model.predict(X), model.predict_proba(X)
    zoo.report("bundles/digits")                                # remake bundles/digits/report.html
    zoo.serve("bundles/digits", port=8000)                      # the Open Inference Protocol, REST and gRPC

Errors are :class:`zoo.errors.ZooError` with the one line the CLI would print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.exports.bundle.layout import EXPORT_ROOT
from zoo.exports.export.options import ExportOptions
from zoo.exports.runtimes import DEFAULT_RUNTIME
from zoo.tables import MAX_CATEGORIES
from zoo.tables.features import TableOptions
from zoo.training.config import TrainConfig

if TYPE_CHECKING:
    from zoo.exports.deploy.predictor import Predictor
    from zoo.exports.export.pipeline import Outcome
    from zoo.training import TrainResult

_DEFAULTS = TrainConfig()


def train(model: str, *, data: Any = None, policy: str | None = None, epochs: int = _DEFAULTS.epochs,
          hidden_size: int | None = None, lr: float = _DEFAULTS.lr, batch_size: int = _DEFAULTS.batch_size,
          seed: int = _DEFAULTS.seed, holdout: float = _DEFAULTS.holdout, device: str = _DEFAULTS.device,
          target: str | None = None, features: list[str] | None = None, ignore: list[str] | None = None,
          id_column: str | None = None, max_categories: int = MAX_CATEGORIES, missing: str = "impute",
          **model_config: Any) -> TrainResult:
    """``zoo train MODEL``: train a registered model with its loss policy; the result is in memory.

    ``data``: a dataset name, a table (a path; a pandas DataFrame or a pyarrow Table), an ``.npz`` path or
    ``synthetic:ROWSxFEATURES[xCLASSES]`` (default: the model's dataset). ``target``, ``features``, ``ignore``,
    ``id_column``, ``max_categories`` and ``missing`` say what a table's columns are, as ``zoo train``'s options
    of those names do. Other keywords go to the model's builder.
    """
    from zoo.training import fit

    if hidden_size is not None:
        model_config["hidden_size"] = hidden_size
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, holdout=holdout, device=device)
    table = TableOptions(target, None if features is None else tuple(features), tuple(ignore or ()), id_column,
                         max_categories, missing, api=True)
    return fit(model, policy=policy, data=data, config=config, table=table, **model_config)


def export(model: str | TrainResult, output: str | os.PathLike | None = None, *, force: bool | None = None,
           runtimes: list[str] | None = None, exporter: str | None = None, opset: int | None = None,
           atol: float | None = None, rtol: float | None = None, variants: list[str] | None = None,
           max_accuracy_drop: float | None = None, min_agreement: float | None = None, card: bool | None = None,
           **training: Any) -> Outcome:
    """``zoo export``: export a trained result (or train model NAME first, with ``training`` keywords
    as :func:`train` takes them) to a bundle directory, verified on every runtime that can run here.

    The export keywords are :class:`~zoo.exports.export.options.ExportOptions`' fields; one not given takes
    its default there. ``card``: write the model card ``report.html`` (when matplotlib is installed).
    Returns the :class:`~zoo.exports.export.pipeline.Outcome` (path, manifest, parity, card); raises
    :class:`~zoo.exports.export.pipeline.ParityFailed` when a runtime disagrees, with nothing written.
    """
    from zoo.exports.export.pipeline import export_bundle

    if isinstance(model, str):
        name = model
        result = train(model, **training)
    else:
        if training:
            raise TypeError(f"training keywords ({', '.join(sorted(training))}) apply only when export trains; "
                            "this result is trained already")
        name, result = model.built.spec.name, model
    target = Path(output) if output is not None else Path(EXPORT_ROOT) / name
    options = ExportOptions.of(force=force, exporter=exporter, opset=opset, atol=atol, rtol=rtol, runtimes=runtimes,
                               variants=variants, max_accuracy_drop=max_accuracy_drop, min_agreement=min_agreement,
                               card=card)
    return export_bundle(result, target, options)


def load_bundle(path: str | os.PathLike, runtime: str | None = None, *, allow_nan: bool = False,
                variant: str | None = None) -> Predictor:
    """Open an exported bundle (or a zoo ``.onnx`` file) on ``runtime`` for scoring (default: onnxruntime-cpu);
    needs no torch.

    The :class:`~zoo.exports.deploy.predictor.Predictor` takes numpy arrays, pandas
    DataFrames and pyarrow tables, and pickles (it reopens in the receiving process).
    """
    from zoo.exports.deploy.predictor import Predictor

    return Predictor(path, runtime or DEFAULT_RUNTIME, allow_nan=allow_nan, variant=variant)


def serve(bundles: str | os.PathLike | list, *, on_ready: Any = None, **options: Any) -> None:
    """``zoo serve``: answer the Open Inference Protocol for ``bundles`` over REST and gRPC until SIGTERM/SIGINT.

    ``options`` are :class:`zoo.exports.serve.options.ServeOptions`' fields (``port=0`` takes any free port);
    ``on_ready(addresses)`` is called once both listen. Each bundle is verified first: one that fails raises
    :class:`zoo.errors.ZooError` and nothing is served. Needs the ``serve`` extra.
    """
    _server().serve(_bundles(bundles), on_ready=on_ready, **options)


def serve_app(bundles: str | os.PathLike | list, **options: Any) -> Any:
    """The ASGI application ``zoo serve`` runs, for your own ASGI server (``uvicorn.run(zoo.serve_app(...))``);
    its lifespan starts the gRPC server when ``grpc_port`` is given, and the watcher that swaps a rewritten
    bundle."""
    return _server().create_app(_bundles(bundles), grpc_port=options.pop("grpc_port", None), **options)


def _server():
    from zoo.exports.serve import server  # deferred: uvicorn, grpc and asyncio only for the server

    return server


def _bundles(bundles: str | os.PathLike | list) -> list:
    return [bundles] if isinstance(bundles, (str, os.PathLike)) else list(bundles)


def report(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """``zoo report DIR``: make the bundle's model card (``DIR/report.html``, or ``output``) from the bundle alone.

    Needs matplotlib, not torch. Returns the card's path; raises :class:`zoo.errors.ZooError` for a bundle
    that is not one or changed after export. The card says whether the bundle verified on this machine.
    """
    from zoo.exports.card import writing

    return writing.write(Path(path), None if output is None else Path(output), shown_as=str(path)).path
