"""torch eager: the trained module, rebuilt from a bundle's checkpoint, as ``zoo bench``'s baseline."""

from __future__ import annotations

import importlib.util

from zoo.errors import first_line
from zoo.exports.bundle import reading
from zoo.exports.bundle.model import Deployed
from zoo.exports.deploy.bench import Timed
from zoo.exports.export.exporter import make_wrapper
from zoo.tables import Frame
from zoo.tables.encoding import encode
from zoo.training import checkpoint

NAME = "torch-eager"


def torch_eager(deployed: Deployed) -> Timed | str:
    """The trained module in torch with the graph's outputs, from the bundle's checkpoint; or why not."""
    try:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install 'zoo-onnx[train]')"
    except ImportError:
        return "torch is not installed (pip install 'zoo-onnx[train]')"
    manifest = deployed.manifest
    if manifest is None or not manifest.files.checkpoint:
        return "a bare .onnx has no checkpoint"
    # Inside the bundle, a regular file of the size the manifest records; anything else refuses the bundle.
    path = reading.member(deployed.bundle, manifest.files.checkpoint, "the checkpoint", sizes=manifest.bytes)
    try:
        import pyarrow as pa
        import torch

        result = checkpoint.load(path)
        wrapper = make_wrapper(result.module, result.policy, result.split.mean, result.split.scale)
    except Exception as exc:
        return f"cannot rebuild the model from {path.name}: {first_line(exc)}"

    features = result.split.features

    def bind(x):
        if isinstance(x, Frame):  # a table model: its columns encoded by the trainer's pyarrow path, timed too
            columns = pa.table({name: pa.array(v.reshape(-1)) for name, v in x.columns.items()})

            def call():
                with torch.inference_mode():
                    return wrapper(torch.from_numpy(encode(features, columns)))

            return call
        tensor = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                return wrapper(tensor)

        return call

    return Timed(NAME, "cpu", "fp32", bind, None)
