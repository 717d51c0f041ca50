"""The card's figures: matplotlib's SVG backend, inlined, titled, readable in any colour vision."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import numpy as np

from zoo.exports.card.evidence import Evidence
from zoo.exports.card.numbers import BINS, roc
from zoo.exports.runtimes import DEFAULT_RUNTIME

#: Okabe & Ito's palette, safe for every common form of colour blindness.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")


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


def training_history(evidence: Evidence) -> dict[str, list] | None:
    history = evidence.manifest.training.get("history")
    return history if history and history.get("epoch") else None


def _loss_curve(evidence: Evidence):
    history = training_history(evidence)
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
    history = training_history(evidence)
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

    return "median " + ", ".join(f"{float(np.median(values)):.4f} ({name})" if len(values) else f"- ({name}: no rows)"
                                 for name, values in groups)


def _parity_figure(evidence: Evidence):

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
    return figure, title, (f"{DEFAULT_RUNTIME} against the torch reference recorded at export, over the {len(diff):,} "
                           f"finite probabilities of every test data set (rows with a NaN or infinite feature have "
                           f"none); {exact:,} are exactly equal (not drawn); "
                           f"largest {diff.max() if len(diff) else 0:.2e}.")


def _variant_figure(evidence: Evidence):

    variants = evidence.manifest.variants
    rows = []
    for name, record in variants.items():
        mine = record.rows_per_second.get(DEFAULT_RUNTIME, {})
        base = record.fp32_rows_per_second.get(DEFAULT_RUNTIME, {})
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
    return figure, title, (f"Rows per second of each variant over fp32's, on {DEFAULT_RUNTIME}, measured when "
                           "the variant was made (zoo export --variant, or zoo variants --add).")

