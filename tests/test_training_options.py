"""The training options of `cnnlab train`: validation split, early stopping, parameter
groups, freezing, gradient clipping, schedulers, augmentation, batch size 1, resume."""
import json
import math

import numpy as np
import pytest
import torch

import cnnlab
import cnnlab.nn as nn
from cnnlab.cli import main
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.models import get_model
from cnnlab.optim import SGD
from cnnlab.serialization import load_arrays
from cnnlab.training import run as run_mod
from cnnlab.training.loop import best_epoch, should_stop, train_one_epoch
from cnnlab.training.run import TrainConfig, build_scheduler, fit, model_spec_for, tta_options
from cnnlab.training.splits import stratified_indices, stratified_split
from cnnlab.training.transfer import batchnorms_under, parameter_groups


def quiet(_):
    pass


def model_weights(path):
    arrays, _ = load_arrays(path)
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


# ------------------------------------------------------------------ splits
def test_val_split_is_disjoint_stratified_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    kept, held = stratified_split(y, 0.2, seed=3)
    assert len(held) == 20 and len(kept) == 80
    assert np.intersect1d(kept, held).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(y[held]), [10, 6, 3, 1])   # 20% of each class
    again, _ = stratified_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(again, kept)
    other, _ = stratified_split(y, 0.2, seed=4)
    assert not np.array_equal(other, kept)
    # uneven quotas: the leftovers go to the largest remainders
    idx = stratified_indices(np.repeat(np.arange(3), [5, 3, 2]), 5, seed=0)
    assert np.bincount(np.repeat(np.arange(3), [5, 3, 2])[idx]).tolist() == [3, 1, 1]
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(y, 1.5, seed=0)


def test_fit_reports_validation_metrics_on_a_held_out_split(tmp_path):
    res = fit(TrainConfig(epochs=1, train_size=200, val_split=0.25, seed=1), tmp_path / "r",
              progress=False, report=quiet)
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text())
    assert {"val_loss", "val_acc"} <= set(row) and "test_acc" not in row   # tested once, at the end
    _, meta = load_arrays(tmp_path / "r" / "model.npz")
    assert meta["test_accuracy"] == res.test_accuracy and 0 < res.test_accuracy <= 1
    assert row["val_acc"] * 50 == pytest.approx(round(row["val_acc"] * 50))   # 50 val images
    assert (tmp_path / "r" / "best.npz").exists()
    assert res.history[0]["val_acc"] == row["val_acc"]


def test_plateau_and_early_stopping_need_a_validation_split(tmp_path, capsys):
    with pytest.raises(ValueError, match="val_split"):
        TrainConfig(early_stopping=2, val_split=0).resolved()
    with pytest.raises(ValueError, match="val_split"):
        TrainConfig(scheduler="plateau", val_split=0).resolved()
    for option in (["--early-stopping", "2"], ["--scheduler", "plateau"]):   # the CLI names its flag
        assert main(["train", *option, "--val-split", "0", "--out", str(tmp_path / "x")]) == 2
        assert "--val-split" in capsys.readouterr().err


# ------------------------------------------------------------ early stopping
def test_should_stop_on_a_constructed_metric_sequence():
    accs = [0.5, 0.7, 0.7, 0.6, 0.9]
    hist = [{"epoch": i + 1, "val_acc": a} for i, a in enumerate(accs)]
    assert best_epoch(hist) == (5, 0.9) and best_epoch(hist[:4]) == (2, 0.7)   # ties: the first
    stops = [e for e in range(1, 6) if should_stop(hist[:e], patience=2)]
    assert stops[0] == 4
    assert [should_stop(hist[:e], patience=3) for e in range(1, 6)] == [False] * 5


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path, monkeypatch):
    scripted = iter([0.5, 0.7, 0.7, 0.6, 0.9, 0.95])
    real_evaluate = run_mod.evaluate

    def evaluate(model, loader, *a, **k):   # the validation accuracies follow the script
        res = real_evaluate(model, loader, *a, **k)
        if len(loader.dataset) == 40:
            res.accuracy = next(scripted)
        return res

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    out = tmp_path / "es"
    res = fit(TrainConfig(epochs=6, train_size=200, val_split=0.2, early_stopping=2, scheduler="none"),
              out, progress=False, report=quiet)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]       # stopped after epoch 4
    final = model_weights(out / "model.npz")
    best = model_weights(out / "checkpoints" / "epoch-002.npz")
    last = model_weights(out / "checkpoints" / "epoch-004.npz")
    assert final.keys() == best.keys()
    for k in final:
        np.testing.assert_array_equal(final[k], best[k], err_msg=k)
    assert any(not np.array_equal(final[k], last[k]) for k in final)
    for k, v in model_weights(out / "best.npz").items():
        np.testing.assert_array_equal(v, best[k])
    assert "test_acc" not in res.history[1]                          # the test set is scored once,
    cnnlab.manual_seed(0)                                            # on the restored weights
    from cnnlab.training import evaluate, load_for_evaluation
    from cnnlab.training.run import evaluation_loader
    model, meta = load_for_evaluation(out / "model.npz")
    assert res.test_accuracy == evaluate(model, evaluation_loader(meta, None, None)[1]).accuracy
    _, meta = load_arrays(out / "model.npz")
    assert meta["best_epoch"] == 2 and meta["stopped_epoch"] == 4


