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
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.exports.bundle import CARD_FILE

if TYPE_CHECKING:
    import numpy as np

    from zoo.exports.manifest import Manifest
    from zoo.exports.verify import VerifyReport

FILE = CARD_FILE
#: Equal-width confidence bins of the reliability diagram and the expected calibration error.
BINS = 10
#: Okabe & Ito's palette, safe for every common form of colour blindness.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
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


# -- what the card shows, measured from the bundle -------------------------------------------------


@dataclass
class Evidence:
    bundle: Path
    shown_as: str  # the bundle's path as the usage snippets name it
    manifest: Manifest
    model_sha256: str
    y: np.ndarray  # the held-out rows' true labels
    probabilities: np.ndarray  # model.onnx on those rows, (rows, classes)
    predicted: np.ndarray  # model.onnx's label output on those rows
    differences: np.ndarray  # |onnxruntime - torch reference| of every finite probability in the test data sets
    replays: VerifyReport
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        """One output column, P(positive class): a sigmoid head (as zoo.load_bundle's predict_proba reads it)."""
        return self.manifest.policy.get("head") != "softmax"

    @property
    def verified(self) -> bool:
        return self.manifest.verified and self.replays.verified

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.class_labels)

    @functools.cached_property
    def matrix(self):
        """The confusion matrix (a figure and the per-class table show it)."""
        return confusion(self.y, self.predicted, len(self.labels))

    @functools.cached_property
    def calibration(self) -> dict[str, Any]:
        """Binary: P(positive) against the positive rate; multiclass: the top label's probability against accuracy."""
        if self.binary:
            return reliability(self.probabilities[:, 1], self.y == 1)
        return reliability(self.probabilities.max(axis=1), self.predicted == self.y)


def gather(bundle: Path, shown_as: str | None = None) -> Evidence:
    """Open the bundle (checksums, ONNX checker), score its held-out rows and replay its test data."""
    import numpy as np

    from zoo.exports.deployed import open_model
    from zoo.exports.evaluation import read as read_evaluation
    from zoo.exports.runtimes import open_session, run, select
    from zoo.exports.verify import load_test_data, verify

    bundle = Path(bundle)
    started = time.perf_counter()
    deployed = open_model(bundle)
    if deployed.manifest is None:
        raise ZooError(f"{bundle} is not a bundle directory: a card is made from one (zoo export writes it)")
    manifest = deployed.manifest
    evaluation = read_evaluation(bundle, manifest)
    [(ort_cpu, _)] = select(["onnxruntime-cpu"])  # a base dependency: select refuses it in one line if broken
    session = open_session(ort_cpu, deployed.model_path)
    scored = run(session, evaluation.X, ["probabilities", "label"])
    probabilities = scored["probabilities"].astype(np.float64)
    if manifest.policy.get("head") != "softmax":
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    differences = []
    for _, x, expected in load_test_data(deployed):
        got = run(session, x, ["probabilities"])["probabilities"].astype(np.float64)
        diff = np.abs(got - expected["probabilities"].astype(np.float64)).ravel()
        differences.append(diff[np.isfinite(diff)])
    measured = time.perf_counter()
    replays = verify(bundle)
    return Evidence(bundle, str(bundle) if shown_as is None else shown_as, manifest,
                    manifest.sha256[manifest.files.model], evaluation.y, probabilities,
                    scored["label"].astype(np.int64), np.concatenate(differences), replays,
                    {"scoring": measured - started, "replay": time.perf_counter() - measured})


# -- the numbers (numpy; the tests check them against scikit-learn) ---------------------------------


def confusion(y, predicted, classes: int):
    """Counts, true class by row and predicted class by column."""
    import numpy as np

    keep = (predicted >= 0) & (predicted < classes)
    return np.bincount(y[keep] * classes + predicted[keep], minlength=classes * classes).reshape(classes, classes)


