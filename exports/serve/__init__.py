"""``zoo serve``: verified bundles answering the Open Inference Protocol (the KServe v2 data plane) over REST and
gRPC, with concurrent requests batched into one runtime call.

::

    zoo serve zoo-exports/multiclass                      # http://127.0.0.1:8000, gRPC on 8001

    import zoo
    zoo.serve("zoo-exports/multiclass", port=8000)        # the same, from Python (blocks until stopped)
    app = zoo.serve_app("zoo-exports/multiclass")         # the ASGI app, for your own server
                                                          # (zoo.exports.serve.server.create_app)

Rooms: :mod:`.tensors` (the protocol's tensors, decoded and encoded), :mod:`.models` (verified bundles, the
batcher, the swap on disk), :mod:`.core` (what both protocols share), :mod:`.rest`, :mod:`.grpc_service`,
:mod:`.metrics`, :mod:`.options`, :mod:`.server` (security, uvicorn, workers) and :mod:`.commands`.
"""
