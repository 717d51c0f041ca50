"""Brief, deterministic training of a registered model with its loss policy.

The loop slices in-memory tensors by a shuffled index (no DataLoader: for data
that fits in memory it is the faster honest loop) and steps a small Adam
written here: ``torch.optim`` imports ``torch._dynamo`` on first use, about 2 s
of a 5 s export on a 2-core machine. The tests check it step for step against
``torch.optim.Adam``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from zoo.errors import DataError, TrainingError, ZooError
from zoo.registry import Built, Registry, build, default_registry
from zoo.training.config import TrainConfig

if TYPE_CHECKING:
    from zoo.data import Dataset, Split
    from zoo.tables.features import TableOptions


@dataclass
class TrainResult:
    """A trained model with everything later steps need: data, statistics, metrics."""

    built: Built
    data: str  # the source it was trained on: a dataset name, a path or synthetic:...
    class_labels: tuple[str, ...]
    split: Split
    config: TrainConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    data_sha256: str | None = None  # the training data's fingerprint (zoo.data.fingerprint)
    state: dict[str, Any] = field(default_factory=dict)  # epoch, optimizer and shuffling state, for --resume
    feature_names: tuple[str, ...] | None = None  # the training data's column names, when it had them
    table_options: TableOptions | None = None  # what was said about a table's columns (for --resume)

    @property
    def module(self):
        return self.built.module

    @property
    def policy(self):
        return self.built.policy

    def describe(self) -> str:
        """One line: what was trained on what, and the held-out accuracy."""
        m = self.metrics
        on = f", {m['processes']} processes" if m.get("processes", 1) > 1 else ""
        held_out = f"accuracy on {m['evaluated_on']}" if m.get("evaluated_on") else "held-out accuracy"
        return (f"trained {self.built.spec.name} with {self.policy.name} on {self.data} "
                f"({m['train_rows']} rows, {self.config.epochs} epochs, {m['train_seconds']:.2f} s{on}); "
                f"{held_out} {m['holdout_accuracy']:.4f} on {m['holdout_rows']} rows")


class Adam:
    """``torch.optim.Adam`` with its defaults (betas 0.9/0.999, eps 1e-8), single-tensor form."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        import torch

        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "exp_avg": [t.detach().cpu().clone() for t in self.exp_avg],
                "exp_avg_sq": [t.detach().cpu().clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise TrainingError("the checkpoint's optimizer state does not fit this model")
        self.step_count = int(state["step"])
        for mine, saved in zip(self.exp_avg + self.exp_avg_sq, list(state["exp_avg"]) + list(state["exp_avg_sq"])):
            mine.copy_(saved.to(mine.device))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        beta1, beta2 = self.betas
        self.step_count += 1
        step_size = self.lr / (1 - beta1**self.step_count)
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
                if p.grad is None:
                    continue
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
                p.addcdiv_(m, denom, value=-step_size)


def require_torch() -> None:
    """Training needs torch; a runtime-only install (verify, predict) does not have it."""
    import importlib.util

    try:
        missing = importlib.util.find_spec("torch") is None
    except ImportError:  # an import hook that refuses torch
        missing = True
    if missing:
        raise ZooError("training and export need torch, which is not installed here: "
                       "pip install 'zoo-onnx[train]' (zoo verify and zoo predict work without it)")


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when torch sees a GPU; ``cuda`` without one is an error."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ZooError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise ZooError(f"--device cuda: torch sees no CUDA device ({why}); use --device cpu")
    return device


def prepare(name: str, *, policy: str | None = None, data: Any = None,
            config: TrainConfig = TrainConfig(), registry: Registry | None = None, table: TableOptions | None = None,
            **model_config: Any) -> tuple[Built, Dataset, Split]:
    """Resolve, load, split and build, checking everything that can fail before training."""
    require_torch()
    import torch

    from zoo.data import load_source, split

    registry = registry or default_registry()
    spec = registry.get("model", name)
    registry.get("policy", policy or spec.policy)  # unknown policy: fail before loading data
    dataset = load_source(spec.dataset if data is None else data, registry, table)
    present = sorted(set(dataset.y.tolist()))
    if len(present) < 2:
        raise DataError(f"{dataset.name}: every row has label {present[0]}; a classifier needs at least two classes")
    # A binary model has two classes whatever the labels say; labels outside 0..1 are errors.
    num_classes = 2 if spec.task == "binary" else dataset.num_classes
    if spec.task == "binary" and dataset.class_labels is not None and len(dataset.class_labels) > 2:
        raise DataError(f"{dataset.name}: the target has {len(dataset.class_labels)} classes "
                        f"({', '.join(dataset.class_labels[:4])}{', ...' if len(dataset.class_labels) > 4 else ''}); "
                        f"model {name!r} is binary: train a multiclass model")
    if dataset.y.max() >= num_classes:  # a class index out of range, said before the split needs the rows
        raise DataError(f"{dataset.name}: label {dataset.y.max()} is out of range for {num_classes} classes")
    parts = split(dataset, config.holdout, config.seed)  # a table's features are encoded here: the width is known
    torch.manual_seed(config.seed)
    built = build(name, policy=policy, registry=registry, input_size=parts.X_train.shape[1],
                  num_classes=num_classes, **model_config)
    built.policy.encode_targets(dataset.y, num_classes)
    return built, dataset, parts


def fit(name: str, *, policy: str | None = None, data: Any = None,
        config: TrainConfig = TrainConfig(), registry: Registry | None = None,
        on_epoch: Callable[[int, int, float], None] | None = None, resume: TrainResult | None = None,
        table: TableOptions | None = None, note: Callable[[str], None] | None = None,
        **model_config: Any) -> TrainResult:
    """Train model ``name`` on ``data`` (its default dataset if None) and score the held-out split.

    ``resume``: a checkpoint's :class:`TrainResult` to continue from (its weights, optimizer
    and shuffling state) for ``config.epochs`` more epochs, on the same data. ``note``: told, in a line each,
    how the data is read (in memory or streamed) and how many threads train, and why.
    """
    require_torch()
    import torch

    from zoo.training import streaming

    rank, world = _process_group()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if world > 1 else 1
    source = spec_data = None
    if resume is not None and config.stream is None:
        config = replace(config, stream=False)  # a checkpoint from before streaming was trained in memory
    streamed, why = streaming.plan(data, config.stream, local)
    config = replace(config, stream=streamed if isinstance(data, str) else config.stream)
    if streamed:
        built, stream = streaming.build_streamed(name, policy, data, config, registry or default_registry(), table,
                                                 rank, world, model_config)
        parts, data_sha256 = stream.split, stream.fingerprint
        num_classes = built.config["num_classes"]
        labels, feature_names = tuple(str(c) for c in stream.classes), stream.features.names
        source = data
        why = streaming.describe_stream(stream, config.shuffle_buffer, world) + f" ({why})"
    else:
        from zoo.data import fingerprint

        built, dataset, parts = prepare(name, policy=policy, data=data, config=config,
                                        registry=registry, table=table, **model_config)
        data_sha256 = fingerprint(dataset)
        num_classes = built.config["num_classes"]
        labels, feature_names = dataset.labels[:num_classes], dataset.feature_names
        spec_data = built.spec.dataset if data is None else data if isinstance(data, str) else dataset.name
    if resume is not None and resume.data_sha256 not in (None, data_sha256):
        raise DataError(f"the data changed since training: {data or built.spec.dataset} has sha256 "
                        f"{data_sha256[:12]}..., the checkpoint was trained on {resume.data_sha256[:12]}...; "
                        "train anew instead of --resume")
    device = resolve_device(config.device)
    module, loss_policy = built.module.to(device), built.policy
    batch_size = max(1, config.batch_size // world)
    threads, threads_why = choose_threads(config.threads, module, batch_size, local, device)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # for the training loop; the process's own setting is restored after it
    if note is not None and rank == 0:
        if streamed or why != "in memory":  # a table: how it is read, and why
            note(why if streamed else f"reading {spec_data} {why}")
        note(threads_why)
    if streamed:
        feed = streaming.StreamFeed(stream, loss_policy, num_classes, batch_size, config.shuffle_buffer, config.seed,
                                    config.holdout, rank, device)
    else:
        feed = MemoryFeed(parts, loss_policy, num_classes, batch_size, config.seed, rank, world, device)
    loss_fn = loss_policy.build_loss()
    optimizer = Adam(module.parameters(), lr=config.lr)
    done, history = 0, []
    curve: dict[str, list] = {key: [] for key in CURVE}
    if resume is not None:
        module.load_state_dict(resume.module.state_dict())
        optimizer.load_state_dict(resume.state["optimizer"])
        feed.load(resume.state)
        done, history = int(resume.state["epoch"]), list(resume.metrics.get("loss_history", []))
        curve = {key: list(resume.metrics.get("history", {}).get(key, [])) for key in CURVE}
    held_out = _held_out(parts, loss_policy, num_classes, device)
    trained = module
    if world > 1:
        # Equal shards (DDP needs the same number of steps on every rank), the global batch split across ranks,
        # gradients averaged by DDP.
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(module, device_ids=[torch.cuda.current_device()] if device == "cuda"
                                          else None)
    n = feed.rows
    started = time.perf_counter()
    module.train()
    try:
        for epoch in range(done + 1, done + config.epochs + 1):
            total = torch.zeros((), device=device)
            for X, Y in feed.batches(epoch):
                loss = loss_fn(trained(X), Y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(X)
            epoch_loss = _global_mean(total, n, world)
            if not math.isfinite(epoch_loss):
                raise TrainingError(
                    f"the training loss became {epoch_loss} in epoch {epoch}: lower --lr "
                    "or check the data for extreme values"
                )
            history.append(epoch_loss)
            held_loss, held_accuracy = held_out(module)
            for key, value in zip(CURVE, (epoch, epoch_loss, held_loss, held_accuracy)):
                curve[key].append(value)
            if on_epoch:
                on_epoch(epoch - done, config.epochs, epoch_loss)
    finally:
        torch.set_num_threads(before)
    seconds = time.perf_counter() - started
    module.eval().cpu()
    total_config = replace(config, epochs=done + config.epochs)
    result = TrainResult(built, source or spec_data, labels, parts, total_config,
                         data_sha256=data_sha256, feature_names=feature_names, table_options=table,
                         state={"epoch": done + config.epochs, "optimizer": optimizer.state_dict(), **feed.state()})
    result.metrics = {
        "train_loss": history[-1],
        "loss_history": history,
        "history": curve,
        "train_rows": n * world,
        "train_seconds": round(seconds, 4),
        "samples_per_second": round(n * world * config.epochs / seconds, 1) if seconds else None,
        "resumed_from_epoch": done or None,
        "device": device,
        "processes": world,
        "threads": threads,
        "streamed": streamed,
        **evaluate(result),
    }
    if streamed:
        result.metrics["holdout_rows_at_training"] = stream.held_rows
    return result


class MemoryFeed:
    """Each epoch's batches from in-memory tensors, in an order drawn from a seeded torch generator (its state goes
    into the checkpoint); under DDP, this rank's equal shard of one seeded permutation."""

    def __init__(self, parts, policy, num_classes: int, batch_size: int, seed: int, rank: int, world: int,
                 device: str):
        import torch

        self.X = torch.from_numpy((parts.X_train - parts.mean) * parts.scale).to(device)
        self.Y = torch.from_numpy(policy.encode_targets(parts.y_train, num_classes)).to(device)
        if world > 1:
            per_rank = len(self.X) // world
            order = torch.randperm(len(self.X), generator=torch.Generator().manual_seed(seed))
            mine = order[rank * per_rank:(rank + 1) * per_rank].to(device)
            self.X, self.Y = self.X[mine], self.Y[mine]
        self.generator = torch.Generator().manual_seed(seed + rank)
        self.batch_size, self.device, self.rows = batch_size, device, len(self.X)

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load(self, state: dict[str, Any]) -> None:
        if "generator" not in state:
            raise DataError("the checkpoint's training state is a stream's, not the in-memory path's: train anew")
        self.generator.set_state(state["generator"])

    def batches(self, epoch: int):
        import torch

        order = torch.randperm(self.rows, generator=self.generator).to(self.device)
        for start in range(0, self.rows, self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.X[index], self.Y[index]


#: A training step below this many floating-point operations (6 per parameter and row: forward, and backward twice)
#: trains on one intra-op thread. Measured on 2 cores: the 64-unit MLP on batches of 32 (4.6e5 operations) steps in
#: 250-550 us on one thread, 340 us at rest and 3.8-6.9 ms beside other work on two; the 512-unit one (7.4e6) in
#: 0.8-1.2 ms on one, 1.8-7.3 ms on two beside other work; a 512-unit one on batches of 1024 (8e8) in 9.4 ms on one
#: and 5.8 ms on two, at rest.
THREAD_WORK = 1e8


def choose_threads(threads: int | None, module, batch_size: int, processes: int, device: str) -> tuple[int, str]:
    """``(threads, why)``: torch's intra-op threads for training ``module`` on batches of ``batch_size``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch_default = max(1, cores // processes)
    on = f"{cores} cores" + (f" shared by {processes} processes" if processes > 1 else "")
    if threads is not None:
        return threads, f"training on {threads} thread{'s' if threads > 1 else ''} (--threads; {on})"
    if device == "cuda":
        return 1, "training on CUDA, 1 CPU thread"
    work = 6 * sum(p.numel() for p in module.parameters()) * batch_size
    if work < THREAD_WORK:
        return 1, (f"training on 1 thread: a step of {work:.1e} operations is too small for more to pay, and one "
                   f"does not fight other processes for the {on} (--threads N to change)")
    return torch_default, (f"training on {torch_default} threads: a step of {work:.1e} operations; "
                           f"{on} (--threads N to change)")


#: The training curve recorded per epoch (``metrics["history"]``, the bundle's ``training.history``).
CURVE = ("epoch", "train_loss", "holdout_loss", "holdout_accuracy")


def _held_out(parts, policy, num_classes: int, device: str):
    """A function of the module: its loss and accuracy on the held-out rows, in eval mode, its mode then restored.

    Measured after every epoch for the training curve, and once at the end (:func:`evaluate`); the rows are
    standardized and moved to the device once.
    """
    import torch

    X = torch.from_numpy((parts.X_test - parts.mean) * parts.scale).to(device)
    Y = torch.from_numpy(policy.encode_targets(parts.y_test, num_classes)).to(device)
    y = torch.from_numpy(parts.y_test).to(device)
    loss_fn = policy.build_loss()

    def measure(module) -> tuple[float, float]:
        training = module.training
        module.eval()
        with torch.inference_mode():
            output = module(X)
            loss = float(loss_fn(output, Y))
            accuracy = int((policy.decide(policy.probabilities(output)) == y).sum()) / len(y)
        module.train(training)
        return loss, accuracy

    return measure


def _process_group() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed process group this process is in, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _global_mean(total, n: int, world: int) -> float:
    """The mean loss over every rank's rows (an all-reduce when distributed)."""
    if world == 1:
        return float(total) / n
    import torch
    import torch.distributed as dist

    both = torch.stack([total.float(), torch.tensor(float(n), device=total.device)])
    dist.all_reduce(both)
    return float(both[0] / both[1])


def evaluate(result: TrainResult) -> dict[str, Any]:
    """Held-out accuracy and loss of a trained model, on the CPU."""
    loss, accuracy = _held_out(result.split, result.policy, len(result.class_labels), "cpu")(result.module)
    return {
        "holdout_rows": len(result.split.y_test),
        "holdout_loss": loss,
        "holdout_accuracy": accuracy,
    }
