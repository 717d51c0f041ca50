"""The model card (report.html): its numbers checked against scikit-learn on a bare onnxruntime session and the
true labels, its history against the trainer's, its snippets run, its writing atomic, and the page opened in a
real headless Chromium with the network off."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_clean_error, zoo_without

SECTIONS = ["summary", "features", "training", "errors", "calibration", "parity", "variants", "usage"]
STAMP = re.compile(r"made \d{4}-\d\d-\d\d \d\d:\d\d UTC")


class Page(HTMLParser):
    """What a reader gets from the card: tables by id, figures with their SVG title, text and caption, every tag."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.figures: dict[str, dict] = {}
        self.ids: dict[str, str] = {}
        self.pre: list[str] = []
        self._stack: list[tuple[str, dict]] = []
        self._table = self._row = self._cell = self._figure = None
        self._id_text: list[list] = []
        self._in_title = self._in_caption = self._in_pre = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", f"table-{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "figure":
            self._figure = self.figures.setdefault(attrs["id"], {"title": "", "caption": "", "texts": []})
        elif tag == "title" and self._figure is not None:
            self._in_title = True
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")
        if "id" in attrs and tag not in ("table", "figure", "section"):
            self._id_text.append([attrs["id"], tag, ""])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = self._row = None
        elif tag == "figure":
            self._figure = None
        elif tag == "title":
            self._in_title = False
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "pre":
            self._in_pre = False
        for entry in list(self._id_text):
            if entry[1] == tag:
                self.ids[entry[0]] = entry[2].strip()
                self._id_text.remove(entry)
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._figure is not None:
            if self._in_title:
                self._figure["title"] += data
            elif self._in_caption:
                self._figure["caption"] += data
            elif data.strip():
                self._figure["texts"].append(data.strip())
        if self._in_pre:
            self.pre[-1] += data
        for entry in self._id_text:
            entry[2] += data

    def table(self, tid: str) -> list[list[str]]:
        return self.tables[f"table-{tid}"][1:]  # without the header


def bare_scores(path: Path):
    """model.onnx on the bundle's held-out rows through a plain onnxruntime session: (y, probabilities, labels)."""
    import onnxruntime as ort

    with np.load(path / "evaluation.npz") as data:
        X, y = data["X"], data["y"]
    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    p, labels = session.run(["probabilities", "label"], {"input": X})
    return y, p.astype(np.float64), labels


def ece_by_loops(confidence, hit, bins=10) -> float:
    """Expected calibration error, bin by bin in plain Python."""
    total, n = 0.0, len(confidence)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [i for i, c in enumerate(confidence) if (lo < c <= hi) or (b == 0 and c == 0)]
        if inside:
            total += len(inside) / n * abs(sum(hit[i] for i in inside) / len(inside)
                                           - sum(confidence[i] for i in inside) / len(inside))
    return total


def test_a_multiclass_card_shows_every_section_with_that_runs_numbers(exported):
    from sklearn.metrics import precision_recall_fscore_support

    root, results = exported
    path = root / "multiclass"
    manifest = json.loads((path / "manifest.json").read_text())
    page = Page((path / "report.html").read_text(encoding="utf-8"))
    assert [a["id"] for t, a in page.tags if t == "section"] == SECTIONS
    ids = [a["id"] for _, a in page.tags if "id" in a]  # the inline SVGs' own ids included
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    assert set(page.figures) == {"fig-loss-curve", "fig-accuracy-curve", "fig-confusion-figure",
                                 "fig-reliability-figure", "fig-histogram-figure", "fig-parity-figure"}
    for fid, figure in page.figures.items():  # titled, captioned, axes labelled (the labels are SVG text)
        assert figure["title"] and figure["caption"], fid
    assert {"epoch", "loss (CrossEntropyLoss)"} <= set(page.figures["fig-loss-curve"]["texts"])
    assert {"predicted class", "true class"} <= set(page.figures["fig-confusion-figure"]["texts"])

    # Per-class precision, recall and F1: scikit-learn on a bare onnxruntime session and the true labels.
    y, p, labels = bare_scores(path)
    precision, recall, f1, support = precision_recall_fscore_support(y, labels, zero_division=0)
    rows = page.table("per-class")
    assert [r[0] for r in rows[:10]] == manifest["class_labels"]
    for i, row in enumerate(rows[:10]):
        assert [float(c) for c in row[1:4]] == pytest.approx([precision[i], recall[i], f1[i]], abs=5e-4), row
        assert int(row[4]) == support[i]
    weighted = rows[-1]
    # The weighted recall is the accuracy: the trainer measured it in torch, on the same rows.
    assert float(weighted[2]) == pytest.approx(results["multiclass"].metrics["holdout_accuracy"], abs=5e-4)

    top = p.max(axis=1)
    assert float(page.ids["ece"]) == pytest.approx(ece_by_loops(top.tolist(), (labels == y).tolist()), abs=1e-4)

    # The training curve is the history recorded per epoch, and ends where the trainer's final numbers are.
    history, metrics = manifest["training"]["history"], results["multiclass"].metrics
    assert history["epoch"] == [1, 2, 3] and history["train_loss"] == metrics["loss_history"]
    assert history["holdout_accuracy"][-1] == pytest.approx(metrics["holdout_accuracy"], abs=1e-9)
    assert history["holdout_loss"][-1] == pytest.approx(metrics["holdout_loss"], rel=1e-5)
    caption = page.figures["fig-loss-curve"]["caption"]
    lowest = int(np.argmin(history["holdout_loss"]))
    assert f"{history['holdout_loss'][-1]:.4g} (held-out)" in caption
    assert f"lowest, {history['holdout_loss'][lowest]:.4g}, at epoch {lowest + 1}" in caption

    right = labels == y
    assert (f"median {np.median(top[right]):.4f} (right), {np.median(top[~right]):.4f} (wrong)"
            in page.figures["fig-histogram-figure"]["caption"])

    text = (path / "report.html").read_text(encoding="utf-8")
    assert hashlib.sha256((path / "model.onnx").read_bytes()).hexdigest() in text
    assert [r[0] for r in page.table("parity-export")] == [c["runtime"] for c in manifest["parity"]["cells"]]
    # Replayed on every runtime that can run here, each on the four test data sets; the others skipped.
    import onnxruntime

    from zoo.exports.runtimes.openvino import import_openvino

    import_openvino()  # in the test extra: it must run here

    here = {"onnxruntime-cpu", "onnx-reference", "openvino-cpu"}
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        here.add("onnxruntime-cuda")
    replayed = {(r[1], r[2]) for r in page.table("parity-replay") if r[-1] == "passed"}
    assert replayed == {(runtime, f"test_data_set_{n}") for runtime in here for n in range(4)}
    assert "No deployment variants" in text


def test_a_binary_card_adds_the_roc_curve_and_calibrates_the_positive_class(exported):
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_auc_score

    root, _ = exported
    path = root / "binary"
    page = Page((path / "report.html").read_text(encoding="utf-8"))
    assert "fig-roc-figure" in page.figures
    y, p, _ = bare_scores(path)
    auc = float(re.search(r"area under the curve (\d\.\d+)", page.figures["fig-roc-figure"]["caption"]).group(1))
    assert auc == pytest.approx(roc_auc_score(y, p[:, 0]), abs=1e-4)
    assert float(page.ids["ece"]) == pytest.approx(ece_by_loops(p[:, 0].tolist(), (y == 1).tolist()), abs=1e-4)
    observed, _ = calibration_curve(y, p[:, 0], n_bins=10)  # the bars: scikit-learn's reliability curve
    from zoo.exports.card.numbers import reliability

    found = reliability(p[:, 0], y == 1)
    assert found["observed"][found["filled"]] == pytest.approx(observed, abs=1e-9)
    from sklearn.metrics import roc_curve

    from zoo.exports.card.numbers import roc

    fpr, tpr, _ = roc_curve(y, p[:, 0], drop_intermediate=False)  # the curve drawn, point for point
    curve = roc(y, p[:, 0])
    assert curve["fpr"] == pytest.approx(fpr) and curve["tpr"] == pytest.approx(tpr)
    assert (f"median {np.median(p[y == 0, 0]):.4f} (true 'malignant'), {np.median(p[y == 1, 0]):.4f} (true 'benign')"
            in page.figures["fig-histogram-figure"]["caption"])


def test_the_usage_snippets_on_the_card_run_as_written(bundle_copy, zoo_cli):
    path = bundle_copy()
    assert zoo_cli("report", str(path)).exit_code == 0
    page = Page((path / "report.html").read_text(encoding="utf-8"))
    shell, python, bare = page.pre
    verify = shell.splitlines()[0].split("#")[0].split()
    assert verify == ["zoo", "verify", str(path)]
    assert zoo_cli(*verify[1:]).exit_code == 0
    with np.load(path / "evaluation.npz") as data:
        X = data["X"]
    y, p, labels = bare_scores(path)
    space: dict = {"X": X}
    exec(python, space)
    exec(bare, space)
    assert space["labels"].tolist() == [str(label) for label in labels.tolist()]
    assert space["probabilities"] == pytest.approx(p, abs=1e-6)
    assert space["label"].tolist() == labels.tolist()


def test_zoo_report_remakes_the_card_without_torch(bundle_copy, python):
    path = bundle_copy()
    before = (path / "report.html").read_text(encoding="utf-8")
    (path / "report.html").unlink()
    proc = subprocess.run([python, "-c", zoo_without("torch", "sklearn", "pandas"), "report", str(path)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"wrote .*report\.html \(\d+ KiB, made in [\d.]+ s\)", proc.stdout), proc.stdout
    after, made = Page((path / "report.html").read_text(encoding="utf-8")), Page(before)
    assert after.tables == made.tables and after.tables["table-per-class"]
    assert {k: f["caption"] for k, f in after.figures.items()} == {k: f["caption"] for k, f in made.figures.items()}




def test_without_matplotlib_export_notes_it_and_report_says_what_to_install(bundle_copy, python, tmp_path):
    block = zoo_without("matplotlib")
    proc = subprocess.run([python, "-c", block, "export", "binary", "--epochs", "1", "-o", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "b" / "report.html").exists()
    assert "no model card: matplotlib is not installed (pip install 'zoo-onnx[report]')" in proc.stderr
    proc = subprocess.run([python, "-c", block, "report", str(tmp_path / "b")], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "pip install 'zoo-onnx[report]'" in proc.stderr
    assert not (tmp_path / "b" / "report.html").exists()

    # A variant added without matplotlib leaves the old card as it was, and says it is behind.
    path = bundle_copy()
    card = (path / "report.html").read_bytes()
    proc = subprocess.run([python, "-c", block, "variants", str(path), "--add", "int8"], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "report.html does not show the new variants" in proc.stderr
    assert (path / "report.html").read_bytes() == card


def test_a_variant_added_later_is_on_the_remade_card(bundle_copy, zoo_cli):
    path = bundle_copy()
    result = zoo_cli("variants", str(path), "--add", "int8")
    assert result.exit_code == 0, result.output
    page = Page((path / "report.html").read_text(encoding="utf-8"))
    manifest = json.loads((path / "manifest.json").read_text())
    [row] = page.table("variants")
    assert row[0] == "int8" and row[2].startswith(f"{manifest['variants']['int8']['size_ratio']:.3f}x")
    assert "fig-variant-figure" in page.figures
    assert {r[0] for r in page.table("parity-replay")} == {"fp32", "int8"}
    assert json.loads(zoo_cli("info", str(path), "--json").stdout)["card"] == str(path / "report.html")


def test_bad_input_is_one_line_and_loses_nothing(bundle_copy, zoo_cli, tmp_path):
    path = bundle_copy()
    card = (path / "report.html").read_bytes()
    (tmp_path / "mine.html").write_text("keep me")
    assert_clean_error(zoo_cli("report", str(path), "-o", str(tmp_path / "mine.html")), "already exists", "--force")
    assert (tmp_path / "mine.html").read_text() == "keep me"
    assert_clean_error(zoo_cli("report", str(path), "-o", str(tmp_path)), "is a directory")
    assert_clean_error(zoo_cli("report", str(path / "model.onnx")), "not a bundle directory")
    assert_clean_error(zoo_cli("report", str(tmp_path / "nowhere")), "does not exist")
    size = (path / "model.onnx").stat().st_size
    with open(path / "model.onnx", "ab") as handle:  # tampered: no card describes a file that is not the export's
        handle.write(b"\0")
    assert_clean_error(zoo_cli("report", str(path)), f"model.onnx has {size + 1:,} bytes, the manifest says {size:,}: "
                       "it changed after export")
    assert (path / "report.html").read_bytes() == card
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".")) == []


def test_class_and_feature_names_are_text_on_the_card_never_markup(zoo_cli, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = (rng.normal(size=(300, 4)) + y[:, None] * 2).astype(np.float32)
    hostile = ["<script>alert(1)</script>", 'a&b id="x"', '--><img src=x onerror=alert(2)>']
    np.savez(tmp_path / "hostile.npz", X=X, y=y, class_labels=np.array(hostile),
             feature_names=np.array(["<b>f0</b>", "f1", "f2", "f3"]))
    result = zoo_cli("export", "multiclass", "--data", "hostile.npz", "--epochs", "2", "-o", "h")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "h" / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert {t for t, _ in page.tags} & {"script", "img", "iframe", "object", "embed", "link", "b"} == set()
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert [r[0] for r in page.table("per-class")[:3]] == hostile
    assert set(hostile) <= set(page.figures["fig-confusion-figure"]["texts"])  # the figures keep them as text


# -- in a real browser -------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps"]


def _browser_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (it is in zoo-onnx[test])"
    if CHROMIUM is None:
        return "no chromium here (CI installs Debian's: apt-get install -y chromium)"
    return None


def watch(page) -> tuple[list[str], list[str]]:
    """Every request the page makes, and every console error or warning, page error and failed request."""
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    return requests, problems


@pytest.mark.parametrize("name", ["multiclass", "binary"])
def test_the_card_renders_offline_in_headless_chromium(exported, tmp_path, name):
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    root, _ = exported
    card = root / name / "report.html"
    expected = len(Page(card.read_text(encoding="utf-8")).figures)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        try:
            for width, height in ((1280, 900), (390, 844)):  # a laptop, and a phone
                context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
                page = context.new_page()
                requests, problems = watch(page)
                page.goto(card.as_uri(), wait_until="load")
                assert requests == [card.as_uri()], requests  # nothing left the file
                assert problems == []
                boxes = page.eval_on_selector_all(
                    "figure svg", "all => all.map(e => { const r = e.getBoundingClientRect();"
                                  " return [r.left, r.width, r.height]; })")
                assert len(boxes) == expected >= 6
                assert all(w > 100 and h > 100 and left >= 0 and left + w <= width + 0.5 for left, w, h in boxes), boxes
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, f"the page scrolls sideways at {width} px: {scroll} px wide"
                shot = tmp_path / f"{name}-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                context.close()
        finally:
            browser.close()


def test_a_confidence_on_a_bin_edge_falls_in_the_bin_below_it():
    """Bins are (b/10, (b+1)/10], the first closed at 0: 0.1 is in the first bin, 1.0 in the last."""
    from zoo.exports.card.numbers import reliability

    confidence = [k / 10 for k in range(11)] + [k / 10 + 0.05 for k in range(10)] + [1e-9, 0.999999]
    hit = [i % 3 == 0 for i in range(len(confidence))]
    bins = [[i for i, c in enumerate(confidence) if (b / 10 < c <= (b + 1) / 10) or (b == 0 and c == 0)]
            for b in range(10)]
    assert sorted(sum(bins, [])) == list(range(len(confidence)))  # every value in exactly one bin
    found = reliability(np.array(confidence), np.array(hit))
    assert found["count"].tolist() == [len(inside) for inside in bins]
    for b, inside in enumerate(bins):
        assert found["confidence"][b] == pytest.approx(sum(confidence[i] for i in inside) / len(inside)), b
        assert found["observed"][b] == pytest.approx(sum(hit[i] for i in inside) / len(inside)), b
    assert found["ece"] == pytest.approx(ece_by_loops(confidence, hit), abs=1e-12)