def per_class(matrix) -> dict[str, Any]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn's zero_division=0)."""
    import numpy as np

    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def reliability(confidence, hit, bins: int = BINS) -> dict[str, Any]:
    """Per equal-width bin of ``confidence``: rows, mean confidence, observed frequency of ``hit``; and the ECE.

    A value on an inner edge falls in the bin below it (as ``sklearn.calibration.calibration_curve``).
    """
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(index, minlength=bins)
    mean = np.bincount(index, weights=confidence, minlength=bins)
    observed = np.bincount(index, weights=hit.astype(np.float64), minlength=bins)
    filled = count > 0
    mean[filled] /= count[filled]
    observed[filled] /= count[filled]
    ece = float(np.sum(count[filled] * np.abs(observed[filled] - mean[filled])) / max(1, count.sum()))
    return {"edges": edges, "count": count, "confidence": mean, "observed": observed, "filled": filled, "ece": ece}


def roc(y, score) -> dict[str, Any] | None:
    """False and true positive rates at every distinct threshold, and the area under the curve (None: one class)."""
    import numpy as np

    positives = int(y.sum())
    if positives in (0, len(y)):
        return None
    order = np.argsort(-score, kind="mergesort")
    ranked, truth = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(truth)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / (len(y) - positives)]
    return {"fpr": fpr, "tpr": tpr, "auc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))}


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    id: str
    title: str
    caption: str
    svg: str


def _style(salt: str):
    import matplotlib
    from cycler import cycler

    return matplotlib.rc_context({
        "svg.fonttype": "none",  # text stays text: small, selectable, drawn in the page's own sans-serif
        "svg.hashsalt": salt,  # ids unique per figure (several SVGs share one page) and stable across runs
        "font.family": "sans-serif", "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold",
        "axes.prop_cycle": cycler(color=[BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY]),
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    })


def _svg(figure, fid: str, title: str) -> str:
    """The figure as an inline ``<svg>``: no XML prolog, scaled by the page, titled for screen readers."""
    import re

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # constrained layout: no tight bbox pass
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # matplotlib names its groups figure_1, axes_1, ... in every SVG: prefixed, the page's ids stay unique
    text = re.sub(r"<[^>]+>", lambda tag: re.sub(r'(\bid="|url\(#|href="#)([^")]+)', rf"\1{fid}-\2", tag[0]),
                  text)  # in tags only: a class label's text is never rewritten
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 role="img" aria-labelledby="{fid}-title"', text, count=1)
    return re.sub(r"(<svg[^>]*>)", rf'\1<title id="{fid}-title">{html.escape(title)}</title>', text, count=1)


def _new(size=(5.2, 3.6), *, constrained: bool = False):
    """A figure with fixed margins, or (a colorbar, a legend outside the axes) matplotlib's constrained layout.

    Constrained layout measures every text's box to place the axes: about half of a card's drawing time
    (measured in a fresh process), so only the figures that need it pay it.
    """
    from matplotlib.figure import Figure as MplFigure

    if constrained:
        return MplFigure(figsize=size, layout="constrained")
    figure = MplFigure(figsize=size)
    figure.subplots_adjust(left=0.14, right=0.97, bottom=0.15, top=0.9)
    return figure


def figures(evidence: Evidence) -> list[Figure]:
    made = []
    for draw in (_loss_curve, _accuracy_curve, _confusion_figure, _reliability_figure, _roc_figure,
                 _histogram_figure, _parity_figure, _variant_figure):
        fid = draw.__name__.strip("_").replace("_", "-")
        with _style(fid):
            drawn = draw(evidence)
            if drawn is not None:
                figure, title, caption = drawn
                made.append(Figure(fid, title, caption, _svg(figure, fid, title)))
    return made


def _history(evidence: Evidence) -> dict[str, list] | None:
    history = evidence.manifest.training.get("history")
    return history if history and history.get("epoch") else None


def _loss_curve(evidence: Evidence):
    history = _history(evidence)
    if history is None:
        return None
    title = "Loss per epoch"
    figure = _new(constrained=True)  # log-axis labels vary in width
    ax = figure.subplots()
    ax.plot(history["epoch"], history["train_loss"], marker="o", markersize=3, label="training rows")
    ax.plot(history["epoch"], history["holdout_loss"], marker="s", markersize=3, linestyle="--",
            label="held-out rows")
    ax.set(title=title, xlabel="epoch", ylabel=f"loss ({evidence.manifest.policy.get('loss', '').split(':')[-1]})")
    if min(history["train_loss"] + history["holdout_loss"]) > 0:
        ax.set_yscale("log")
    ax.legend()
    last = len(history["epoch"]) - 1
    best = min(range(last + 1), key=lambda i: history["holdout_loss"][i])
    return figure, title, (f"Mean training loss and held-out loss, recorded after each of {last + 1} epochs; "
                           f"last epoch: {history['train_loss'][last]:.4g} (training), "
                           f"{history['holdout_loss'][last]:.4g} (held-out); the held-out loss was lowest, "
                           f"{history['holdout_loss'][best]:.4g}, at epoch {history['epoch'][best]}.")


def _accuracy_curve(evidence: Evidence):
    history = _history(evidence)
    if history is None:
        return None
    title = "Held-out accuracy per epoch"
    figure = _new()
    ax = figure.subplots()
    ax.plot(history["epoch"], [100 * a for a in history["holdout_accuracy"]], marker="o", markersize=3, color=GREEN)
    ax.set(title=title, xlabel="epoch", ylabel="accuracy (%)")
    best = max(range(len(history["epoch"])), key=lambda i: history["holdout_accuracy"][i])
    accuracy = history["holdout_accuracy"]
    return figure, title, (f"Accuracy on the held-out rows after each epoch; best {100 * accuracy[best]:.2f} % "
                           f"at epoch {history['epoch'][best]}, last {100 * accuracy[-1]:.2f} %.")


def _confusion_figure(evidence: Evidence):
    import numpy as np

    labels = evidence.labels
    matrix = evidence.matrix
    title = "Confusion matrix (held-out rows)"
    k = len(labels)
    figure = _new((5.2, 4.6), constrained=True)  # the width of every figure: scaled alike, its text as large as theirs
    ax = figure.subplots()
    ax.grid(False)
    image = ax.imshow(matrix, cmap="cividis", interpolation="nearest")
    figure.colorbar(image, ax=ax, label="rows", shrink=0.8)
    if k <= 30:
        ticks = np.arange(k)
        ax.set_xticks(ticks, labels=labels, rotation=45 if max(map(len, labels)) > 2 else 0, ha="right"
                      if max(map(len, labels)) > 2 else "center")
        ax.set_yticks(ticks, labels=labels)
    if k <= 20:
        middle = matrix.max() / 2
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=10 if k <= 10 else 8,
                        color="black" if count > middle else "white")
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    wrong = int(matrix.sum() - np.trace(matrix))
    return figure, title, (f"Rows by true class (down) and model.onnx's predicted class (across), on "
                           f"{int(matrix.sum()):,} held-out rows; {wrong:,} off the diagonal.")


