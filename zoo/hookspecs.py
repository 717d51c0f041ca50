"""The whole contract between zoo and its plugins.

A plugin is a module (or any object) with functions decorated by :data:`hookimpl`
whose names match the hooks below. Built-in plugins are listed in
``zoo.manager.DEFAULT_PLUGINS``; third-party plugins are found through the
``zoo`` entry-point group::

    [project.entry-points.zoo]
    my_models = "my_package.zoo_plugin"

Every ``register_*`` hook receives a ``register`` callback instead of returning a
list, so zoo owns names, duplicates and error messages in one place. Each hook
is called once, when the registry is first needed (never at import time), and
may be left out by a plugin that has nothing to add.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from zoo.policies import LossPolicy
    from zoo.specs import DatasetSpec, ModelSpec, Runtime

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register models: call ``register(ModelSpec(...))`` once per model.

    A :class:`~zoo.specs.ModelSpec` names the loss policy it pairs with by
    default. Give its ``builder`` as a ``"module:attr"`` string so that listing
    models never imports torch; the builder is called with keyword arguments
    ``input_size``, ``num_classes`` and the spec's other hyper-parameters, and
    returns a ``torch.nn.Module`` mapping ``(N, input_size)`` to
    ``(N, policy.output_width(num_classes))``.
    """


@hookspec
def register_policies(register: Callable[[LossPolicy], None]) -> None:
    """Register loss policies: call ``register(LossPolicy(...))`` once per policy.

    A policy states the loss, what the loss expects (logits or probabilities),
    the output head, the target encoding and the decision rule; zoo checks every
    model/policy pairing against it before any training.
    """


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets: call ``register(DatasetSpec(...))`` once per dataset.

    The spec's ``loader`` (a callable or ``"module:attr"`` string) is called with
    no arguments and returns a :class:`~zoo.data.Dataset`. It must read local
    files only: nothing may be downloaded at run time.
    """


@hookspec
def register_runtimes(register: Callable[[Runtime], None]) -> None:
    """Register runtimes that can run an exported ONNX file: ``register(MyRuntime())`` once per runtime.

    A :class:`~zoo.specs.Runtime` has a name, a one-line summary, what to
    install for it (``requires``), an availability probe that returns the
    reason when it cannot run here, its version, and ``open(path)`` returning a
    :class:`~zoo.specs.Session` that runs rows and reports the device and
    precision it really used. Parity at export, ``zoo verify``, ``zoo predict``
    and ``zoo bench`` then use it like the built-in ones. Creating the object
    must import nothing heavy.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``zoo`` command-line group: ``cli.add_command(...)``.

    Called when the CLI is first asked for its commands. Keep heavy imports
    (torch, onnx) inside the command functions, so ``zoo --help`` stays fast.
    """
