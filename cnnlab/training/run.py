"""A whole training run: config in, run folder out.

The run folder gets

* ``config.json``           -- the resolved configuration;
* ``metrics.jsonl``         -- one JSON line per epoch (losses, accuracies, lr, time);
* ``checkpoints/epoch-NNN.npz`` -- a resumable checkpoint after every epoch;
* ``model.npz``             -- the final weights with what ``cnnlab evaluate`` needs;
* ``curves.png``            -- loss and accuracy per epoch (if matplotlib is installed).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cnnlab
from cnnlab import optim
from cnnlab.data import Compose, DataLoader, Normalize, Pad, Resize, dataset_stats, get_dataset
from cnnlab.models import get_model, input_size_for
from cnnlab.nn.module import Module
from cnnlab.serialization import CheckpointError, atomic_write
from cnnlab.training.checkpoint import load_training_state, save_model, save_training_state
from cnnlab.training.loop import evaluate, train_one_epoch

DEFAULT_MODEL = {"digits": "digits_cnn", "fashion-mnist": "lenet5", "mnist": "lenet5"}
# Per-dataset defaults for options the user leaves unset.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 30, "batch_size": 32, "lr": 0.02, "scheduler": "cosine"},
    "fashion-mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
    "mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
}
# Models whose default learning rate differs from the dataset's: LeNet-5 (1998)'s
# RBF output gives penalties of order 100, so SGD at 0.02 overshoots.
MODEL_LR = {"lenet5_1998": 0.003}
CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.npz$")


@dataclass
class TrainConfig:
    """Everything that defines a run.  ``None`` means "the dataset's default"."""

    model: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    optimizer: str = "sgd"          # 'sgd' or 'adam'
    scheduler: str | None = None    # 'none', 'step' or 'cosine'
    step_size: int = 5
    gamma: float = 0.1
    seed: int = 0
    normalize: bool = True

    def resolved(self) -> TrainConfig:
        """A copy with dataset defaults filled in and names normalised."""
        ds = self.dataset.lower().replace("_", "-")
        if ds not in DEFAULT_MODEL:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {sorted(DEFAULT_MODEL)}")
        d = DATASET_DEFAULTS[ds]
        model = (self.model or DEFAULT_MODEL[ds]).lower().replace("-", "_")
        cfg = dataclasses.replace(
            self, dataset=ds, model=model,
            epochs=d["epochs"] if self.epochs is None else self.epochs,
            batch_size=d["batch_size"] if self.batch_size is None else self.batch_size,
            lr=MODEL_LR.get(model, d["lr"]) if self.lr is None else self.lr,
            scheduler=d["scheduler"] if self.scheduler is None else self.scheduler)
        if cfg.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
        if cfg.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {cfg.batch_size}")
        if cfg.lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {cfg.lr}")
        if cfg.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")
        if cfg.scheduler not in ("none", "step", "cosine"):
            raise ValueError(f"scheduler must be 'none', 'step' or 'cosine', got {cfg.scheduler!r}")
        return cfg


# ------------------------------------------------------------------ building
def model_spec_for(cfg: TrainConfig, sample_shape: tuple[int, ...], num_classes: int) -> dict:
    """How to rebuild the model, and how images are brought to the size it needs."""
    C, H, W = sample_shape
    size, how = input_size_for(cfg.model, H)
    return {"name": cfg.model, "kwargs": {"num_classes": num_classes, "in_channels": C,
                                          "input_size": size},
            "input": {"from": H, "to": size, "how": how}}


def input_transform(spec: dict, normalize: dict | None, channels: int, size: int | None = None):
    """Pad or resize images of ``size`` pixels (default: the training images')
    to the model's input size, in raw pixels so padding is background, then
    standardise; None when nothing is to be done."""
    steps = []
    inp = spec.get("input") or {}
    target = inp.get("to", spec["kwargs"]["input_size"])
    size = inp.get("from", target) if size is None else size
    if size < target and inp.get("how") == "pad" and target - size <= 4:
        total = target - size
        steps.append(Pad((total // 2, total // 2, total - total // 2, total - total // 2)))
    elif size != target:
        steps.append(Resize(target))
    if normalize:
        steps.append(Normalize([normalize["mean"]] * channels, [normalize["std"]] * channels))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Compose(steps)


def build_model(spec: dict) -> Module:
    return get_model(spec["name"], **spec["kwargs"])


def build_optimizer(cfg: TrainConfig, model: Module):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                     weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer):
    if cfg.scheduler == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None


def load_data(dataset: str, data_dir: str | None):
    train = get_dataset(dataset, "train", root=data_dir)
    test = get_dataset(dataset, "test", root=data_dir)
    return train, test


# ------------------------------------------------------------------- folders
def find_checkpoints(out: Path) -> list[tuple[int, Path]]:
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def default_out_dir(cfg: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<dataset>-<model>``, or with ``-2``, ``-3``, ... if that is taken."""
    base = Path(root) / f"{cfg.dataset}-{cfg.model}"
    out, k = base, 1
    while out.exists() and any(out.iterdir()):
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


# ----------------------------------------------------------------------- fit
@dataclass
class RunResult:
    out: Path
    history: list[dict[str, Any]]
    test_accuracy: float
    model: Module


Reporter = Callable[[str], None]


def fit(cfg: TrainConfig, out: str | os.PathLike, resume: bool | str | os.PathLike = False,
        progress: bool | None = None, report: Reporter = print) -> RunResult:
    """Train ``cfg`` into the folder ``out``.

    ``resume=True`` continues from the newest checkpoint in ``out``; a path
    continues from that checkpoint.  The stored config is used, except that
    ``cfg.epochs`` (if given) may extend a run whose schedule is 'none' or
    'step' (a cosine schedule is tied to the planned length).  ``progress`` shows a tqdm
    bar (default: when stderr is a terminal).
    """
    out = Path(out)
    state = None
    if resume:
        ckpt = Path(resume) if not isinstance(resume, bool) else None
        if ckpt is None:
            found = find_checkpoints(out)
            if not found:
                raise FileNotFoundError(f"--resume: no checkpoints in {out / 'checkpoints'}")
            ckpt = found[-1][1]
        state = load_training_state(ckpt)
        if state.meta.get("kind") != "training-state":
            raise CheckpointError(f"{ckpt}: a final model file, not a resumable checkpoint")
        stored = TrainConfig(**state.meta["config"])
        if cfg.epochs and cfg.epochs != stored.epochs and stored.scheduler == "cosine":
            raise ValueError(
                f"this run's cosine schedule was planned for {stored.epochs} epochs and its "
                f"learning rate has decayed along it; it cannot be stretched to {cfg.epochs} "
                "(resume without --epochs, or start a new run with more epochs)")
        cfg = dataclasses.replace(stored, epochs=cfg.epochs or stored.epochs).resolved()
        report(f"resuming from {ckpt} (epoch {state.epoch} of {cfg.epochs})")
    else:
        cfg = cfg.resolved()
        if out.exists() and find_checkpoints(out):
            raise FileExistsError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out")

    cnnlab.manual_seed(cfg.seed)
    train_set, test_set = load_data(cfg.dataset, cfg.data_dir)
    sample_shape = tuple(train_set.x.shape[1:])
    classes = list(train_set.classes or [str(i) for i in range(int(train_set.y.max()) + 1)])
    mean, std = dataset_stats(cfg.dataset) if cfg.normalize else (0.0, 1.0)
    normalize = {"mean": mean, "std": std} if cfg.normalize else None
    spec = model_spec_for(cfg, sample_shape, len(classes))
    transform = input_transform(spec, normalize, sample_shape[0])
    train_loader = DataLoader(train_set, cfg.batch_size, shuffle=True, seed=cfg.seed,
                              transform=transform)
    test_loader = DataLoader(test_set, 500, shuffle=False, transform=transform)

    model = build_model(spec)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state.model_state)
        if state.optimizer_state is not None:
            optimizer.load_state_dict(state.optimizer_state)
        if scheduler is not None and state.scheduler_state is not None:
            scheduler.load_state_dict(state.scheduler_state)
        if state.rng_state is not None:
            cnnlab.set_rng_state(state.rng_state)
        history = list(state.meta.get("history", []))
        start_epoch = state.epoch
    train_loader.set_epoch(start_epoch)

    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    _write_text_atomic(out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    _write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    meta_common = {"config": dataclasses.asdict(cfg), "model_spec": spec, "classes": classes,
                   "normalize": normalize,
                   "dataset": cfg.dataset}
    n_params = sum(p.size for p in model.parameters())
    inp = spec["input"]
    sized = (f", {'padded' if inp['how'] == 'pad' else 'resized'} to {inp['to']}x{inp['to']}"
             if inp["how"] else "")
    report(f"model {cfg.model} ({n_params:,} parameters) on {cfg.dataset}: "
           f"{len(train_set)} train / {len(test_set)} test images of shape {sample_shape}{sized}")

    use_bar = sys.stderr.isatty() if progress is None else progress
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        bar = _progress_bar(len(train_set), f"epoch {epoch}/{cfg.epochs}") if use_bar else None
        tr = train_one_epoch(model, train_loader, optimizer,
                             on_batch=_bar_updater(bar) if bar is not None else None)
        if bar is not None:
            bar.close()
        t_train = time.perf_counter() - t0
        te = evaluate(model, test_loader)
        elapsed = time.perf_counter() - t0
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch, "train_loss": tr.loss, "train_acc": tr.accuracy,
               "test_loss": te.loss, "test_acc": te.accuracy, "lr": lr,
               "train_time_s": round(t_train, 3), "epoch_time_s": round(elapsed, 3)}
        history.append(row)
        save_training_state(out / "checkpoints" / f"epoch-{epoch:03d}.npz", model, optimizer,
                            scheduler, epoch, cnnlab.get_rng_state(),
                            {**meta_common, "history": history})
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        report(f"epoch {epoch:3d}/{cfg.epochs}  train loss {tr.loss:.4f}  train acc {tr.accuracy:.4f}"
               f"  test loss {te.loss:.4f}  test acc {te.accuracy:.4f}  lr {lr:.4g}  "
               f"{elapsed:.1f}s")

    final_acc = history[-1]["test_acc"] if history else float("nan")
    save_model(out / "model.npz", model, {**meta_common, "test_accuracy": final_acc,
                                          "epochs": cfg.epochs, "history": history})
    plot = write_curves(history, out / "curves.png", f"{cfg.model} on {cfg.dataset}")
    report(f"test accuracy {final_acc:.4f}  (run folder: {out}"
           + (f", curves: {plot}" if plot else "") + ")")
    return RunResult(out, history, final_acc, model)