def _reliability_figure(evidence: Evidence):
    found = evidence.calibration
    title = "Reliability diagram"
    figure = _new(constrained=True)
    ax = figure.subplots()
    filled = found["filled"]
    ax.plot([0, 1], [0, 1], linestyle=":", color="black", label="perfectly calibrated")
    ax.bar(found["edges"][:-1][filled], found["observed"][filled], width=1 / BINS, align="edge", color=SKY,
           edgecolor=BLUE, alpha=0.8, label="observed")
    ax.plot(found["confidence"][filled], found["observed"][filled], marker="o", color=VERMILLION,
            linestyle="none", label="mean confidence in the bin", clip_on=False, zorder=3)
    for left, observed, count in zip(found["edges"][:-1][filled], found["observed"][filled], found["count"][filled]):
        ax.annotate(f"{count:,}", (left + 0.5 / BINS, observed), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, annotation_clip=False)
    what = ("predicted probability of " + repr(evidence.labels[1]) if evidence.binary
            else "confidence (top-class probability)")
    ax.set(title=f"{title} (ECE {found['ece']:.3f})", xlabel=what,
           ylabel=f"fraction {evidence.labels[1]!r}" if evidence.binary else "accuracy", xlim=(0, 1), ylim=(0, 1.1))
    figure.legend(loc="outside lower center", ncols=2, fontsize=8)
    return figure, title, (f"Held-out rows in {BINS} equal-width bins; bars are the observed "
                           f"{'frequency of the positive class' if evidence.binary else 'accuracy'} per bin, "
                           f"with its number of rows above (a bin of few rows says little). "
                           f"Expected calibration error {found['ece']:.4f}.")


