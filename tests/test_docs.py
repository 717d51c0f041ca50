"""README is the front door: every console line of it runs as written, and no relative link in it or in docs/ is
broken."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def console_lines(text: str) -> list[str]:
    """The ``$ `` lines of every ```console block, in order, without their trailing comments."""
    lines = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                lines.append(re.sub(r"\s+#.*$", "", line[2:]).strip())
    return lines


@pytest.mark.slow  # 10 s: every README command, for real
def test_every_console_line_of_the_readme_runs_as_written(tmp_path):
    lines = console_lines((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(lines) >= 5 and all(line.startswith("zoo ") for line in lines), lines
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    for line in lines:
        run = subprocess.run([sys.executable, "-m", "zoo", *shlex.split(line)[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (line, run.stdout[-1500:], run.stderr[-1500:])
    assert (tmp_path / "zoo-exports" / "multiclass" / "variants" / "int8" / "model.onnx").is_file()


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # not inside code
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            if anchor not in slugs:
                broken.append(target)
    assert broken == [], f"{page.name}: {broken}"


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    assert {p.name for p in PAGES} >= {"cli.md", "bundle.md", "runtimes.md", "deployment.md", "variants.md", "card.md",
                                       "performance.md", "failure-modes.md", "writing-a-plugin.md"}


@pytest.mark.slow  # 8 s: the README section, every command for real
def test_your_own_data_runs_as_written_and_the_bare_session_agrees_with_zoo_predict(tmp_path):
    """README's "Your own data": its Python and shell blocks in order, in an empty directory; then the bare
    onnxruntime block's labels against what zoo predict wrote for the same rows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(python|bash)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["python", "bash", "python"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    for kind, code in blocks:
        if kind == "python":
            script = code + ("\nimport json; print(json.dumps(label.tolist()))\n" if "session.run" in code else "")
            run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=300)
            assert run.returncode == 0, run.stderr[-1500:]
            continue
        for line in code.strip().splitlines():
            line = re.sub(r"\s+#.*$", "", line)
            run = subprocess.run([sys.executable, "-m", "zoo", *shlex.split(line)[1:]], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, (line, run.stderr[-1500:])
    import csv
    import json

    with open(tmp_path / "scored.csv", newline="") as handle:
        scored = [int(row["class_index"]) for row in csv.DictReader(handle)]
    assert json.loads(run.stdout) == scored
    manifest = json.loads((tmp_path / "wine" / "manifest.json").read_text())
    alcohol = next(c for c in manifest["features"]["columns"] if c["name"] == "alcohol")
    assert f"the median {alcohol['median']:.6g} | {alcohol['missing']} (" in section  # the excerpt is the real one
