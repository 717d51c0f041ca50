"""Whether a runtime's library is installed, and its version, read from the installed files without importing it.

Importing onnxruntime, ONNX's reference evaluator or OpenVINO costs 0.1-0.2 s each (numpy with them), and
``zoo runtimes``, like every command choosing its runtimes, asked each of them: 0.5 s and 110 MiB to print a table.
The built-in runtimes answer from the package folder that ``import`` would load (``importlib.util.find_spec``), the
files in it that the runtime needs, and the version its distribution's metadata records; the library is imported
when a session is opened. A test opens a real session on every runtime ``zoo runtimes`` lists as available.
"""

from __future__ import annotations

import re
from pathlib import Path


def package_folder(module: str) -> Path | None:
    """The folder of the top-level package ``module`` as ``import module`` would find it; None when not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken entry in sys.modules, an odd finder
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def has(folder: Path, pattern: str) -> bool:
    """Whether ``folder`` holds a file matching the glob ``pattern`` (a library's shared object, a module)."""
    return next(folder.glob(pattern), None) is not None


def version(module: str) -> str | None:
    """The version of the distribution that installed the package ``module`` (None: not installed).

    Read from the ``METADATA`` of the ``*.dist-info`` beside the package whose ``RECORD`` lists its
    ``__init__.py`` (onnxruntime may come from ``onnxruntime`` or ``onnxruntime-gpu``); where no such record
    is found (an installation without one), the package is imported and its ``__version__`` read.
    """
    folder = package_folder(module)
    if folder is None:
        return None
    prefix = re.sub(r"[-_.]+", "_", module).lower()
    try:
        infos = sorted(folder.parent.iterdir())
    except OSError:
        infos = []
    for info in infos:
        name = info.name.lower()
        if not (name.endswith(".dist-info") and re.sub(r"[-_.]+", "_", name).startswith(prefix)):
            continue
        record = _read(info / "RECORD")
        if f"\n{module}/__init__.py," in f"\n{record}":
            for line in _read(info / "METADATA").splitlines():
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Version":
                    return value.strip()
    try:
        imported = __import__(module)
    except Exception:  # installed but broken: its version is unknown
        return None
    found = getattr(imported, "__version__", None)
    return None if found is None else str(found)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
