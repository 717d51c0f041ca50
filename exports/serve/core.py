"""What REST and gRPC share: the models, the limits, the token, the metrics, and one infer path.

Each protocol decodes its request into numpy tensors and encodes the answer; everything between (which model,
its version, the row limit, the model's own checks, the batcher) is here, once.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import numpy as np

from zoo.exports.serve.metrics import AccessLog, Metrics
from zoo.exports.serve.models import OUTPUTS, Repository, Served
from zoo.exports.serve.tensors import ProtocolError

SERVER_NAME = "zoo"
EXTENSIONS = ["binary_tensor_data"]


@dataclass
class Limits:
    max_request_bytes: int
    max_rows: int


class Core:
    def __init__(self, repository: Repository, metrics: Metrics, limits: Limits, token: str | None = None,
                 access: AccessLog | None = None):
        self.repository, self.metrics, self.limits, self.access = repository, metrics, limits, access
        self._token = token.encode("utf-8") if token else None
        self.ready = True

    def authorized(self, header: str | bytes | None) -> bool:
        """A bearer token, compared in constant time (always true when the server has none)."""
        if self._token is None:
            return True
        if not header:
            return False
        if isinstance(header, str):
            header = header.encode("utf-8", "replace")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)

    def model(self, name: str, version: str | None = None) -> Served:
        return self.repository.get(name, version)

    def metadata(self, served: Served) -> dict:
        return {"name": served.name, "versions": list(self.repository.models[served.name]), "platform": "onnx",
                "inputs": served.inputs, "outputs": served.outputs, "parameters": served.parameters}

    async def infer(self, name: str, version: str | None, tensors: dict[str, np.ndarray],
                    outputs: list[str] | None) -> tuple[Served, dict[str, np.ndarray]]:
        """The model that answered, and the requested outputs (all by default) for the request's tensors.

        The model is looked up here, with no ``await`` between the lookup and joining its batcher's queue: a
        swap that retires the old model waits for the requests queued on it, and a request that read its body
        while the swap happened goes to the new one.
        """
        served = self.repository.get(name, version)
        if outputs is not None:
            unknown = [o for o in outputs if o not in OUTPUTS]
            if unknown:
                raise ProtocolError(f"model {served.name!r} has no output {unknown[0]!r} (outputs: "
                                    f"{', '.join(OUTPUTS)})")
        rows = next(iter(tensors.values())).shape[0] if tensors else 0
        if rows > self.limits.max_rows:
            raise ProtocolError(f"{rows} rows in one request; at most {self.limits.max_rows} (--max-rows): send "
                                "them in several requests", 413)
        if rows == 0:
            raise ProtocolError("the request holds no rows")
        x = served.rows(tensors)
        got = await served.batcher.submit(x)
        return served, {output: got[output] for output in (outputs or OUTPUTS)}

    def answered(self, served: Served, protocol: str, started: float) -> None:
        self.metrics.answered(served.name, protocol, time.perf_counter() - started)
