"""One test per hook, through a plugin object as a third party writes it; and the meta-tests.

Every hook in zoo/hookspecs.py must have a `test_hook_<name>` here and a section in
docs/writing-a-plugin.md: adding a hook without both fails the suite.
"""

import re
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from zoo import DatasetSpec, LossPolicy, ModelSpec, hookimpl
from zoo.data import synthetic
from zoo.manager import get_plugin_manager, hook_names
from zoo.registry import Registry, build
from zoo.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pm():
    return get_plugin_manager(entry_points=False, strict=True)


def with_plugin(pm, plugin):
    pm.register(plugin, name="test-plugin")
    return Registry.from_plugin_manager(pm)


def test_hook_register_models(pm):
    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("tiny", "a tiny net", "zoo.plugins.nets:MulticlassNet", "softmax-cross-entropy",
                               "multiclass", "iris", hyperparameters={"hidden_size": 4}))

    registry = with_plugin(pm, Plugin())
    assert registry.owner("model", "tiny") == "plugin 'test-plugin'"
    assert build("tiny", registry=registry, input_size=4, num_classes=3).module.linear1.out_features == 4


def test_hook_register_policies(pm):
    class Plugin:
        @hookimpl
        def register_policies(self, register):
            register(LossPolicy("weighted-ce", "class-weighted CE", "torch.nn:CrossEntropyLoss", "logits",
                                "softmax", "class-index", "argmax"))

    registry = with_plugin(pm, Plugin())
    result = fit("multiclass", policy="weighted-ce", data="iris", registry=registry,
                 config=TrainConfig(epochs=1, device="cpu"))
    assert result.policy.name == "weighted-ce"


def test_hook_register_datasets(pm):
    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec("blobs-4", "four blobs", "multiclass", lambda: synthetic(80, 3, 4)))

    registry = with_plugin(pm, Plugin())
    result = fit("multiclass", data="blobs-4", registry=registry, config=TrainConfig(epochs=1, device="cpu"))
    assert result.built.config["num_classes"] == 4 and result.built.config["input_size"] == 3


def test_hook_register_commands(pm):
    @click.command()
    def hello():
        click.echo("hello from a plugin")

    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(hello)

    pm.register(Plugin(), name="test-plugin")
    group = click.Group()
    pm.register_commands(group)
    assert group.commands["hello"] is hello
    assert pm.infos["test-plugin"].registered["commands"] == ["hello"]


def test_hook_register_runtimes(pm, tmp_path):
    from zoo import Runtime
    from zoo.exports.export.pipeline import export_bundle
    from zoo.exports.runtimes import open_session, run, select, statuses
    from zoo.exports.runtimes.reference import OnnxReference

    class Mine(OnnxReference):
        name = "my-reference"
        summary = "the reference evaluator, under another name"

    class Plugin:
        @hookimpl
        def register_runtimes(self, register):
            register(Mine())

    registry = with_plugin(pm, Plugin())
    assert registry.owner("runtime", "my-reference") == "plugin 'test-plugin'"
    assert pm.infos["test-plugin"].registered["runtimes"] == ["my-reference"]
    assert [r.name for r, why in select(["my-reference"], registry)] == ["my-reference"]
    assert {s.name for s in statuses(registry)} >= {"my-reference", "onnxruntime-cpu"}
    export_bundle(fit("binary", config=TrainConfig(epochs=1, device="cpu")), tmp_path / "b",
                  runtimes=["onnx-reference"])
    session = open_session(Mine(), tmp_path / "b" / "model.onnx")
    out = run(session, np.zeros((3, 30), dtype=np.float32))
    assert out["label"].shape == (3,) and session.runtime == "my-reference" and session.precision == "fp32"

    class Incomplete(Runtime):
        name = "incomplete"

    class Bad:
        @hookimpl
        def register_runtimes(self, register):
            register(Incomplete())

    with pytest.raises(Exception, match="runtime 'incomplete' does not implement unavailable, version, open"):
        with_plugin(get_plugin_manager(entry_points=False, strict=True), Bad())


def test_every_hook_has_a_test():
    tested = {name[len("test_hook_"):] for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")}
    assert set(hook_names()) == tested


def test_every_hook_has_a_documented_section():
    text = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    documented = set(re.findall(r"^### `(register_\w+)", text, flags=re.M))
    assert set(hook_names()) == documented


def test_every_hook_is_typed_and_documented():
    from zoo import hookspecs

    for name in hook_names():
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__.split()) > 10, name
        assert function.__annotations__, name


def test_pluggys_hook_call_monitoring_sees_every_register_call(pm):
    """zoo calls each plugin's hooks one plugin at a time, through pluggy's own hook calling, not around it."""
    seen = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append((name, [i.plugin_name for i in impls])),
                                      lambda outcome, name, impls, kwargs: None)
    try:
        registry = Registry.from_plugin_manager(pm)
    finally:
        undo()
    assert ("register_models", ["zoo.plugins.multiclass"]) in seen
    assert ("register_models", ["zoo.plugins.binary"]) in seen
    assert ("register_runtimes", ["zoo.exports.runtimes.onnxruntime"]) in seen
    assert all(len(plugins) == 1 for _, plugins in seen)  # one plugin a call: a failure is pinned on its plugin
    assert {name for name, _ in seen} == {"register_models", "register_policies", "register_datasets",
                                          "register_runtimes"}
    assert registry.owner("model", "multiclass") == "built-in zoo.plugins.multiclass"
