"""Defaults of the export commands, in a module of their own so that `zoo --help` imports nothing else."""

EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_OPSET = 18
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5
