"""Export tooling: the ONNX wrapper and exporter, the parity check and the bundle on disk."""
