"""The ``cnnlab`` command line: ``cnnlab train | evaluate | models | summary``.

Run ``cnnlab COMMAND --help`` for the options of each.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnlab.data.idx import IDXFormatError
from cnnlab.serialization import CheckpointError


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train a model. Unset options take the dataset's defaults "
                    "(digits: 30 epochs, batch 32, lr 0.02; fashion-mnist/mnist: 10 epochs, "
                    "batch 64, lr 0.02; SGD with momentum 0.9 and a cosine schedule).")
    p.add_argument("--model", help="model name (see `cnnlab models`); default: digits_cnn for "
                   "digits, lenet5 otherwise")
    p.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist", "mnist"],
                   help="digits ships with scikit-learn; fashion-mnist is read from "
                        "/usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)")
    p.add_argument("--data-dir", help="folder holding the four IDX files (fashion-mnist, mnist)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--scheduler", choices=["none", "step", "cosine"],
                   help="learning-rate schedule over the epochs (default: cosine)")
    p.add_argument("--step-size", type=int, default=5, help="StepLR period in epochs")
    p.add_argument("--gamma", type=float, default=0.1, help="StepLR factor")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-normalize", action="store_true",
                   help="feed raw [0, 1] pixels instead of standardising with the dataset's "
                        "mean and std")
    p.add_argument("--out", help="run folder (default: runs/<dataset>-<model>, numbered if taken)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue the run in --out from its newest checkpoint (or from "
                        "CHECKPOINT); --epochs may extend it unless its schedule is cosine")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar (default: only on a terminal)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from cnnlab.training.run import TrainConfig, default_out_dir, fit

    cfg = TrainConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      momentum=args.momentum, nesterov=args.nesterov,
                      weight_decay=args.weight_decay, optimizer=args.optimizer,
                      scheduler=args.scheduler, step_size=args.step_size, gamma=args.gamma,
                      seed=args.seed, normalize=not args.no_normalize)
    resume_path = args.resume if isinstance(args.resume, str) else None   # --resume CKPT
    if args.resume is True and not args.out:
        raise SystemExit("cnnlab train: --resume needs --out RUN_FOLDER (or a checkpoint path)")
    if args.out:
        out = Path(args.out)
    elif resume_path:   # RUN/checkpoints/epoch-NNN.npz -> RUN
        out = Path(resume_path).resolve().parent.parent
    else:
        out = default_out_dir(cfg.resolved())
    fit(cfg, out, resume=args.resume, progress=args.progress)
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a checkpoint",
                       description="Evaluate a model.npz or checkpoint written by `cnnlab train` "
                                   "on its dataset's test split.")
    p.add_argument("checkpoint")
    p.add_argument("--dataset", choices=["digits", "fashion-mnist", "mnist"],
                   help="default: the dataset the model was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=500)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.training.loop import confusion_matrix, evaluate, format_confusion_matrix
    from cnnlab.training.run import evaluation_loader, load_for_evaluation

    model, meta = load_for_evaluation(args.checkpoint)
    test, loader = evaluation_loader(meta, args.dataset, args.data_dir, args.batch_size)
    res = evaluate(model, loader)
    classes = list(test.classes or meta.get("classes") or [])
    cm = confusion_matrix(res.targets, res.predictions, len(classes) or int(res.targets.max()) + 1)
    print(f"model {meta['model_spec']['name']} from {args.checkpoint}")
    print(f"test accuracy {res.accuracy:.4f} ({int(cm.trace())}/{res.count})  "
          f"test loss {res.loss:.4f}")
    print(format_confusion_matrix(cm, classes or None))
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
    p.add_argument("model", help="a name from `cnnlab models`")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input size, e.g. 3x224x224 (default: 1x28x28, or 1x8x8 for digits_cnn)")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=1)
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
    from cnnlab.models import get_model
    from cnnlab.summary import summary

    default = "1x8x8" if args.model.replace("-", "_") == "digits_cnn" else "1x28x28"
    C, H, W = _parse_input(args.input or default)
    kwargs = {"in_channels": C, "input_size": H}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = get_model(args.model, **kwargs)
    print(f"{args.model} on {C}x{H}x{W}, batch {args.batch_size}")
    summary(model, (C, H, W), batch_size=args.batch_size)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_models(sub)
    _add_summary(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, IDXFormatError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"cnnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ncnnlab {args.command}: interrupted; completed epochs are checkpointed "
              "(continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