def _progress_bar(total: int, desc: str):
    """A tqdm bar on stderr, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr)


def _bar_updater(bar) -> Callable[[int, float, float], None]:
    def on_batch(n: int, loss: float, acc: float) -> None:
        bar.update(n)
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)
    return on_batch


def write_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Loss and accuracy per epoch as a PNG; skipped if matplotlib is missing."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a1.plot(ep, [h["test_loss"] for h in history], "s-", label="test")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.set_title("loss")
    a1.legend()
    a2.plot(ep, [h["train_acc"] for h in history], "o-", label="train")
    a2.plot(ep, [h["test_acc"] for h in history], "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_title(f"accuracy (final test {history[-1]['test_acc']:.4f})")
    a2.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def load_for_evaluation(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint or model file; returns (model, meta)."""
    state = load_training_state(path)
    spec = state.meta.get("model_spec")
    if not spec:
        raise CheckpointError(f"{path}: has no model_spec; was it written by cnnlab train?")
    model = build_model(spec)
    model.load_state_dict(state.model_state)
    model.eval()
    return model, state.meta


def evaluation_loader(meta: dict[str, Any], dataset: str | None, data_dir: str | None,
                      batch_size: int = 500):
    ds_name = dataset or meta["dataset"]
    data_dir = data_dir if data_dir is not None else (meta.get("config") or {}).get("data_dir")
    test = get_dataset(ds_name, "test", root=data_dir)
    transform = input_transform(meta["model_spec"], meta.get("normalize"), test.x.shape[1],
                                size=test.x.shape[-1])
    return test, DataLoader(test, batch_size, shuffle=False, transform=transform)

