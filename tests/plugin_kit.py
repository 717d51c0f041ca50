"""Build real installed-looking distributions (a module + a *.dist-info with entry_points.txt) on disk."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_dist(root: Path, dist: str, module: str, source: str, *, entry_name: str | None = None,
              entry_value: str | None = None, version: str = "0.1.0") -> Path:
    """Write ``module.py`` and ``dist-version.dist-info`` under ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{entry_name or module} = {entry_value or module}\n")
    return root


GOOD = """
    from zoo import ModelSpec, hookimpl

    @hookimpl
    def register_models(register):
        register(ModelSpec("good-mlp", "a plugin's model", "zoo.plugins.nets:MulticlassNet",
                           "softmax-cross-entropy", "multiclass", "iris", hyperparameters={"hidden_size": 8}))
"""

BROKEN = {
    "import-error": "raise RuntimeError('this plugin is broken on purpose')\n",
    "hook-raises": """
        from zoo import hookimpl

        @hookimpl
        def register_models(register):
            raise ValueError("cannot register today")
    """,
    "missing-fields": """
        from zoo import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("half", "no builder, no policy"))
    """,
    "wrong-types": """
        from zoo import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("typed", 42, "a:b", "softmax-cross-entropy", "multiclass", "digits"))
    """,
    "bad-width": """
        from zoo import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("wide", "3 classes under a sigmoid", "zoo.plugins.nets:MulticlassNet",
                               "sigmoid-bce", "multiclass", "digits", hyperparameters={"num_classes": 3}))
    """,
    "typo-hook": """
        from zoo import hookimpl

        @hookimpl
        def register_model(register):
            pass
    """,
    "exit-at-import": "import sys\nsys.exit(3)\n",
    "register-then-raise": """
        from zoo import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("half-done", "registered, then the hook failed", "zoo.plugins.nets:MulticlassNet",
                               "softmax-cross-entropy", "multiclass", "iris"))
            raise ValueError("failed after registering")
    """,
    "exit-in-hook": """
        import sys
        from zoo import hookimpl

        @hookimpl
        def register_models(register):
            sys.exit(4)
    """,
    "command-clash": """
        import click
        from zoo import hookimpl

        @hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("export", callback=lambda: None))
    """,
}

EXPECTED = {
    "import-error": "failed to import 'zoo_broken_import_error': RuntimeError: this plugin is broken on purpose",
    "hook-raises": "raised in register_models: ValueError: cannot register today",
    "missing-fields": "raised in register_models: TypeError",
    "wrong-types": "raised in register_models: SpecError: model 'typed': summary must be a string",
    "bad-width": "registered an invalid model: PairingError: sigmoid-bce is for two classes, got 3",
    "typo-hook": "is not a valid plugin: it implements register_model, which zoo has no hook for",
    "command-clash": "command 'export' is already registered by built-in zoo.exports.commands",
    "exit-at-import": "failed to import 'zoo_broken_exit_at_import': SystemExit: 3",
    "exit-in-hook": "raised in register_models: SystemExit: 4",
    "register-then-raise": "raised in register_models: ValueError: failed after registering",
}


def broken_dist(root: Path, kind: str) -> Path:
    module = f"zoo_broken_{kind.replace('-', '_')}"
    return make_dist(root, f"zoo-broken-{kind}", module, BROKEN[kind])


#: A third party's runtime: one module, one registration. onnxruntime on one thread with its graph
#: optimizations off (what a deployer pinning a latency-sensitive service might run).
RUNTIME = """
    from zoo import Runtime, Session, hookimpl


    class OneThreadSession(Session):
        def __init__(self, sess, precision):
            super().__init__("ort-one-thread", "cpu", precision, sess.get_inputs()[0].name,
                             [o.name for o in sess.get_outputs()])
            self.sess = sess

        def run(self, x, outputs=None):
            names = list(outputs or self.output_names)
            return dict(zip(names, self.sess.run(names, {self.input_name: self.prepare(x)})))

        def prepare(self, x):
            return x


    class OneThread(Runtime):
        name = "ort-one-thread"
        summary = "onnxruntime on one thread, graph optimizations off"
        requires = "onnxruntime"
        session_class = OneThreadSession
        precision = "fp32"

        def unavailable(self):
            try:
                import onnxruntime
            except ImportError:
                return "onnxruntime is not installed"
            return None

        def version(self):
            import onnxruntime
            return onnxruntime.__version__

        def open(self, model_path):
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(str(model_path), options, providers=ort.get_available_providers()[-1:])
            return self.session_class(sess, self.precision)


    @hookimpl
    def register_runtimes(register):
        register(OneThread())
"""

