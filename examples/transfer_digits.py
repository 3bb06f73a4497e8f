"""Transfer learning as the notes teach it: Fashion-MNIST -> 300 labelled 8x8 digits.

Pre-train LeNet-5 on Fashion-MNIST (28x28 clothes), then learn scikit-learn's
8x8 digits (resized to 28x28) from only ``--labels`` training images
(stratified, seeded), and compare on the 360 digits test images:

* from scratch (the same LeNet-5, randomly initialised);
* the pre-trained net as a fixed feature extractor: ReLU codes of a layer and a
  linear softmax or SVM classifier on them (a late layer, and the earlier,
  more generic conv features);
* fine-tuning the last layers (the conv features frozen, a new head);
* fine-tuning all layers (same learning rate, and 10x smaller for the convs).

This is the notes' "small new dataset, different from the original" case.
Every row is seeded; the wall time is that row's training (and feature
extraction) on this machine.

    python examples/transfer_digits.py [--pretrained runs/fashion/model.npz] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab.data import DataLoader, get_dataset
from cnnlab.training.features import extract_features
from cnnlab.training.linear import train_linear
from cnnlab.training.run import TrainConfig, fit, input_transform, load_for_evaluation
from cnnlab.training.splits import stratified_indices, subset


def quiet(_: str) -> None:
    pass


def pretrain(out: Path, epochs: int) -> Path:
    t0 = time.perf_counter()
    res = fit(TrainConfig(dataset="fashion-mnist", model="lenet5", epochs=epochs, seed=0), out,
              progress=False, report=quiet)
    print(f"pre-trained lenet5 on Fashion-MNIST for {epochs} epochs: test accuracy "
          f"{res.test_accuracy:.4f} ({time.perf_counter() - t0:.0f} s)")
    return out / "model.npz"


def finetune_rows(pretrained: Path, labels: int, epochs: int, seed: int, work: Path) -> dict:
    # all the labels train (val_split=0): nothing here is chosen on a validation score, and the
    # test set only reports the last epoch
    base = dict(dataset="digits", model="lenet5", input_size=28, train_size=labels, epochs=epochs,
                seed=seed, val_split=0.0)
    runs = {
        "from scratch": TrainConfig(**base),
        "fine-tune last layers (features frozen)": TrainConfig(
            **base, init_from=str(pretrained), freeze=["features"]),
        "fine-tune all layers": TrainConfig(**base, init_from=str(pretrained)),
        "fine-tune all layers, features lr x0.1": TrainConfig(
            **base, init_from=str(pretrained), lr_mult={"features": 0.1}),
    }
    rows = {}
    for name, cfg in runs.items():
        t0 = time.perf_counter()
        res = fit(cfg, work / f"{name.split()[0]}-{len(rows)}-{seed}", progress=False, report=quiet)
        trainable = sum(p.numel() for p in res.model.parameters() if p.requires_grad)
        rows[name] = (res.test_accuracy, time.perf_counter() - t0, trainable)
    return rows


def linear_rows(pretrained: Path, labels: int, seed: int) -> dict:
    model, meta = load_for_evaluation(pretrained)
    train, test = get_dataset("digits", "train"), get_dataset("digits", "test")
    train = subset(train, stratified_indices(train.y, labels, seed))   # the same images fit uses
    transform = input_transform(meta["model_spec"], meta["normalize"], 1, size=8)
    rows = {}
    for layer, what in (("classifier.2", "FC-84 codes"), ("flatten", "conv codes, 400-d")):
        for loss in ("softmax", "svm"):
            t0 = time.perf_counter()
            x_tr, y_tr = extract_features(model, layer, DataLoader(train, 500, transform=transform),
                                          relu=True)
            x_te, y_te = extract_features(model, layer, DataLoader(test, 500, transform=transform),
                                          relu=True)
            clf = train_linear(x_tr, y_tr, loss=loss, epochs=100, seed=seed)
            name = f"fixed features + linear {'SVM' if loss == 'svm' else 'softmax'} ({what})"
            d, k = x_tr.shape[1], 10
            rows[name] = (clf.score(x_te, y_te), time.perf_counter() - t0, d * k + k)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", type=Path, help="a Fashion-MNIST lenet5 model.npz (skips pre-training)")
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--labels", type=int, default=300, help="labelled digits to train on")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of every digits run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--work", type=Path, help="folder for the runs (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="transfer_digits-"))
    pretrained = args.pretrained or pretrain(work / "fashion-lenet5", args.pretrain_epochs)

    results: dict[str, list] = {}
    for seed in args.seeds:
        rows = {**finetune_rows(pretrained, args.labels, args.epochs, seed, work),
                **linear_rows(pretrained, args.labels, seed)}
        for name, row in rows.items():
            results.setdefault(name, []).append(row)

    order = ["from scratch", *[n for n in results if n.startswith("fixed")],
             *[n for n in results if n.startswith("fine-tune")]]
    seeds = ", ".join(str(s) for s in args.seeds)
    print(f"\n{args.labels} labelled 8x8 digits (resized to 28x28), LeNet-5, {args.epochs} epochs "
          f"per network run, test on 360 digits; seed(s) {seeds}\n")
    print("| method | trained parameters | test accuracy | wall time (s) |")
    print("|---|---:|---:|---:|")
    for name in order:
        acc = np.array([r[0] for r in results[name]])
        secs = np.mean([r[1] for r in results[name]])
        acc_text = f"{acc.mean():.4f}" + (f" ± {acc.std(ddof=1):.4f}" if len(acc) > 1 else "")
        print(f"| {name} | {results[name][0][2]:,} | {acc_text} | {secs:.1f} |")


if __name__ == "__main__":
    main()
