"""Training: the loop, checkpoints, and whole runs (used by the CLI)."""
from cnnlab.training.checkpoint import (
    TrainingState,
    load_training_state,
    save_model,
    save_training_state,
)
from cnnlab.training.features import extract_features, load_codes, save_codes
from cnnlab.training.linear import LinearClassifier, train_linear
from cnnlab.training.loop import (
    EpochResult,
    confusion_matrix,
    evaluate,
    format_confusion_matrix,
    train_one_epoch,
)
from cnnlab.training.run import RunResult, TrainConfig, fit, load_for_evaluation
from cnnlab.training.tta import evaluate_tta, predict_tta

__all__ = ["EpochResult", "LinearClassifier", "RunResult", "TrainConfig", "TrainingState",
           "confusion_matrix", "evaluate", "evaluate_tta", "extract_features", "fit",
           "format_confusion_matrix", "load_codes", "load_for_evaluation", "load_training_state",
           "predict_tta", "save_codes", "save_model", "save_training_state", "train_linear",
           "train_one_epoch"]
