"""The binary classifier: one logit and BCEWithLogitsLoss, plus the seed's own pairing.

The seed puts ``torch.sigmoid`` inside the model and trains with ``nn.BCELoss``.
That is kept as ``binary-seed`` with ``sigmoid-in-model-bce``; it computes the
same loss as ``binary`` with ``sigmoid-bce`` (the tests prove it), but
``BCEWithLogitsLoss`` is the numerically stable form and the default.
"""

from zoo import LossPolicy, ModelSpec, hookimpl

SIGMOID_BCE = LossPolicy(
    name="sigmoid-bce",
    summary="nn.BCEWithLogitsLoss on one logit; float 0/1 targets of shape (N, 1); p >= 0.5",
    loss="torch.nn:BCEWithLogitsLoss",
    expects="logits",
    head="sigmoid",
    targets="binary",
    decision="threshold",
)

SIGMOID_IN_MODEL_BCE = LossPolicy(
    name="sigmoid-in-model-bce",
    summary="The seed's pairing: sigmoid inside the model, nn.BCELoss on probabilities",
    loss="torch.nn:BCELoss",
    expects="probabilities",
    head="sigmoid",
    targets="binary",
    decision="threshold",
)

BINARY = ModelSpec(
    name="binary",
    summary="The seed's NeuralNet1 without its sigmoid: Linear -> ReLU -> Linear(1), emits a logit",
    builder="zoo.plugins.nets:BinaryNet",
    policy=SIGMOID_BCE.name,
    task="binary",
    dataset="breast-cancer",
    hyperparameters={"hidden_size": 16},
)

BINARY_SEED = ModelSpec(
    name="binary-seed",
    summary="The seed's NeuralNet1 as written: sigmoid inside forward, emits a probability",
    builder="zoo.plugins.nets:SeedBinaryNet",
    policy=SIGMOID_IN_MODEL_BCE.name,
    task="binary",
    dataset="breast-cancer",
    emits="probabilities",
    hyperparameters={"hidden_size": 16},
)


@hookimpl
def register_policies(register):
    register(SIGMOID_BCE)
    register(SIGMOID_IN_MODEL_BCE)


@hookimpl
def register_models(register):
    register(BINARY)
    register(BINARY_SEED)
