"""``zoo serve``: verified bundles answering the Open Inference Protocol (the KServe v2 data plane) over REST and
gRPC, with concurrent requests batched into one runtime call.

::

    zoo serve zoo-exports/multiclass                      # http://127.0.0.1:8000, gRPC on 8001

    import zoo
    zoo.serve("zoo-exports/multiclass", port=8000)        # the same, from Python (blocks until stopped)
    app = zoo.serve_app("zoo-exports/multiclass")         # the ASGI app, for your own server

Rooms: :mod:`.tensors` (the protocol's tensors, decoded and encoded), :mod:`.models` (verified bundles, the
batcher, the swap on disk), :mod:`.core` (what both protocols share), :mod:`.rest`, :mod:`.grpc_service`,
:mod:`.metrics`, :mod:`.server` (options, security, uvicorn) and :mod:`.commands`.
"""

from __future__ import annotations

__all__ = ["ServeOptions", "create_app", "serve"]


def __getattr__(name: str):
    # Deferred: the command line imports .commands through this package for every ``zoo --help``, and the
    # server's modules bring asyncio and the protocol's codecs.
    if name in __all__:
        from zoo.exports.serve import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