def _roc_figure(evidence: Evidence):
    if not evidence.binary:
        return None
    found = roc((evidence.y == 1).astype(int), evidence.probabilities[:, 1])
    if found is None:
        return None
    title = "ROC curve"
    figure = _new()
    ax = figure.subplots()
    ax.plot(found["fpr"], found["tpr"], color=BLUE, label=f"model.onnx (AUC {found['auc']:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="black", label="chance")
    threshold = evidence.manifest.threshold
    if threshold is not None:
        positive = evidence.y == 1
        call = evidence.probabilities[:, 1] >= threshold
        ax.plot([call[~positive].mean()], [call[positive].mean()], marker="D", color=VERMILLION, linestyle="none",
                label=f"threshold {threshold:g}")
    positive = evidence.labels[1]
    ax.set(title=f"{title} (AUC {found['auc']:.3f})", xlabel=f"false positive rate (positive class {positive!r})",
           ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return figure, title, (f"True against false positive rate over every threshold, the positive class being "
                           f"{positive!r}; area under the curve {found['auc']:.4f}.")


def _histogram_figure(evidence: Evidence):
    import numpy as np

    bins = np.linspace(0, 1, 21)
    figure = _new(constrained=True)  # log-axis labels vary in width
    ax = figure.subplots()
    if evidence.binary:
        title = f"Predicted probability of {evidence.labels[1]!r}"
        score = evidence.probabilities[:, 1]
        ax.hist([score[evidence.y == 0], score[evidence.y == 1]], bins=bins, stacked=True, color=[ORANGE, BLUE],
                label=[f"true {evidence.labels[0]!r}", f"true {evidence.labels[1]!r}"], hatch=["//", None])
        if evidence.manifest.threshold is not None:
            ax.axvline(evidence.manifest.threshold, color="black", linestyle="--", label="threshold")
        ax.set(xlabel=f"probability of {evidence.labels[1]!r}")
        caption = ("Held-out rows by the probability model.onnx gives the positive class, split by their true class; "
                   + _medians([(f"true {label!r}", score[evidence.y == k]) for k, label in enumerate(evidence.labels)])
                   + ".")
    else:
        title = "Top-class probability"
        top = evidence.probabilities.max(axis=1)
        right = evidence.predicted == evidence.y
        ax.hist([top[right], top[~right]], bins=bins, stacked=True, color=[BLUE, VERMILLION],
                label=[f"right ({int(right.sum()):,})", f"wrong ({int((~right).sum()):,})"], hatch=[None, "//"])
        ax.set(xlabel="largest class probability", yscale="log")
        caption = ("Held-out rows by the largest probability model.onnx gives, split by whether the label was right "
                   "(log scale: the few wrong ones stay visible); "
                   + _medians([("right", top[right]), ("wrong", top[~right])]) + ".")
    ax.set(title=title, ylabel="rows (log scale)" if not evidence.binary else "rows")
    ax.legend(loc="best")
    return figure, title, caption


def _medians(groups) -> str:
    import numpy as np

    return "median " + ", ".join(f"{float(np.median(values)):.4f} ({name})" if len(values) else f"- ({name}: no rows)"
                                 for name, values in groups)


def _parity_figure(evidence: Evidence):
    import numpy as np

    diff = evidence.differences
    title = "|onnx - torch| on probabilities"
    figure = _new()
    ax = figure.subplots()
    nonzero = diff[diff > 0]
    exact = int((diff == 0).sum())
    atol = evidence.manifest.tolerance["atol"]
    if len(nonzero):
        low = min(np.floor(np.log10(nonzero.min())), np.log10(atol) - 1)
        high = max(np.ceil(np.log10(nonzero.max())), np.log10(atol) + 1)
        edges = np.logspace(low, high, int(4 * (high - low)) + 1)
        ax.stairs(np.histogram(nonzero, bins=edges)[0], edges, fill=True, color=BLUE)  # one path, not a bar per bin
        ax.set_xscale("log")
    ax.axvline(atol, color=VERMILLION, linestyle="--", label=f"atol {atol:g}")
    ax.set(title=title, xlabel="absolute difference (log scale)", ylabel="probabilities (count)")
    ax.legend(loc="best")
    return figure, title, (f"onnxruntime-cpu against the torch reference recorded at export, over the {len(diff):,} "
                           f"finite probabilities of every test data set (rows with a NaN or infinite feature have "
                           f"none); {exact:,} are exactly equal (not drawn); "
                           f"largest {diff.max() if len(diff) else 0:.2e}.")


def _variant_figure(evidence: Evidence):
    import numpy as np

    variants = evidence.manifest.variants
    rows = []
    for name, record in variants.items():
        mine = record.rows_per_second.get("onnxruntime-cpu", {})
        base = record.fp32_rows_per_second.get("onnxruntime-cpu", {})
        rows.append((name, {b: mine[b] / base[b] for b in mine if base.get(b)}))
    batches = sorted({b for _, speed in rows for b in speed}, key=int)
    if not batches:
        return None
    title = "Variants: speed against fp32"
    figure = _new(constrained=True)
    ax = figure.subplots()
    width = 0.8 / len(rows)
    styles = zip([BLUE, ORANGE, GREEN, PURPLE], [None, "//", "..", "xx"])
    for n, ((name, speed), (color, hatch)) in enumerate(zip(rows, styles)):
        x = np.arange(len(batches)) + n * width - 0.4 + width / 2
        ax.bar(x, [speed.get(b, 0) for b in batches], width=width, color=color, hatch=hatch, label=name)
    ax.axhline(1.0, color="black", linestyle=":", label="fp32")
    ax.set_xticks(np.arange(len(batches)), labels=[f"{int(b):,}" for b in batches])
    ax.set(title=title, xlabel="batch size (rows)", ylabel="rows/s against fp32 (x)")
    figure.legend(loc="outside lower center", ncols=len(rows) + 1, fontsize=8)
    return figure, title, ("Rows per second of each variant over fp32's, on onnxruntime-cpu, measured when the "
                           "variant was made (zoo export --variant, or zoo variants --add).")


# -- the page --------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; --ink: #1b1b1b; --muted: #555; --line: #d0d7de; --bg: #fff; --band: #f6f8fa;
  --ok: #00664d; --bad: #a3360b; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; padding-top: .5rem; border-top: 1px solid var(--line); }
p.lead { color: var(--muted); margin-top: 0; }
nav ol { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: 0; list-style: none; margin: .5rem 0; }
a { color: #0b5cad; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; font-weight: 600; font-size: .9rem; }
.ok { background: #e3f4ee; color: var(--ok); } .bad { background: #fbe9e1; color: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 480px), 1fr)); gap: 1rem 1.5rem; }
figure { margin: 0; min-width: 0; }
figure svg { display: block; width: 100%; height: auto; max-height: 560px; }
figcaption { color: var(--muted); font-size: .9rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .92rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; white-space: nowrap; }
thead th { background: var(--band); }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .2rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
pre { background: var(--band); border: 1px solid var(--line); padding: .75rem; overflow-x: auto; }
.note { color: var(--muted); }
@media (max-width: 600px) {
  main { padding: .75rem .75rem 2rem; } h1 { font-size: 1.3rem; }
  dl.facts { grid-template-columns: minmax(0, 1fr); } dl.facts dd { margin-bottom: .4rem; }
}
"""

SECTIONS = (("summary", "Summary"), ("training", "Training"), ("errors", "Errors"), ("calibration", "Calibration"),
            ("parity", "Parity"), ("variants", "Variants"), ("usage", "How to use it"))


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset(), tid: str = "") -> str:
    cls = lambda i: ' class="n"' if i in numeric else ""  # noqa: E731
    head = "".join(f'<th scope="col"{cls(i)}>{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    ident = f' id="{tid}"' if tid else ""
    return f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure(made: dict[str, Figure], fid: str) -> str:
    f = made.get(fid)
    if f is None:
        return ""
    return f'<figure id="fig-{f.id}">{f.svg}<figcaption>{_e(f.caption)}</figcaption></figure>'


def _facts(pairs: list[tuple[str, Any]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def render(evidence: Evidence, made: list[Figure]) -> str:
    """The whole page."""
    import numpy as np

    from zoo import table as fmt

    m, by_id = evidence.manifest, {f.id: f for f in made}
    labels = evidence.labels
    metrics, config = m.training.get("metrics", {}), m.training.get("config", {})
    accuracy = float((evidence.predicted == evidence.y).mean())
    badge = ('<span class="badge ok">verified on this machine</span>' if evidence.verified
             else '<span class="badge bad">NOT verified on this machine</span>')
    policy = m.policy
    summary = _facts([
        ("model", f"<code>{_e(m.model['name'])}</code> "
                  + _e(", ".join(f"{k}={v}" for k, v in m.model["config"].items()))),
        ("policy", f"<code>{_e(policy.get('name'))}</code>: {_e(policy.get('summary', ''))}"),
        ("loss", f"<code>{_e(policy.get('loss'))}</code> on {_e(policy.get('expects'))}; "
                 f"targets {_e(policy.get('targets'))}"),
        ("head", f"{_e(policy.get('head'))}, outputs {_e(policy.get('output_width'))}"),
        ("decision", _e(m.decision + (f" (probability >= {m.threshold:g})" if m.threshold is not None else ""))),
        ("classes", _e(f"{len(labels)}: " + ", ".join(labels[:40]) + (" ..." if len(labels) > 40 else ""))),
        ("data", _e(f"{m.training.get('data')}: {metrics.get('train_rows', '?')} training rows, "
                    f"{metrics.get('holdout_rows', '?')} held-out rows, {m.input['shape'][1]} features")),
        ("training", _e(", ".join(f"{k} {config[k]}" for k in ("epochs", "lr", "batch_size", "holdout") if k in config)
                        + (f"; {metrics['train_seconds']:.2f} s on {metrics.get('device', '?')}"
                           if "train_seconds" in metrics else ""))),
        ("seed", _e(m.training.get("seed"))),
        ("accuracy", _e(f"{100 * accuracy:.2f} % by model.onnx on {len(evidence.y):,} held-out rows kept in the bundle"
                        + (f"; {100 * metrics['holdout_accuracy']:.2f} % by the trainer on "
                           f"{metrics.get('holdout_rows', '?')} rows" if "holdout_accuracy" in metrics else ""))),
        ("versions", _e(", ".join(f"{k} {v}" for k, v in m.versions.items() if not isinstance(v, dict)))),
        ("sha256 of model.onnx", f"<code>{_e(evidence.model_sha256)}</code>"),
    ])

    history = _history(evidence)
    training = (f'<div class="grid">{_figure(by_id, "loss-curve")}{_figure(by_id, "accuracy-curve")}</div>'
                if history else '<p class="note">This bundle records no per-epoch history (it was exported by an '
                                'older zoo, or from an older checkpoint): train and export again to see the curve.</p>')

    matrix = evidence.matrix
    scores = per_class(matrix)
    rows = [[label, f"{scores['precision'][i]:.3f}", f"{scores['recall'][i]:.3f}", f"{scores['f1'][i]:.3f}",
             int(scores["support"][i])] for i, label in enumerate(labels)]
    support = scores["support"]
    for name, weights in (("macro average", np.ones(len(labels))), ("weighted average", support)):
        weights = weights / max(weights.sum(), 1)
        rows.append([name] + [f"{float(np.sum(scores[k] * weights)):.3f}" for k in ("precision", "recall", "f1")]
                    + [int(support.sum())])
    errors = (f'<div class="grid">{_figure(by_id, "confusion-figure")}<div><h3>Per class</h3>'
              + _table(["class", "precision", "recall", "F1", "rows"], rows, {1, 2, 3, 4}, "table-per-class")
              + "</div></div>")

    found = evidence.calibration
    calibration_html = (f'<p>Expected calibration error (ECE, {BINS} bins): '
                        f'<strong id="ece">{found["ece"]:.4f}</strong></p>'
                        f'<div class="grid">{_figure(by_id, "reliability-figure")}'
                        f'{_figure(by_id, "roc-figure")}{_figure(by_id, "histogram-figure")}</div>')

    cells = m.parity.get("cells", [])
    export_rows = [[c["runtime"], c["status"], c.get("device") or "-", c.get("precision") or "-",
                    ", ".join(str(b) for b in c.get("batches") or []) or "-", fmt.number(c.get("max_abs_error")),
                    fmt.number(c.get("max_rel_error")), fmt.percent(c.get("label_agreement")),
                    "-" if c.get("accuracy") is None else f"{100 * c['accuracy']:.2f} %",
                    c.get("reason") or ""] for c in cells]
    replay_rows = [[r.model, r.runtime, r.data or "-", r.rows if r.rows is not None else "-", r.device or "-",
                    r.precision or "-", fmt.number(r.max_abs_error), fmt.percent(r.label_agreement),
                    r.status + (f": {r.reason}" if r.reason else "")] for r in evidence.replays.replays]
    parity_html = (
        f"<p>Reference: {_e(m.parity.get('reference') or 'the trained torch module')}. Tolerances: atol "
        f"{m.tolerance['atol']:g}, rtol {m.tolerance['rtol']:g}: a probability passes when "
        "|onnx - reference| &lt;= atol + rtol &times; |reference|, so on probabilities near 0 (a sigmoid that "
        "onnxruntime rounds to 0 where torch gives 1e-13) the relative error can be large while the difference "
        "is far inside atol.</p>"
        "<h3>At export, per runtime</h3>"
        + _table(["runtime", "result", "device", "precision", "batches", "max abs err", "max rel err", "labels",
                  "accuracy", "why"], export_rows, {5, 6, 7, 8}, "table-parity-export")
        + "<h3>Replayed when this card was made, per runtime and test set</h3>"
        + f"<details open><summary>{_e(_tally(evidence.replays.replays))}</summary>"
        + _table(["model", "runtime", "test data", "rows", "device", "precision", "max abs err", "labels", "result"],
                 replay_rows, {3, 6, 7}, "table-parity-replay") + "</details>"
        + f'<div class="grid">{_figure(by_id, "parity-figure")}</div>')

    if m.variants:
        variant_rows = [[name, v.precision, f"{v.size_ratio:.3f}x ({v.size_bytes:,} bytes)",
                         f"{100 * v.accuracy:.2f} %", f"{v.accuracy_delta_points:+.2f}",
                         f"{v.agreement_percent:.2f} %", "-" if v.ties is None else f"{v.ties:,}",
                         f"{v.max_abs_probability_difference:.2e}"]
                        for name, v in m.variants.items()]
        variants_html = (_table(["variant", "weights", "size vs fp32", "accuracy", "delta (points)", "agreement",
                                 "ties", "max abs prob. diff"], variant_rows, {2, 3, 4, 5, 6, 7}, "table-variants")
                         + '<p class="note">Agreement counts the held-out rows whose label is fp32\'s, leaving out '
                           "ties: rows whose top probabilities are exactly equal in either model, where ArgMax's "
                           "first-index rule picked the label, not the model.</p>"
                         + f'<div class="grid">{_figure(by_id, "variant-figure")}</div>')
    else:
        command = f"zoo variants {shlex.quote(evidence.shown_as)} --add fp16 --add int8"
        variants_html = (f'<p class="note">No deployment variants: <code>{_e(command)}</code> makes them, '
                         "measured and guarded.</p>")

    usage = _usage(evidence)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = {"summary": summary, "training": training, "errors": errors, "calibration": calibration_html,
            "parity": parity_html, "variants": variants_html, "usage": usage}
    nav = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title in SECTIONS)
    sections = "".join(f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{_e(title)}</h2>'
                       f"{body[sid]}</section>" for sid, title in SECTIONS)
    name = m.model["name"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="zoo {_e(m.versions.get('zoo'))}">
<title>{_e(name)}: zoo model card</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{_e(name)} <span class="note">model card</span></h1>
<p class="lead">{_e(policy.get('summary', ''))} &middot; {badge} &middot; made {when} from
<code>{_e(evidence.shown_as)}</code></p>
<nav aria-label="sections"><ol>{nav}</ol></nav>
</header>
{sections}
</main>
</body>
</html>
"""


def _tally(replays) -> str:
    from collections import Counter

    counts = Counter(r.status for r in replays)
    models = sorted({r.model for r in replays}, key=lambda name: (name != "fp32", name))
    runtimes = sorted({r.runtime for r in replays if r.status != "skipped"})
    parts = [f"{counts[s]} {s}" for s in ("passed", "failed", "skipped") if counts[s]]
    return (f"{len(replays)} replays of {', '.join(models)} on {', '.join(runtimes) or 'no runtime'}: "
            + ", ".join(parts))


def _usage(evidence: Evidence) -> str:
    m = evidence.manifest
    where = shlex.quote(evidence.shown_as)
    name = m.model["name"]
    names = m.input.get("feature_names")
    columns = (f"the columns {', '.join(names[:3])}{', ...' if len(names) > 3 else ''} (the training data's names)"
               if names else f"{m.input['shape'][1]} numeric columns, in training order")
    width = m.input["shape"][1]
    labels = evidence.labels
    if evidence.binary:
        outputs = (f"<code>label</code>, <code>class_index</code> and <code>p_{_e(labels[1])}</code>, the "
                   f"probability of the positive class {_e(repr(labels[1]))}")
        proba = f"# (rows, 2): P({labels[0]!r}), P({labels[1]!r})"
        bare_out = f"# probabilities: (rows, 1) = P({labels[1]!r}); label: 0 or 1 (-1: a NaN row)"
    else:
        outputs = "<code>label</code>, <code>class_index</code> and <code>p_&lt;class&gt;</code> for every class"
        proba = "# (rows, classes), in class_labels order"
        bare_out = "# probabilities: (rows, classes); label: the class index (-1: a NaN row)"
    shell = [
        f"zoo verify {where}                      # checksums, ONNX checker, test data on every runtime",
        f"zoo predict {where} rows.csv -o {name}-predictions.csv",
        f"zoo predict {where} rows.parquet --id-column id -o {name}-predictions.parquet",
    ] + [f"zoo predict {where} rows.csv --variant {v} -o {name}-{v}-predictions.csv" for v in m.variants]
    python = "\n".join([
        "import zoo",
        "",
        f"model = zoo.load_bundle({evidence.shown_as!r})",
        f"labels = model.predict(X)               # X: (rows, {width}) array, DataFrame or Arrow table",
        f"probabilities = model.predict_proba(X)  {proba}",
    ])
    bare = "\n".join([
        "import numpy as np, onnxruntime as ort",
        "",
        f"session = ort.InferenceSession({str(Path(evidence.shown_as) / m.files.model)!r})",
        f"probabilities, label = session.run([\"probabilities\", \"label\"], "
        f"{{{m.input['name']!r}: X.astype(np.float32)}})",
        bare_out,
    ])
    return (f"<p>Input: raw features, {_e(columns)}; the standardization is inside the graph. "
            f"Output: {outputs}. The paths are as the bundle was named when this card was made.</p>"
            f"<h3>Command line</h3><pre><code>{_e(chr(10).join(shell))}</code></pre>"
            f"<h3>Python</h3><pre><code>{_e(python)}</code></pre>"
            f"<h3>With onnxruntime and numpy only</h3><pre><code>{_e(bare)}</code></pre>")


# -- writing it ------------------------------------------------------------------------------------


@dataclass
class Written:
    path: Path
    size: int
    seconds: float
    timings: dict[str, float]
    verified: bool = True  # the manifest says so and every replay here passed

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.size, "seconds": round(self.seconds, 3),
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}

    def describe(self) -> str:
        return f"{self.path} ({self.size / 1024:.0f} KiB, made in {self.seconds:.1f} s)"


def make(bundle: Path, shown_as: str | None = None) -> tuple[str, dict[str, float], bool]:
    """The card's HTML, how long its parts took, and whether it says the bundle verified here."""
    require_matplotlib()
    evidence = gather(bundle, shown_as)
    started = time.perf_counter()
    made = figures(evidence)
    drawn = time.perf_counter()
    page = render(evidence, made)
    return (page, evidence.seconds | {"figures": drawn - started, "page": time.perf_counter() - drawn},
            evidence.verified)


def write(bundle: Path, output: Path | None = None, *, shown_as: str | None = None,
          becomes: Path | None = None) -> Written:
    """Make the card of ``bundle`` and write it atomically to ``output`` (default ``bundle/report.html``).

    Written into the bundle, the card holds the bundle's lock (no export swaps it meanwhile), unless the
    bundle is a staging directory that ``becomes`` that path when swapped in: the caller holds that lock, and
    the returned path is the card's there.
    """
    from zoo import files

    started = time.perf_counter()
    bundle = Path(bundle)
    target = Path(output) if output is not None else bundle / FILE
    with contextlib.nullcontext() if output is not None or becomes is not None else files.locked(bundle):
        page, timings, verified = make(bundle, shown_as)
        data = page.encode("utf-8")
        files.atomic_write(target, lambda handle: handle.write(data))
    final = Path(becomes) / FILE if becomes is not None and output is None else target
    return Written(final, len(data), time.perf_counter() - started, timings, verified)
