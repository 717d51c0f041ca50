"""The multiclass classifier and its policy: logits out, CrossEntropyLoss on class indices."""

from zoo import LossPolicy, ModelSpec, hookimpl

SOFTMAX_CROSS_ENTROPY = LossPolicy(
    name="softmax-cross-entropy",
    summary="nn.CrossEntropyLoss (LogSoftmax + NLLLoss) on logits; class-index targets; argmax",
    loss="torch.nn:CrossEntropyLoss",
    expects="logits",
    head="softmax",
    targets="class-index",
    decision="argmax",
)

MULTICLASS = ModelSpec(
    name="multiclass",
    summary="The seed's NeuralNet2: Linear -> ReLU -> Linear(C), emits logits",
    builder="zoo.plugins.nets:MulticlassNet",
    policy=SOFTMAX_CROSS_ENTROPY.name,
    task="multiclass",
    dataset="digits",
    hyperparameters={"hidden_size": 32, "num_classes": 3},
)


@hookimpl
def register_policies(register):
    register(SOFTMAX_CROSS_ENTROPY)


@hookimpl
def register_models(register):
    register(MULTICLASS)
