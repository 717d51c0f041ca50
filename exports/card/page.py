"""The card's page: one self-contained HTML file, no script, nothing fetched, readable on a phone."""

from __future__ import annotations

import html
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo import table as fmt
from zoo.exports.card.evidence import Evidence
from zoo.exports.card.figures import Figure, training_history
from zoo.exports.card.numbers import BINS, per_class

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

SECTIONS = (("summary", "Summary"), ("features", "Features"), ("training", "Training"), ("errors", "Errors"),
            ("calibration", "Calibration"), ("parity", "Parity"), ("variants", "Variants"), ("usage", "How to use it"))
#: Categories listed per column on the card; the manifest holds them all.
SHOWN_CATEGORIES = 12


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

    history = training_history(evidence)
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
    body = {"summary": summary, "features": _features(m), "training": training, "errors": errors,
            "calibration": calibration_html, "parity": parity_html, "variants": variants_html, "usage": usage}
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


def _features(m) -> str:
    """What the model takes: a table's columns (kind, type, encoding, gaps, categories), or its numeric inputs."""
    features = m.table
    if features is None:
        names = m.input.get("feature_names")
        listed = f": {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}" if names else ""
        return (f"<p>{m.input['shape'][1]} numeric features in one <code>{_e(m.input['name'])}</code> matrix"
                f"{_e(listed)}; a NaN or infinite value leaves a row without a class (label -1).</p>")
    rows = []
    for f in features.columns:
        shown = ", ".join(f.categories[:SHOWN_CATEGORIES]) + (
            f" and {len(f.categories) - SHOWN_CATEGORIES} more" if len(f.categories) > SHOWN_CATEGORIES else "")
        share = f" ({100 * f.missing / features.rows:.1f} %)" if features.rows else ""
        rows.append([f.name, f.kind, f.type, f.encoding, f"{f.missing:,}{share}", shown or "-"])
    roles = [f"target <code>{_e(features.target)}</code>" if features.target else None,
             f"id column <code>{_e(features.id_column)}</code> (carried through, never a feature)"
             if features.id_column else None,
             f"left out: {_e(', '.join(features.ignored))}" if features.ignored else None]
    return (f"<p>The table's {len(features.columns)} feature columns, one graph input each, encoded inside "
            f"<code>model.onnx</code> into {features.width} model inputs; statistics from the {features.rows:,} "
            f"training rows. {'; '.join(r for r in roles if r)}.</p>"
            + _table(["column", "kind", "type at training", "encoding", "gaps in training", "categories"], rows,
                     {4}, "table-features"))


def _usage(evidence: Evidence) -> str:
    m = evidence.manifest
    where = shlex.quote(evidence.shown_as)
    name = m.model["name"]
    features = m.table
    names = m.input.get("feature_names") if features is None else list(features.names)
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
    if features is None:
        feed = f"{{{m.input['name']!r}: X.astype(np.float32)}}"
    else:  # one input per column: numbers as float32 (NaN: a gap), categories as strings ('': a gap)
        python = python.replace(f"X: (rows, {width}) array, DataFrame or Arrow table",
                                "X: a DataFrame, an Arrow table or a dict of columns")
        feed = "{" + ", ".join(
            f"{f.name!r}: np.asarray(table[{f.name!r}], " + ("np.float32" if f.kind == "numeric" else "object")
            + ").reshape(-1, 1)" for f in features.columns[:3]) + (", ...}" if len(features.columns) > 3 else "}")
    bare = "\n".join([
        "import numpy as np, onnxruntime as ort",
        "",
        f"session = ort.InferenceSession({str(Path(evidence.shown_as) / m.files.model)!r})",
        f"probabilities, label = session.run([\"probabilities\", \"label\"], {feed})",
        bare_out,
    ])
    inside = "the standardization is" if features is None else "gap filling, one-hot encoding and standardization are"
    return (f"<p>Input: raw features, {_e(columns)}; {inside} inside the graph. "
            f"Output: {outputs}. The paths are as the bundle was named when this card was made.</p>"
            f"<h3>Command line</h3><pre><code>{_e(chr(10).join(shell))}</code></pre>"
            f"<h3>Python</h3><pre><code>{_e(python)}</code></pre>"
            f"<h3>With onnxruntime and numpy only</h3><pre><code>{_e(bare)}</code></pre>")