#: Runtimes that round the input to float16 before running: one says so, one claims fp32.
LOWERING_RUNTIMES = RUNTIME + """

    class HalfSession(OneThreadSession):
        def prepare(self, x):
            return x.astype("float16").astype("float32")


    class HonestHalf(OneThread):
        name = "half-honest"
        summary = "rounds inputs to float16, and says so"
        session_class = HalfSession
        precision = "fp16"


    class DishonestHalf(OneThread):
        name = "half-dishonest"
        summary = "rounds inputs to float16, and claims fp32"
        session_class = HalfSession


    class Unavailable(OneThread):
        name = "needs-hardware"
        summary = "a runtime for hardware this machine lacks"
        requires = "zoo-needs-hardware"

        def unavailable(self):
            return "no NPU found"


    class BrokenProbe(OneThread):
        name = "broken-probe"
        summary = "its probe raises"

        def unavailable(self):
            raise OSError("driver crashed")


    @hookimpl
    def register_runtimes(register):
        register(HonestHalf())
        register(DishonestHalf())
        register(Unavailable())
        register(BrokenProbe())
"""

#: A runtime for hardware this machine lacks, alone in its distribution.
UNAVAILABLE_RUNTIME = RUNTIME + """

    class NeedsHardware(OneThread):
        name = "needs-npu"
        summary = "a runtime for an NPU"

        def unavailable(self):
            return "no NPU found"


    @hookimpl
    def register_runtimes(register):
        register(NeedsHardware())
"""

#: Runtimes that break the Session contract, each its own way: zoo must answer each in one line.
MISBEHAVING_RUNTIMES = RUNTIME + """
    import dataclasses

    import numpy as np


    class ListSession(OneThreadSession):
        def run(self, x, outputs=None):
            return list(super().run(x, outputs).values())


    class FloatLabelSession(OneThreadSession):
        def run(self, x, outputs=None):
            got = super().run(x, outputs)
            return {k: v.astype(np.float64) if k == "label" else v for k, v in got.items()}


    class NoLabelSession(OneThreadSession):
        def run(self, x, outputs=None):
            return {k: v for k, v in super().run(x, outputs).items() if k != "label"}


    class ShortSession(OneThreadSession):
        def run(self, x, outputs=None):
            return {k: v[:-1] for k, v in super().run(x, outputs).items()}


    class FlatSession(OneThreadSession):
        def run(self, x, outputs=None):
            return {k: v.ravel() for k, v in super().run(x, outputs).items()}


    class NoRunnerSession(OneThreadSession):
        def runner(self, x, outputs=None):
            return None


    def misbehaving(name, session):
        def open(self, model_path):
            opened = OneThread.open(self, model_path)
            opened.runtime = self.name  # the session names its own runtime in zoo's messages
            return opened

        return type(name, (OneThread,), {"name": name, "summary": name, "session_class": session, "open": open})


    @dataclasses.dataclass
    class Unhashable(OneThread):  # a dataclass defines __eq__ and so loses __hash__
        name = "unhashable"
        summary = "a dataclass runtime"
        setting: int = 1


    class VersionRaises(OneThread):
        name = "version-raises"
        summary = "its version() raises"

        def version(self):
            raise RuntimeError("cannot read the version file")


    @hookimpl
    def register_runtimes(register):
        register(misbehaving("returns-a-list", ListSession)())
        register(misbehaving("float-labels", FloatLabelSession)())
        register(misbehaving("no-label", NoLabelSession)())
        register(misbehaving("one-row-short", ShortSession)())
        register(misbehaving("flattened", FlatSession)())
        register(misbehaving("no-runner", NoRunnerSession)())
        register(Unhashable())
        register(VersionRaises())
"""
