"""``report.html``: the model card of a bundle, one self-contained file made from the bundle alone.

What it shows is measured here, from what the bundle keeps, with numpy and
onnxruntime (no torch): ``model.onnx`` scores the held-out rows of
``evaluation.npz`` against their true labels (confusion matrix, per-class
precision/recall/F1, reliability and ECE, ROC for a binary model, the
histogram of probabilities); the test data sets are replayed on every runtime
that can run here, as ``zoo verify`` does, and ``|onnx - torch|`` is the
difference between onnxruntime's probabilities and the torch reference's
recorded at export. The training curve is the per-epoch history the manifest
records.

Figures are drawn by matplotlib's SVG backend (``[train]`` extra, or
``pip install matplotlib``) and inlined; the page has no script, font, style
sheet or image from anywhere else, so it opens offline. The palette is
Okabe-Ito and the confusion matrix uses cividis, both readable with any
colour vision; lines also differ by marker and style.

The package, one module a stage: :mod:`.evidence` gathers what the bundle
keeps and measures it, :mod:`.numbers` computes the statistics, :mod:`.figures`
draws them, :mod:`.page` lays out the HTML, :mod:`.writing` writes the file
atomically, and :mod:`.commands` is ``zoo report``.
"""

from __future__ import annotations

from zoo.errors import ZooError
from zoo.exports.bundle.layout import CARD_FILE as FILE  # noqa: F401 (the card's name, re-exported)

INSTALL = "pip install 'zoo-onnx[report]'"


def available() -> bool:
    """Whether matplotlib can be imported here (a missing or broken install: no card, said in one line)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib() -> None:
    if not available():
        raise ZooError(f"the model card's figures need matplotlib, which is not installed here: {INSTALL} "
                       "(or zoo-onnx[train], which has it)")
