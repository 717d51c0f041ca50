"""The one plain-text table renderer: padded columns, the last one left free (it may hold a reason)."""

from __future__ import annotations

from collections.abc import Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[object]], *, rule: bool = False, indent: str = "") -> str:
    """Columns padded to their widest cell; ``rule`` draws dashes under the header."""
    cells = [[str(v) for v in header]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]

    def line(row: list[str]) -> str:
        return (indent + "  ".join([*(v.ljust(w) for v, w in zip(row[:-1], widths)), row[-1]])).rstrip()

    lines = [line(row) for row in cells]
    if rule:
        lines.insert(1, line(["-" * w for w in widths] + ["-" * max(6, len(cells[0][-1]))]))
    return "\n".join(lines)


def number(value: float | None, spec: str = ".2e") -> str:
    """A float for a table cell; ``-`` for None."""
    return "-" if value is None else format(value, spec)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
