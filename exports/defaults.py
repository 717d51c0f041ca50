"""Defaults of the export commands, in a module of their own so that `zoo --help` imports nothing else."""

EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_OPSET = 18
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5
#: Rows `zoo predict` reads and runs at a time. 16,384 rather than 65,536: as fast on the CPU (the per-call
#: overhead is gone by then), and pyarrow's Parquet reader holds several batches, so peak memory falls by
#: about 120 MiB on a 1M-row file (benchmarks/batch.py).
DEFAULT_CHUNK_ROWS = 16384
#: Deployment variants (exports/variants.py makes them) and the guard's defaults.
VARIANTS = ("fp16", "int8", "int8-naive")
DEFAULT_MAX_ACCURACY_DROP = 1.0  # points
DEFAULT_MIN_AGREEMENT = 98.0  # percent
