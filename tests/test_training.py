"""Brief training: the hand-written Adam, determinism, accuracy, and failures."""

import numpy as np
import pytest
import torch

from zoo.errors import PairingError, TrainingError, ZooError
from zoo.training import Adam, TrainConfig, fit, resolve_device


def test_adam_matches_torch_optim_adam_step_for_step():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    b.load_state_dict(a.state_dict())
    ours, theirs = Adam(a.parameters(), lr=0.01), torch.optim.Adam(b.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(25):
        x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name, floor", [("multiclass", 0.93), ("binary", 0.93), ("binary-seed", 0.93)])
def test_default_training_reaches_the_accuracy_floor(registry, name, floor):
    result = fit(name, registry=registry, config=TrainConfig(device="cpu"))
    assert result.metrics["holdout_accuracy"] >= floor
    assert result.metrics["loss_history"][-1] < result.metrics["loss_history"][0]


def test_training_is_deterministic_for_a_seed(registry):
    config = TrainConfig(epochs=3, seed=7, device="cpu")
    a = fit("multiclass", registry=registry, data="iris", config=config)
    b = fit("multiclass", registry=registry, data="iris", config=config)
    for p, q in zip(a.module.state_dict().values(), b.module.state_dict().values()):
        assert torch.equal(p, q)
    c = fit("multiclass", registry=registry, data="iris", config=TrainConfig(epochs=3, seed=8, device="cpu"))
    assert not torch.equal(a.module.linear1.weight, c.module.linear1.weight)


def test_input_size_and_class_count_come_from_the_data(registry):
    result = fit("multiclass", registry=registry, data="synthetic:200x7x5",
                 config=TrainConfig(epochs=1, device="cpu"), hidden_size=4)
    assert result.built.config == {"input_size": 7, "num_classes": 5, "hidden_size": 4}
    assert result.class_labels == ("0", "1", "2", "3", "4")


def test_a_loss_that_turns_nan_stops_training(registry, tmp_path):
    path = tmp_path / "huge.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.normal(size=(100, 3)), y=np.arange(100) % 3)
    with pytest.raises(TrainingError, match="loss became nan"):
        fit("multiclass", registry=registry, data=str(path), config=TrainConfig(lr=1e30, device="cpu"))


def test_pairing_is_checked_before_training(registry):
    with pytest.raises(PairingError):
        fit("multiclass", policy="sigmoid-bce", registry=registry, config=TrainConfig(device="cpu"))


def test_invalid_training_config():
    with pytest.raises(TrainingError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(TrainingError, match="learning rate"):
        TrainConfig(lr=float("nan"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ZooError, match="--device cuda: torch sees no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"
