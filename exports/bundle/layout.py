"""The bundle's layout: every file name a bundle holds, spelled once.

``DIR/`` holds ``model.onnx`` (raw features in; ``logits``, ``probabilities``,
``label`` out), ``manifest.json`` (what the model expects and outputs, how to
compare it, the sha256 and size of every file, the proof), ``test_data_set_N/``
(``input_0.pb``, or one ``input_K.pb`` per column for a model trained on a
table, and one ``output_K.pb`` per output, in the ONNX Model Zoo layout: the
independent reference's outputs for zoo verify to replay),
``checkpoint.pt`` (weights only, for re-export), ``evaluation.npz`` (held-out
rows and labels, calibration rows), ``variants/<name>/`` (a variant's
``model.onnx`` and its own test data) and ``report.html`` (the model card).
"""

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
CHECKPOINT_FILE = "checkpoint.pt"
EVALUATION_FILE = "evaluation.npz"
CARD_FILE = "report.html"  # made from the bundle, after the manifest; zoo never reads it
VARIANTS_DIR = "variants"
TEST_DATA_SET = "test_data_set_{}"
INPUT_FILE = "input_{}.pb"
OUTPUT_FILE = "output_{}.pb"
#: Where ``zoo export NAME`` writes without ``-o``: ``zoo-exports/NAME``.
EXPORT_ROOT = "zoo-exports"
