"""Deployment variants of a bundle's fp32 model: fp16 and int8, each measured, guarded and verifiable.

A variant is ``DIR/variants/<name>/model.onnx`` with fp32 inputs and outputs and
the same output names and meaning as ``model.onnx``. It is made from the bundle
alone (no torch): the fp32 file and ``evaluation.npz``, which holds the held-out
rows with their true labels and a sample of training rows for calibration.

- ``fp16``: onnxconverter-common's ``convert_float_to_float16`` with fp32 inputs
  and outputs; the head (Softmax/Sigmoid) and the decision stay in fp32.
- ``int8``: onnxruntime's static quantization, QDQ format, weights int8 per
  output channel, activations uint8, calibrated (MinMax) on the training rows.
  Per channel, because the standardization folded into the first Gemm gives
  its rows very different ranges, and one scale per tensor swamps most of
  them. When the guard still refuses the folded graph (raw input columns of
  very different ranges share one activation scale: breast-cancer's areas in
  the thousands beside ratios near 0.1), the standardization is taken back out
  and run in fp32 ahead of the quantized layers. ``int8-naive`` (per tensor,
  folded: what a default quantization call gives) shows why; the guard refuses
  it. The NaN check reads the fp32 input ahead of the quantized layers: a
  QuantizeLinear would turn a NaN into a plausible number.

Each variant is measured on the held-out rows against the fp32 model (accuracy
on the true labels and its delta, label agreement, max abs probability
difference), its size and its rows/s on every runtime that can run here. A
variant that loses more than ``max_accuracy_drop`` points or agrees on fewer than
``min_agreement`` percent of the labels is refused: nothing is written for it.
Its own outputs on the test inputs become its test data, replayed by
``zoo verify`` under a tolerance fitted to its precision.

One module a stage: :mod:`.methods` lowers the fp32 graph, :mod:`.measure`
measures, guards and records a variant, :mod:`.build` makes them in a bundle,
and :mod:`.commands` is ``zoo variants``.
"""

#: The variants there are methods for (the CLI offers exactly these).
VARIANTS = ("fp16", "int8", "int8-naive")
#: The guard's defaults: a variant losing more held-out accuracy, or agreeing on fewer labels, is refused.
DEFAULT_MAX_ACCURACY_DROP = 1.0  # points
DEFAULT_MIN_AGREEMENT = 98.0  # percent
