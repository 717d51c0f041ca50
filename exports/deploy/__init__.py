"""The deployment side, which never needs torch: ``zoo verify``, ``zoo predict`` and the Python predictor, the
table readers and the prediction writers, batch scoring on Dask, and ``zoo bench``'s timing loop.

No module here imports torch, :mod:`zoo.training` or the export side, even inside a function
(``tests/test_layout.py`` reads every import to prove it): a deployment machine has none of them.
"""

#: Rows `zoo predict` reads and runs at a time. 16,384 rather than 65,536: as fast on the CPU (the per-call
#: overhead is gone by then), and pyarrow's Parquet reader holds several batches, so peak memory falls by
#: about 120 MiB on a 1M-row file (benchmarks/batch.py).
DEFAULT_CHUNK_ROWS = 16384
