"""``zoo serve``: the command line of :mod:`zoo.exports.serve` (which needs the ``serve`` extra)."""

from __future__ import annotations

import click

from zoo.errors import ZooError
from zoo.exports.serve.options import TOKEN_VARIABLE, ServeOptions

_MISSING = ("zoo serve needs the serve extra: pip install 'zoo-onnx[serve]' (uvicorn, orjson, grpcio, "
            "prometheus_client)")


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_DEFAULT = ServeOptions()


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=str))
@click.option("--host", default=_DEFAULT.host, show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", default=_DEFAULT.port, show_default=True, type=click.IntRange(0, 65535),
              help="REST port (0: any).")
@click.option("--grpc-port", default=_DEFAULT.grpc_port, show_default=True, type=click.IntRange(0, 65535),
              help="gRPC port (0: any).")
@click.option("--no-grpc", is_flag=True, help="Serve REST only.")
@click.option("--runtime", default=_DEFAULT.runtime, show_default=True, help="The runtime to serve on.")
@click.option("--variant", default=None, help="Serve a variant of each bundle (fp16, int8) instead of model.onnx.")
@click.option("--name", default=None, help="The model's name (default: the bundle folder's); several bundles of "
              "one name are its versions 1, 2, ...")
@click.option("--token", envvar=TOKEN_VARIABLE, default=None, show_envvar=True,
              help="Bearer token every request but /v2/health/live must carry.")
@click.option("--max-request-bytes", default=_DEFAULT.max_request_bytes, show_default=True, type=int,
              help="Largest request body accepted (413 beyond).")
@click.option("--max-rows", default=_DEFAULT.max_rows, show_default=True, type=int, help="Most rows in one request.")
@click.option("--max-batch-rows", default=_DEFAULT.max_batch_rows, show_default=True, type=int,
              help="Most rows coalesced into one runtime call.")
@click.option("--max-queue-delay-us", default=_DEFAULT.max_queue_delay_us, show_default=True, type=int,
              help="How long a request may wait for others to join its batch (0: it joins those queued while "
                   "the runtime was busy, and waits for none).")
@click.option("--ssl-certfile", default=None, help="PEM certificate: serve REST and gRPC over TLS.")
@click.option("--ssl-keyfile", default=None, help="PEM private key for --ssl-certfile.")
@click.option("--access-log/--no-access-log", default=_DEFAULT.access_log, show_default=True,
              help="One line per request.")
@click.option("--workers", default=_DEFAULT.workers, show_default=True, type=click.IntRange(1, 64),
              help="Processes sharing the ports, each with its own models and batcher.")
@click.option("--watch-interval", default=_DEFAULT.watch_interval, show_default=True, type=float,
              help="Seconds between looks for a bundle rewritten on disk (0: never swap).")
def serve(bundles, host, port, grpc_port, no_grpc, runtime, variant, name, token, max_request_bytes, max_rows,
          max_batch_rows, max_queue_delay_us, ssl_certfile, ssl_keyfile, access_log, workers, watch_interval) -> None:
    """Serve BUNDLES over the Open Inference Protocol (KServe v2): REST and gRPC.

    Each bundle is verified on the runtime before it is served (checksums, then its own test data); one that
    fails is refused and the server does not start. Concurrent requests are batched into one runtime call.
    When a served bundle is written again (zoo export --force, zoo variants --add), the new one is verified
    and swapped in; in-flight requests finish on the old one. SIGTERM drains and exits 0.

    \b
    Routes: /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME[/versions/V][/ready|/infer], /metrics
    """
    missing = [m for m in ("uvicorn", "orjson", "prometheus_client") + (() if no_grpc else ("grpc",))
               if not _installed(m)]
    if missing:
        raise ZooError(f"{_MISSING}; {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    from zoo.exports.serve import server  # deferred: the server's modules bring asyncio, numpy and the codecs

    options = ServeOptions(host=host, port=port, grpc_port=None if no_grpc else grpc_port, runtime=runtime,
                           variant=variant, name=name, token=token, max_request_bytes=max_request_bytes,
                           max_rows=max_rows, max_batch_rows=max_batch_rows, max_queue_delay_us=max_queue_delay_us,
                           ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, access_log=access_log,
                           workers=workers, watch_interval=watch_interval)
    server.serve(list(bundles), options)
