"""``zoo report``: the model card of a bundle, remade from the bundle alone, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from zoo import files
from zoo.cli.console import say
from zoo.errors import VerifyError, ZooError
from zoo.exports import card
from zoo.exports.bundle.layout import MANIFEST_FILE, MODEL_FILE


@click.command(name="report")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the card here instead of DIR/report.html.")
@click.option("--force", is_flag=True, help="Replace an existing -o FILE (DIR/report.html is always remade).")
def report(path: Path, output: Path | None, force: bool) -> None:
    """Make the model card DIR/report.html of a bundle, from the bundle alone, without torch.

    One self-contained HTML file (figures inline, nothing fetched; it opens
    offline): summary, training curve, confusion matrix and per-class
    precision/recall/F1, reliability diagram and ECE (and ROC for a binary
    model), probability histogram, parity per runtime and test set with the
    distribution of |onnx - torch|, variants, and how to use the model. The
    held-out rows the bundle keeps are scored by model.onnx; the test data is
    replayed on every runtime that can run here. Needs matplotlib
    (zoo-onnx[report]). Exits 1 when the replay did not verify (the card is
    written and shows why).
    """
    from zoo.exports.card import writing  # deferred: it imports numpy and matplotlib; zoo --help must not

    card.require_matplotlib()
    if not path.exists():
        raise VerifyError(f"{path} does not exist: give the directory zoo export wrote")
    if not path.is_dir():
        raise VerifyError(f"{path} is not a bundle directory: a card is made from the directory zoo export wrote "
                          f"({path.parent}, for {path.name})" if path.name == MODEL_FILE else
                          f"{path} is not a bundle directory: a card is made from the directory zoo export wrote")
    if not (path / MANIFEST_FILE).is_file():
        inside = sorted(str(p.parent) for p in path.glob(f"*/{MANIFEST_FILE}"))
        found = f"; the bundles in it: {', '.join(inside[:5])}" if inside else ": give the directory zoo export wrote"
        raise VerifyError(f"{path} has no {MANIFEST_FILE}, so it is not a bundle{found}")
    if output is not None and output.resolve() == (path / card.FILE).resolve():
        output = None  # the bundle's own card: remade, as without -o
    if output is not None:
        if output.is_dir():
            raise VerifyError(f"-o {output} is a directory: give the card's file name, e.g. {output / card.FILE}")
        files.check_target(output, force=force, directory=False)
    written = writing.write(path, output, shown_as=str(path))
    say(f"wrote {written.describe()}")
    if not written.verified:
        raise ZooError(f"{path} did NOT verify on this machine: the card shows which replay failed "
                       f"(zoo verify {path} too)")
