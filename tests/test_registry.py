"""The plugin manager and the registry: built-ins, entry points, names and their errors."""

import sys
import textwrap

import pluggy
import pytest

import zoo
from zoo import DatasetSpec, ModelSpec, hookimpl
from zoo.errors import PluginError, SpecError, UnknownNameError
from zoo.manager import DEFAULT_PLUGINS, PluginWarning, get_plugin_manager
from zoo.registry import Registry


def test_builtins_are_registered(registry):
    assert registry.names("model") == ["binary", "binary-seed", "multiclass"]
    assert registry.names("policy") == ["sigmoid-bce", "sigmoid-in-model-bce", "softmax-cross-entropy"]
    assert {"digits", "breast-cancer"} <= set(registry.names("dataset"))
    assert registry.owner("model", "multiclass") == "built-in zoo.plugins.multiclass"


def test_every_builtin_is_a_plugin_through_the_public_hooks(pm):
    names = {pm.get_name(p) for p in pm.get_plugins()}
    assert set(DEFAULT_PLUGINS) <= names


def test_list_models_with_patterns(registry):
    assert zoo.list_models("bin*", registry=registry) == ["binary", "binary-seed"]
    assert zoo.list_models(["multi*", "binary"], registry=registry) == ["binary", "multiclass"]
    assert zoo.list_models(exclude="*-seed", registry=registry) == ["binary", "multiclass"]
    assert zoo.list_models("nothing*", registry=registry) == []


def test_unknown_name_suggests_close_matches(registry):
    with pytest.raises(UnknownNameError) as info:
        zoo.get_model_spec("multiclas", registry=registry)
    assert isinstance(info.value, LookupError)
    assert str(info.value) == "unknown model 'multiclas': did you mean 'multiclass'?"
    with pytest.raises(LookupError, match="did you mean 'softmax-cross-entropy'"):
        zoo.get_policy("softmax-crossentropy", registry=registry)
    with pytest.raises(LookupError, match="known models: binary, binary-seed, multiclass"):
        zoo.get_model_spec("resnet", registry=registry)


class Duplicate:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec("multiclass", "again", "x:y", "softmax-cross-entropy", "multiclass", "digits"))


def test_duplicate_name_names_both_owners():
    pm = get_plugin_manager(entry_points=False, strict=True)
    pm.register(Duplicate(), name="dup-plugin")
    with pytest.raises(PluginError) as info:
        Registry.from_plugin_manager(pm)
    message = str(info.value)
    assert "is registered twice: by built-in zoo.plugins.multiclass and by plugin 'dup-plugin'" in message


def test_duplicate_name_skips_the_second_plugin_with_a_warning(pm):
    pm.register(Duplicate(), name="dup-plugin")
    with pytest.warns(PluginWarning, match="plugin 'dup-plugin' raised in register_models: DuplicateNameError"):
        registry = Registry.from_plugin_manager(pm)
    assert registry.get("model", "multiclass").summary != "again"
    assert pm.infos["dup-plugin"].status == "failed"


def test_spec_naming_an_unknown_policy_is_refused():
    pm = get_plugin_manager(entry_points=False, strict=True)
    class Orphan:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("orphan", "x", "x:y", "no-such-policy", "multiclass", "digits"))

    pm.register(Orphan(), name="orphan")
    with pytest.raises(PluginError, match="names policy 'no-such-policy'"):
        Registry.from_plugin_manager(pm)


def test_registering_the_wrong_type_is_refused():
    pm = get_plugin_manager(entry_points=False, strict=True)
    class Wrong:
        @hookimpl
        def register_datasets(self, register):
            register({"name": "dict"})

    pm.register(Wrong(), name="wrong")
    with pytest.raises(PluginError, match="expected a DatasetSpec"):
        Registry.from_plugin_manager(pm)


def test_misspelled_hook_fails_loudly(pm):
    class Typo:
        @hookimpl
        def register_model(self, register):  # missing the "s"
            pass

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError, match="register_model"):
        pm.check_pending()


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    """A real distribution (a *.dist-info folder on sys.path) in the `zoo` entry-point group."""
    package = tmp_path / "zoo_extra_models.py"
    package.write_text(textwrap.dedent("""
        from zoo import DatasetSpec, ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("extra-mlp", "from an installed plugin", "zoo.plugins.nets:MulticlassNet",
                               "softmax-cross-entropy", "multiclass", "iris", hyperparameters={"hidden_size": 8}))
    """))
    dist = tmp_path / "zoo_extra_models-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-extra-models\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[zoo]\nextra = zoo_extra_models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry = Registry.from_plugin_manager(get_plugin_manager())
        assert "extra-mlp" in registry.names("model")
        assert registry.owner("model", "extra-mlp") == "plugin 'extra' from zoo-extra-models 1.2.3"
        model = zoo.get_model("extra-mlp", registry=registry, input_size=4, num_classes=3)
        assert sum(p.numel() for p in model.parameters()) == 4 * 8 + 8 + 8 * 3 + 3
    finally:
        sys.modules.pop("zoo_extra_models", None)


def test_builder_strings_are_resolved_only_when_built(registry):
    spec = registry.get("model", "multiclass")
    assert isinstance(spec.builder, str)
    assert isinstance(registry.get("dataset", "digits"), DatasetSpec)


def test_invalid_specs_are_refused():
    with pytest.raises(SpecError, match="invalid model name"):
        ModelSpec("Has Space", "x", "a:b", "p", "multiclass", "d")
    with pytest.raises(SpecError, match="task must be"):
        ModelSpec("m", "x", "a:b", "p", "regression", "d")
    with pytest.raises(SpecError, match="emits must be"):
        ModelSpec("m", "x", "a:b", "p", "binary", "d", emits="scores")
