"""The ``cnnlab`` command line:
``cnnlab train | evaluate | features | linear | models | summary | export | viz | report | explore``.

Run ``cnnlab COMMAND --help`` for the options of each.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import typing
from pathlib import Path

from cnnlab import tune_memory
from cnnlab._files import check_writable_target
from cnnlab.argtypes import finite_float, positive_int
from cnnlab.data import DATASET_NAMES
from cnnlab.data.idx import IDXFormatError
from cnnlab.serialization import CheckpointError
from cnnlab.training.config import ConfigError, TrainConfig
from cnnlab.training.folder import RunExistsError


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train a model. Unset options take the dataset's defaults "
                    "(digits: 30 epochs, batch 32, lr 0.02; fashion-mnist/mnist: 10 epochs, "
                    "batch 64, lr 0.02; SGD with momentum 0.9 and a cosine schedule; Adam: lr "
                    "1e-3). A tenth of the training set is held out for validation "
                    "(--val-split) and the test set is scored once, after training.")
    _add_config_options(p, TrainConfig)
    p.add_argument("--out", help="run folder (default: runs/<dataset>-<model>, numbered if taken)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue the run in --out from its newest checkpoint (or from "
                        "CHECKPOINT); --epochs may lengthen it unless its schedule is cosine "
                        "(use --extend)")
    p.add_argument("--extend", type=int, metavar="N",
                   help="train the run in --out (or the one of --resume CHECKPOINT) N more epochs "
                        "from its newest checkpoint, on a new schedule segment: the schedule starts "
                        "again at the run's learning rate (or --lr) over the N epochs (a new cosine, "
                        "say); the run stays resumable")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar (default: only on a terminal)")
    p.set_defaults(func=cmd_train)


def _flag(name: str) -> str:
    """The command-line flag of a config field: ``val_split`` -> ``--val-split``."""
    return "--" + name.replace("_", "-")


def _add_config_options(p: argparse.ArgumentParser, config: type) -> None:
    """One option per field of the dataclass ``config``, from the field's type,
    default and ``metadata`` (``help``, ``choices``, ``metavar``, ``group``).

    A bool that defaults to False is a switch (``--tta``); one that defaults to
    True is switched off (``--no-normalize``); a list or dict field is a
    repeatable option collected into a list (a dict's ``KEY=VALUE`` items are
    parsed by the command).  A default other than None is shown in the help.
    """
    types = typing.get_type_hints(config)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(config):
        meta, group = f.metadata, f.metadata.get("group")
        if meta.get("cli") is False:
            continue
        if group and group not in groups:
            groups[group] = p.add_argument_group(group)
        where = groups[group] if group else p
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        help_text = meta.get("help") or ""
        kwargs: dict = {"dest": f.name}
        flag = _flag(f.name)
        if isinstance(default, bool):
            flag = _flag("no_" + f.name) if default else flag
            kwargs.update(action="store_false" if default else "store_true", default=default)
        elif isinstance(default, (list, dict)):
            kwargs.update(action="append", default=[], metavar=meta.get("metavar"))
        else:
            kind = next(t for t in typing.get_args(types[f.name]) or (types[f.name],)
                        if t is not type(None))
            kwargs.update(type=kind, default=default, choices=meta.get("choices"),
                          metavar=meta.get("metavar"))
            if default is not None:
                help_text += f"{' ' if help_text else ''}(default: %(default)s)"
        where.add_argument(flag, help=help_text or None, **kwargs)


def _quiet_arithmetic():
    """NumPy's overflow warnings off while training: a run names a non-finite loss or
    weight itself (one line: training diverged ...), so they would only add noise."""
    import numpy as np

    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.training.run import fit

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
               if hasattr(args, f.name)}
    cfg = TrainConfig(**{**options, "lr_mult": _parse_lr_mult(args.lr_mult)})
    resume_path = args.resume if isinstance(args.resume, str) else None   # --resume CKPT
    if args.extend is not None and not args.resume:
        args.resume = True
    if args.resume is True and not args.out:
        raise ValueError(f"{'--extend' if args.extend is not None else '--resume'} needs "
                         "--out RUN_FOLDER (or --resume CHECKPOINT)")
    if args.out:
        out = Path(args.out)
    elif resume_path:   # RUN/checkpoints/epoch-NNN.npz -> RUN
        out = Path(resume_path).resolve().parent.parent
    else:
        out = None   # fit's default, runs/<dataset>-<model> (rank 0's choice when distributed)
    try:
        with _quiet_arithmetic():
            fit(cfg, out, resume=args.resume, progress=args.progress, extend=args.extend)
    except RunExistsError as e:
        raise RunExistsError(e.out, "pass --resume to continue it or choose another --out") from e
    return 0


def _parse_lr_mult(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        prefix, sep, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = None
        if not sep or not prefix or value is None:
            raise ValueError(f"--lr-mult must look like PREFIX=FACTOR, e.g. features=0.1, got {item!r}")
        out[prefix] = value
    return out


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a run",
                       description="Evaluate a run folder, model.npz or checkpoint written by "
                                   "`cnnlab train`, or an .onnx file, on its dataset's test split.")
    p.add_argument("checkpoint", metavar="RUN",
                   help="a run folder, its model.npz, a checkpoint or an .onnx file")
    p.add_argument("--dataset", metavar="NAME", help=f"{', '.join(DATASET_NAMES)}, folder:PATH or "
                   "cifar10:PATH (default: the dataset the model was trained on; needed for an "
                   ".onnx file not exported by cnnlab)")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=positive_int, default=500)
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="keep the batch norm layers as they are instead of folding them into "
                        "the convolutions before them (same predictions up to float rounding)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.nn.utils import FoldError, fold_batchnorm, has_batchnorm
    from cnnlab.training.builders import dataset_mismatch
    from cnnlab.training.loop import confusion_matrix, evaluate, format_confusion_matrix
    from cnnlab.training.run import evaluation_loader, load_for_evaluation

    model, meta = load_for_evaluation(args.checkpoint)
    test, loader = evaluation_loader(meta, args.dataset, args.data_dir, args.batch_size)
    for note in dataset_mismatch(meta, test):
        print(f"cnnlab evaluate: warning: {note}", file=sys.stderr)
    folding, first = None, next(iter(loader), None)
    if args.fold and first is not None and has_batchnorm(model):
        try:
            model = fold_batchnorm(model, first[0].data[:1])
            folding = f"{model.fold_report.summary()} (--no-fold keeps them)"
        except FoldError as e:   # the model as it is: folding only saves time
            folding = f"batch norm: left unfolded ({e})"
    res = evaluate(model, loader, fold_bn=False)
    classes = list(test.classes or meta.get("classes") or [])
    k = max(len(classes), int(res.targets.max()) + 1, int(res.predictions.max()) + 1)
    classes += [str(i) for i in range(len(classes), k)]
    cm = confusion_matrix(res.targets, res.predictions, k)
    print(f"model {meta['model_spec']['name']} from {args.checkpoint}")
    if folding is not None:
        print(folding)
    print(f"test accuracy {res.accuracy:.4f} ({int(cm.trace())}/{res.count})  "
          f"test loss {res.loss:.4f}")
    print(format_confusion_matrix(cm, classes or None))
    return 0


def _add_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="save a layer's outputs (CNN codes) for a dataset split",
                       description="Run a trained model (model.npz or checkpoint) in eval mode over a "
                                   "dataset split and save the flattened output of one layer, the "
                                   "labels and the layer name to an .npz (no pickle).")
    p.add_argument("checkpoint")
    p.add_argument("--layer", required=True,
                   help="dotted submodule name, e.g. classifier.2 (see `cnnlab summary MODEL`)")
    p.add_argument("--dataset", metavar="NAME",
                   help=f"{', '.join(DATASET_NAMES)}, folder:PATH or cifar10:PATH (default: the "
                        "dataset the model was trained on; others are resized to its input)")
    p.add_argument("--data-dir")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--relu", action="store_true", help="threshold the codes at zero")
    p.add_argument("--batch-size", type=positive_int, default=500)
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=cmd_features)


def cmd_features(args: argparse.Namespace) -> int:
    from cnnlab.training.features import extract_features, save_codes
    from cnnlab.training.run import evaluation_loader, load_for_evaluation

    check_writable_target(args.out, follow_symlinks=True)   # before the work: not a folder
    model, meta = load_for_evaluation(args.checkpoint)
    data, loader = evaluation_loader(meta, args.dataset, args.data_dir, args.batch_size, args.split)
    codes, labels = extract_features(model, args.layer, loader, relu=args.relu)
    save_codes(args.out, codes, labels, args.layer, source=str(args.checkpoint),
               dataset=args.dataset or meta["dataset"], split=args.split)
    print(f"{args.out}: {codes.shape[0]} codes of dimension {codes.shape[1]} from layer "
          f"{args.layer}{' (ReLU)' if args.relu else ''} of {meta['model_spec']['name']}")
    return 0


def _add_linear(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("linear", help="train a linear SVM/softmax classifier on saved codes",
                       description="Train a linear classifier (cnnlab.nn.Linear, SGD) on codes from "
                                   "`cnnlab features` and print train and test accuracy.")
    p.add_argument("train_codes", metavar="TRAIN_CODES.npz")
    p.add_argument("--test", required=True, metavar="TEST_CODES.npz")
    p.add_argument("--loss", choices=["svm", "softmax"], default="softmax")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--lr", type=finite_float, default=0.01)
    p.add_argument("--weight-decay", type=finite_float, default=1e-3)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_linear)


def cmd_linear(args: argparse.Namespace) -> int:
    from cnnlab.training.features import load_codes
    from cnnlab.training.linear import train_linear

    x_tr, y_tr, layer = load_codes(args.train_codes)
    x_te, y_te, layer_te = load_codes(args.test)
    if x_tr.shape[1] != x_te.shape[1]:
        raise ValueError(f"train codes have dimension {x_tr.shape[1]} ({layer}), test codes "
                         f"{x_te.shape[1]} ({layer_te})")
    with _quiet_arithmetic():
        clf = train_linear(x_tr, y_tr, loss=args.loss, epochs=args.epochs, lr=args.lr,
                           weight_decay=args.weight_decay, batch_size=args.batch_size, seed=args.seed,
                           num_classes=int(max(y_tr.max(), y_te.max())) + 1)
    print(f"linear {args.loss} on {x_tr.shape[1]}-d codes of {layer or '?'}: "
          f"{len(y_tr)} train / {len(y_te)} test")
    print(f"train accuracy {clf.score(x_tr, y_tr):.4f}")
    print(f"test accuracy {clf.score(x_te, y_te):.4f}")
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model names")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from cnnlab.models import list_models

    print("\n".join(list_models()))
    return 0


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer shapes, memory, parameters, MACs, receptive fields",
                       description="Print a model's per-layer table (see cnnlab.summary).")
    p.add_argument("model", help="a name from `cnnlab models`, or an .onnx file")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input size, e.g. 3x224x224 (default: the model's own, e.g. 3x227x227 "
                        "for alexnet_original, 1x32x32 for lenet5_1998; an .onnx file's own)")
    p.add_argument("--num-classes", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.set_defaults(func=cmd_summary)


def _parse_input(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"--input must look like CxHxW, e.g. 3x224x224, got {text!r}")
    return dims


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnlab.models import default_input_shape, get_model
    from cnnlab.summary import format_summary, grouped_warnings, summary

    if args.model.lower().endswith(".onnx"):
        model, size = _onnx_for_summary(args)
    else:
        size = _parse_input(args.input) if args.input else default_input_shape(args.model)
    values = math.prod(size) * args.batch_size
    if values > 1 << 28:    # checked before any array is made
        raise ValueError(f"--input {'x'.join(map(str, size))} with --batch-size {args.batch_size} is "
                         f"{values:,} input values; at most {1 << 28:,}")
    if not args.model.lower().endswith(".onnx"):
        kwargs = {"in_channels": size[0], "input_size": size[1]}
        if args.num_classes is not None:
            kwargs["num_classes"] = args.num_classes
        model = get_model(args.model, **kwargs)
    print(f"{args.model} on {'x'.join(map(str, size))}, batch {args.batch_size}")
    s = summary(model, size, batch_size=args.batch_size, verbose=False)
    print(format_summary(s, warnings=False))
    for w in grouped_warnings(s.warnings):
        print(f"cnnlab summary: warning: {w}", file=sys.stderr)
    return 0


def _onnx_for_summary(args: argparse.Namespace):
    """The imported model of ``args.model`` and its own input size (--input must agree)."""
    model = _onnx().load(args.model)
    size = tuple(model.input_size)
    if args.input is not None and _parse_input(args.input) != size:
        raise ValueError(f"{args.model} takes inputs of {'x'.join(map(str, size))}, "
                         f"not --input {args.input}")
    if args.num_classes is not None:
        raise ValueError(f"--num-classes does not apply to {args.model}: its classes are fixed")
    return model, size


def _onnx():
    """cnnlab.onnx, after checking that the onnx package is installed."""
    try:
        import onnx  # noqa: F401 - fail here, clearly, without the extra
    except ImportError as e:
        raise ValueError(f"ONNX files need the onnx extra: pip install 'cnnlab[onnx]' ({e})") from e
    import cnnlab.onnx

    return cnnlab.onnx


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model as ONNX, for onnxruntime, Netron and other frameworks",
                       description="Export a trained run, a model file or an untrained zoo model as "
                                   "ONNX: float32, eval mode, any batch size, checked by onnx.checker. "
                                   "A run's dataset, classes and normalisation go into the file's "
                                   "metadata, so `cnnlab evaluate model.onnx` works as on the run.")
    p.add_argument("target", metavar="RUN | model.npz | MODEL_NAME",
                   help="a run folder, a model file or checkpoint, or a zoo model name (untrained)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="file format (default onnx)")
    p.add_argument("--output", "-o", required=True, metavar="model.onnx", help="the file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 to 17 (default 17)")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input size (default: the run's; a zoo model's usual input)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    co = _onnx()
    from cnnlab.onnx.graph import MAX_OPSET, MIN_OPSET
    from cnnlab.onnx.meta import export_metadata
    from cnnlab.viz.inputs import open_model

    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise ValueError(f"--opset must be from {MIN_OPSET} to {MAX_OPSET}, got {args.opset}")

    model, meta, source, _ = open_model(args.target)
    kwargs = meta["model_spec"]["kwargs"]
    size = (int(kwargs["in_channels"]), int(kwargs["input_size"]), int(kwargs["input_size"]))
    if args.input is not None:
        size = _parse_input(args.input)
    if meta.get("untrained") and (size[0], size[1]) != (kwargs["in_channels"], kwargs["input_size"]):
        from cnnlab.models import get_model  # a zoo model is built for its input size

        model = get_model(meta["model_spec"]["name"], num_classes=kwargs["num_classes"],
                          in_channels=size[0], input_size=size[1]).eval()
    meta_props = {} if meta.get("untrained") else export_metadata(meta)
    try:
        path = co.export(model, args.output, size, opset=args.opset, metadata=meta_props)
    except co.ExportError as e:
        print(f"cnnlab export: {source} cannot be exported: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size:,} bytes, opset {args.opset}, input "
          f"Nx{'x'.join(map(str, size))}) from {source}")
    return 0


def _add_explore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="an interactive page: draw a digit, watch every layer respond",
                       description="Serve an interactive page on a model: draw, upload or pick an "
                                   "image and see every layer's output and any unit's arithmetic. "
                                   "With no TARGET, trains the default digits model first (a few "
                                   "seconds; kept in runs/explore-digits for next time).")
    p.add_argument("target", nargs="?", metavar="RUN | model.npz | MODEL_NAME",
                   help="a run folder, a model file or checkpoint, or a zoo model name (untrained)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs the printed token)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=cmd_explore)


def cmd_explore(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401 - fail here, clearly, without the extra
        import uvicorn  # noqa: F401

        from cnnlab.explore.server import serve
        from cnnlab.explore.session import Explorer
    except ImportError as e:
        raise ValueError(f"cnnlab explore needs the explore extra: pip install 'cnnlab[explore]' "
                         f"({e})") from e
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in [1, 65535], got {args.port}")
    target = args.target
    if target is None:
        from cnnlab.training.run import fit

        target = Path("runs/explore-digits")
        if (target / "model.npz").is_file():
            print(f"cnnlab explore: using the digits model trained before in {target}")
        else:
            print(f"cnnlab explore: training the default digits model into {target} (a few seconds)")
            # the dataset's own schedule (30 epochs, a few seconds): after 10 epochs a 7 drawn
            # in the page was still read as a 3
            fit(TrainConfig(dataset="digits"), target, progress=False)
        target = str(target)
    explorer = Explorer.open(target)
    if explorer.in_progress:
        print(f"cnnlab explore: {explorer.run_dir} has no model.npz yet; showing its newest checkpoint "
              "and following the run as it trains")
    serve(explorer, host=args.host, port=args.port)
    return 0


def _in_flags(e: Exception) -> str:
    """The message of ``e``, with the config fields a ConfigError names as their flags."""
    text = str(e)
    for name in e.options if isinstance(e, ConfigError) else ():
        text = re.sub(rf"(?<![\w-]){name}(?![\w-])", _flag(name), text)
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Train, inspect and visualise convolutional networks written from scratch on NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_features(sub)
    _add_linear(sub)
    _add_models(sub)
    _add_summary(sub)
    _add_export(sub)
    from cnnlab.viz.cli import add_viz_commands  # viz and report: loaded lazily, above training
    add_viz_commands(sub)
    _add_explore(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_memory()   # the command owns its process: let glibc keep a step's freed arrays for reuse
    try:
        return args.func(args)
    except (CheckpointError, IDXFormatError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"cnnlab {args.command}: error: {_in_flags(e)}", file=sys.stderr)
        return 2
    except OSError as e:   # the machine's refusal (disk full, read-only, permissions), not a bug
        where = f"{e.filename}: " if e.filename else ""
        print(f"cnnlab {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"cnnlab {args.command}: error: out of memory; use smaller inputs or batches",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = ("; completed epochs are checkpointed (continue with --resume)"
                if args.command == "train" else "")
        print(f"\ncnnlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
