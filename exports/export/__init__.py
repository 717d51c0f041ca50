"""The export side, which needs torch: the exporter, the independent oracle, the graph rewrites, parity, the
pipeline that writes a bundle, what it records, the conformance kit and torch eager for ``zoo bench``."""