# ------------------------------------------------------------ param groups
def test_parameter_group_learning_rates_match_torch_sgd():
    cnnlab.manual_seed(0)
    model = get_model("digits_cnn").double()
    groups = parameter_groups(model, 0.1, {"features": 0.1, "classifier.2": 3.0})
    assert [g["name"] for g in groups] == ["", "features", "classifier.2"]
    assert [g["lr"] for g in groups] == pytest.approx([0.1, 0.01, 0.3])
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups[2]["params"]] == ["classifier.2.weight", "classifier.2.bias"]
    opt = SGD(groups, lr=0.1, momentum=0.9, weight_decay=1e-3)
    tparams = [[torch.tensor(p.data.copy(), requires_grad=True) for p in g["params"]] for g in groups]
    topt = torch.optim.SGD([{"params": tp, "lr": g["lr"]} for tp, g in zip(tparams, groups)],
                           lr=0.1, momentum=0.9, weight_decay=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        for g, tp in zip(groups, tparams):
            for p, t in zip(g["params"], tp):
                p.grad = rng.normal(size=p.shape)
                t.grad = torch.tensor(p.grad.copy())
        opt.step()
        topt.step()
    for g, tp in zip(groups, tparams):
        for p, t in zip(g["params"], tp):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="no trainable parameter"):
        parameter_groups(model, 0.1, {"feature": 0.5})


# ------------------------------------------------------------------ freezing
def test_frozen_parameters_are_bit_identical_after_fit(tmp_path):
    base = fit(TrainConfig(epochs=1, train_size=200, seed=2), tmp_path / "a", progress=False,
               report=quiet)
    res = fit(TrainConfig(epochs=2, train_size=200, seed=3, init_from=str(tmp_path / "a" / "model.npz"),
                          freeze=["features"], weight_decay=1e-2), tmp_path / "b", progress=False,
              report=quiet)
    before = base.model.state_dict()
    after = res.model.state_dict()
    for k in before:
        if k.startswith("features."):
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
        else:
            assert not np.array_equal(after[k], before[k]), k
    assert all(not p.requires_grad for p in res.model.features.parameters())


def test_batchnorm_under_a_frozen_prefix_keeps_its_running_statistics():
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.normal(2.0, 1.0, (32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32))
    model.freeze("0", "1")
    frozen = batchnorms_under(model, ["0", "1"])
    assert frozen == [model[1]]
    mean0 = model[1].running_mean.copy()
    opt = SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    train_one_epoch(model, DataLoader(data, 8), opt, eval_modules=frozen)
    np.testing.assert_array_equal(model[1].running_mean, mean0)
    train_one_epoch(model, DataLoader(data, 8), opt)                 # without: the stats move
    assert not np.array_equal(model[1].running_mean, mean0)


