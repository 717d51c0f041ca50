"""An example zoo plugin. Importing it is cheap: torch is imported only when a model is built.

Every hook zoo offers is implemented here, through the public contract only.
"""

from zoo import DatasetSpec, LossPolicy, ModelSpec, hookimpl

LABEL_SMOOTHING_CE = LossPolicy(
    name="label-smoothing-ce",
    summary="nn.CrossEntropyLoss(label_smoothing=0.1) on logits; class-index targets; argmax",
    loss="torch.nn:CrossEntropyLoss",
    loss_options={"label_smoothing": 0.1},
    expects="logits",
    head="softmax",
    targets="class-index",
    decision="argmax",
)

DEEP_MLP = ModelSpec(
    name="deep-mlp",
    summary="depth x (Linear -> ReLU), then Linear(C); emits logits",
    builder="zoo_deep_mlp.nets:DeepMLP",  # a string: `zoo list` never imports torch
    policy=LABEL_SMOOTHING_CE.name,
    task="multiclass",
    dataset="spirals",
    hyperparameters={"hidden_size": 64, "depth": 3},
)

SPIRALS = DatasetSpec(
    name="spirals",
    summary="three interleaved spirals, 900 x 2, 3 classes (generated, seed 0)",
    task="multiclass",
    loader="zoo_deep_mlp.data:spirals",
)


@hookimpl
def register_models(register):
    register(DEEP_MLP)


@hookimpl
def register_policies(register):
    register(LABEL_SMOOTHING_CE)


@hookimpl
def register_datasets(register):
    register(SPIRALS)


@hookimpl
def register_commands(cli):
    from zoo_deep_mlp.commands import confusion

    cli.add_command(confusion)
