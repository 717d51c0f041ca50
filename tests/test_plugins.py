"""Third-party plugins for real: entry points on disk, fault isolation, strict mode and the allow-list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import click
import pytest

from zoo.errors import PluginError
from zoo.manager import PluginWarning, get_plugin_manager
from zoo.registry import Registry

from plugin_kit import EXPECTED, GOOD, broken_dist, make_dist


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary site directory on sys.path; modules imported from it are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith(("zoo_broken", "zoo_good", "twin_")):  # zoo_good_zipped, zoo_good_egg too
            del sys.modules[name]


def load(strict=False):
    pm = get_plugin_manager(strict=strict)
    return pm, Registry.from_plugin_manager(pm)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_broken_plugin_is_skipped_with_one_warning(site, kind):
    broken_dist(site, kind)
    make_dist(site, "zoo-good", "zoo_good", GOOD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm, registry = load()
        group = click.Group()
        pm.register_commands(group)
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 1, messages
    assert f"from zoo-broken-{kind} 0.1.0" in messages[0] and EXPECTED[kind] in messages[0]
    info = next(i for i in pm.infos.values() if i.distribution == f"zoo-broken-{kind}")
    assert info.status == "failed" and EXPECTED[kind] in info.error
    assert all(registry.owned_by(k, info.label) == [] for k in ("model", "policy", "dataset", "runtime"))
    assert "half-done" not in registry.names("model")  # nothing a failed hook registered is kept
    # everything else keeps working
    assert "good-mlp" in registry.names("model") and "multiclass" in registry.names("model")
    assert registry.owner("model", "good-mlp") == "plugin 'zoo_good' from zoo-good 0.1.0"
    assert {"export", "verify"} <= set(group.commands)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_strict_mode_makes_a_broken_plugin_an_error(site, kind):
    broken_dist(site, kind)
    with pytest.raises(PluginError, match="ZOO_STRICT_PLUGINS is set"):
        pm, _ = load(strict=True)
        pm.register_commands(click.Group())


def test_the_same_name_from_two_distributions(site):
    for dist in ("twin-a", "twin-b"):
        make_dist(site, dist, dist.replace("-", "_"), GOOD.replace("good-mlp", "twin"))
    with pytest.warns(PluginWarning, match=r"model 'twin' is registered twice: by plugin 'twin_\w' from "
                                           r"twin-\w 0.1.0 and by plugin 'twin_\w' from twin-\w 0.1.0"):
        _, registry = load()
    assert "twin" in registry.names("model")  # the first keeps it, the second is skipped


def test_an_entry_point_to_a_missing_module(site):
    make_dist(site, "zoo-ghost", "zoo_ghost_unused", "", entry_name="ghost", entry_value="zoo_ghost_not_there")
    with pytest.warns(PluginWarning, match="plugin 'ghost' from zoo-ghost 0.1.0 failed to import "
                                           "'zoo_ghost_not_there': ModuleNotFoundError"):
        load()


def test_allow_list(site, monkeypatch):
    make_dist(site, "zoo-good", "zoo_good", GOOD)
    broken_dist(site, "import-error")
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "zoo_good")  # normalized: zoo_good == zoo-good
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm, registry = load()
    assert "good-mlp" in registry.names("model")
    skipped = next(i for i in pm.infos.values() if i.distribution == "zoo-broken-import-error")
    assert skipped.status == "not loaded" and "ZOO_LOAD_PLUGINS" in skipped.error

    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, registry = load()
    assert "good-mlp" not in registry.names("model") and "multiclass" in registry.names("model")

    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "zoo-good,not-installed")
    with pytest.warns(PluginWarning, match="ZOO_LOAD_PLUGINS names 'not-installed', but no installed"):
        load()


# -- the command line, in a real process -------------------------------------------------------


def zoo(site, *args, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    environment.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          env=environment, timeout=120, cwd=site)


def test_cli_keeps_working_and_warns_once(site):
    broken_dist(site, "import-error")
    result = zoo(site, "list")
    assert result.returncode == 0 and "multiclass" in result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("zoo: warning: plugin ")
    assert "zoo-broken-import-error" in result.stderr and "Traceback" not in result.stderr


def test_cli_strict_mode_exits_nonzero(site):
    broken_dist(site, "import-error")
    result = zoo(site, "list", ZOO_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: plugin 'zoo_broken_import_error' from zoo-broken-import-error")
    assert result.stderr.count("\n") == 1


def test_cli_allow_list_empty_skips_it(site):
    broken_dist(site, "import-error")
    result = zoo(site, "list", ZOO_LOAD_PLUGINS="")
    assert result.returncode == 0 and result.stderr == ""


def test_plugins_json_shows_the_load_error(site):
    broken_dist(site, "hook-raises")
    make_dist(site, "zoo-good", "zoo_good", GOOD, version="2.0.1")
    result = zoo(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["distribution"]: p for p in json.loads(result.stdout)}
    assert plugins["zoo-good"]["version"] == "2.0.1" and plugins["zoo-good"]["registered"]["models"] == ["good-mlp"]
    assert plugins["zoo-good"]["hooks"] == ["register_models"] and plugins["zoo-good"]["status"] == "loaded"
    assert plugins["zoo-broken-hook-raises"]["status"] == "failed"
    assert "cannot register today" in plugins["zoo-broken-hook-raises"]["error"]


def test_check_plugin_passes_a_good_plugin_and_fails_a_broken_one(site):
    make_dist(site, "zoo-good", "zoo_good", GOOD)
    good = zoo(site, "check-plugin", "zoo-good")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "good-mlp" in good.stdout and "PASSED" in good.stdout and "1 passed, 0 failed" in good.stdout
    broken_dist(site, "hook-raises")
    bad = zoo(site, "check-plugin", "zoo-broken-hook-raises")
    assert bad.returncode == 1 and "FAILED at load" in bad.stdout


def test_a_zipped_distribution_on_the_path_is_found(site, monkeypatch):
    import textwrap
    import zipfile

    archive = site.parent / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zoo_good_zipped.py", textwrap.dedent(GOOD).replace("good-mlp", "zipped-mlp"))
        z.writestr("zoo_good_zipped-0.2.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: zoo-good-zipped\nVersion: 0.2.0\n")
        z.writestr("zoo_good_zipped-0.2.0.dist-info/entry_points.txt", "[zoo]\nzipped = zoo_good_zipped\n")
    monkeypatch.syspath_prepend(str(archive))
    pm, registry = load(strict=True)
    assert registry.owner("model", "zipped-mlp") == "plugin 'zipped' from zoo-good-zipped 0.2.0"


def test_an_egg_info_distribution_is_found(site):
    (site / "zoo_good_egg.py").write_text(GOOD.replace("good-mlp", "egg-mlp").replace("\n    ", "\n"))
    info = site / "zoo_good_egg.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: zoo-good-egg\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[zoo]\negg = zoo_good_egg\n")
    pm, registry = load(strict=True)
    assert registry.owner("model", "egg-mlp") == "plugin 'egg' from zoo-good-egg 1.2"


def test_a_shadowed_copy_of_a_distribution_is_not_loaded(site, tmp_path, monkeypatch):
    """Two copies of one distribution on sys.path: the first is the one Python imports, and the only one zoo loads."""
    stale = tmp_path / "stale"
    make_dist(stale, "zoo-good", "zoo_good_stale", "raise RuntimeError('the stale copy was loaded')\n",
              entry_name="zoo_good", version="0.0.1")
    make_dist(site, "zoo-good", "zoo_good", GOOD, version="3.1.4")
    monkeypatch.setattr(sys, "path", [*sys.path, str(stale)])  # after site: shadowed
    from zoo.manager import find_entry_points

    assert [(ep.dist, ep.version) for ep in find_entry_points() if ep.dist == "zoo-good"] == [("zoo-good", "3.1.4")]
    pm, registry = load(strict=True)
    assert registry.owner("model", "good-mlp") == "plugin 'zoo_good' from zoo-good 3.1.4"


def test_the_entry_points_read_from_folders_are_those_importlib_metadata_finds(site, tmp_path, monkeypatch):
    """zoo reads plain folders of metadata itself (``importlib.metadata``'s import is a fifth of ``zoo list``): the
    same entry points in the same order, a shadowed copy left out, an egg-info read; a zip on the path, which only
    importlib.metadata reads, is left to it."""
    stale = tmp_path / "stale"
    make_dist(stale, "zoo-good", "zoo_good_stale", GOOD, entry_name="zoo_good", version="0.0.1")
    make_dist(site, "zoo-good", "zoo_good", GOOD, version="3.1.4")
    make_dist(site, "zoo-other", "zoo_good_other", GOOD)
    egg = site / "zoo_good_egg.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: zoo-good-egg\nVersion: 1.2\n")
    (egg / "entry_points.txt").write_text("# a comment\n[console_scripts]\nx = y:z\n[zoo]\negg = zoo_good_egg\n")
    # In a fresh interpreter: a package imported earlier here (dask's importlib_metadata) may add its own distribution
    # finder, which rightly hands the listing to importlib.metadata.
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        sys.path[:0] = [{str(site)!r}]
        sys.path.append({str(stale)!r})
        from importlib.metadata import entry_points
        from zoo.manager import _listed_entry_points, find_entry_points
        out = {{group: [[[ep.name, ep.value, ep.dist.metadata["Name"], ep.dist.version]
                         for ep in entry_points(group=group)], [list(ep) for ep in _listed_entry_points(group)]]
               for group in ("zoo", "console_scripts")}}
        out["found"] = [list(ep) for ep in find_entry_points()]
        zipped = Path({str(tmp_path / "some.zip")!r})
        zipped.write_bytes(b"")
        sys.path.append(str(zipped))
        out["zipped"] = _listed_entry_points("zoo")
        print(json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for group in ("zoo", "console_scripts"):
        expected, listed = out[group]
        assert listed == expected and expected, group
    assert ["zoo_good", "zoo_good", "zoo-good", "3.1.4"] in out["found"]
    assert out["zipped"] is None


def test_zoo_list_imports_neither_importlib_metadata_nor_a_runtime_library():
    code = ("import sys; from zoo.cli import main; sys.argv = ['zoo', 'list']\n"
            "try: main()\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('importlib.metadata', 'numpy', 'onnxruntime', 'onnx', 'openvino') "
            "if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip().splitlines()[-1] == "[]", done.stderr


@pytest.mark.parametrize("kind", ["exit-at-import", "exit-in-hook"])
def test_a_plugin_calling_sys_exit_does_not_take_zoo_down(site, kind):
    broken_dist(site, kind)
    result = zoo(site, "list")
    assert result.returncode == 0, result.stderr
    assert "multiclass" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("zoo: warning: ") and EXPECTED[kind] in lines[0], lines