# ------------------------------------------------------------ clipping, schedules
def test_clip_grad_norm_limits_the_step():
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    rng = np.random.default_rng(1)
    data = ArrayDataset(rng.normal(0, 10, (8, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, 8))
    w0 = [p.data.copy() for p in model.parameters()]
    train_one_epoch(model, DataLoader(data, 8), SGD(model.parameters(), lr=1.0), clip_grad_norm=0.5)
    step = np.sqrt(sum(((p.data - w) ** 2).sum() for p, w in zip(model.parameters(), w0)))
    assert step == pytest.approx(0.5, rel=1e-4)     # lr 1: the step is the clipped gradient


def test_warmup_cosine_learning_rates():
    cfg = TrainConfig(epochs=5, lr=0.1, scheduler="warmup-cosine", warmup_epochs=2).resolved()
    model = get_model("digits_cnn")
    opt = SGD(model.parameters(), lr=cfg.lr)
    sched = build_scheduler(cfg, opt)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    cos = [0.1 * (1 + math.cos(math.pi * t / 3)) / 2 for t in range(3)]
    expected = [0.01, 0.055, *cos]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(epochs=3, scheduler="warmup-cosine", warmup_epochs=3).resolved()


def test_input_size_option_resizes_to_the_requested_side():
    cfg = TrainConfig(model="lenet5", input_size=28).resolved()
    spec = model_spec_for(cfg, (1, 8, 8), 10)
    assert spec["kwargs"]["input_size"] == 28 and spec["input"] == {"from": 8, "to": 28, "how": "resize"}


# ------------------------------------------------------------ batch 1, resume
def test_batch_size_one_trains(tmp_path):
    res = fit(TrainConfig(epochs=2, batch_size=1, train_size=200, lr=0.005, val_split=0), tmp_path / "b1",
              progress=False, report=quiet)
    assert res.history[1]["train_loss"] < res.history[0]["train_loss"] and res.test_accuracy > 0.6


def test_resume_is_bit_exact_with_the_new_options(tmp_path):
    cfg = TrainConfig(epochs=3, train_size=240, val_split=0.25, scheduler="plateau", plateau_patience=0,
                      augment="crop", lr_mult={"features": 0.5}, clip_grad_norm=2.0, seed=7)
    full = tmp_path / "full"
    fit(cfg, full, progress=False, report=quiet)
    part = tmp_path / "part"
    (part / "checkpoints").mkdir(parents=True)
    first = full / "checkpoints" / "epoch-001.npz"
    (part / "checkpoints" / "epoch-001.npz").write_bytes(first.read_bytes())
    fit(TrainConfig(), part, resume=True, progress=False, report=quiet)
    a, b = model_weights(full / "model.npz"), model_weights(part / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    strip = lambda r: {k: v for k, v in json.loads(r).items() if "time" not in k}  # noqa: E731
    rows_a = [strip(r) for r in (full / "metrics.jsonl").read_text().splitlines()]
    rows_b = [strip(r) for r in (part / "metrics.jsonl").read_text().splitlines()]
    assert rows_a == rows_b and "group_lrs" in rows_a[0]


def test_a_single_sample_last_batch_is_dropped_for_batchnorm_models(tmp_path):
    """49 images in batches of 16 leave one sample: BatchNorm1d cannot train on it (torch raises
    too), so the run drops it instead of crashing; batch size 1 is refused with a clear message."""
    res = fit(TrainConfig(model="bn_cnn", epochs=1, batch_size=16, train_size=49), tmp_path / "bn",
              progress=False, report=quiet)
    assert np.isfinite(res.history[0]["train_loss"])
    with pytest.raises(ValueError, match="batch size 1 cannot train bn_cnn"):
        fit(TrainConfig(model="bn_cnn", epochs=1, batch_size=1, train_size=20), tmp_path / "bn1",
            progress=False, report=quiet)


def test_tta_views_follow_the_training_augmentation():
    norm = {"mean": 0.25, "std": 0.5}
    spec8 = model_spec_for(TrainConfig().resolved(), (1, 8, 8), 10)
    assert tta_options(TrainConfig(augment="none").resolved(), spec8, norm) == {"flips": False, "crops": None}
    crop = tta_options(TrainConfig(augment="crop").resolved(), spec8, norm)
    assert crop == {"flips": False, "crops": "five", "padding": 1, "padding_mode": "constant",
                    "fill": -0.5}                              # raw background 0, normalised
    spec28 = model_spec_for(TrainConfig(model="lenet5", input_size=28).resolved(), (1, 8, 8), 10)
    assert tta_options(TrainConfig(augment="crop").resolved(), spec28, None)["padding"] == 4  # 1 px * 28/8
    fashion = TrainConfig(dataset="fashion-mnist", augment="flip-crop").resolved()
    spec_f = model_spec_for(fashion, (1, 28, 28), 10)
    assert tta_options(fashion, spec_f, norm)["flips"] and tta_options(fashion, spec_f, norm)["padding"] == 3
    assert not tta_options(TrainConfig(augment="flip-crop").resolved(), spec8, norm)["flips"]  # digits
