"""Training: the loop, checkpoints, and whole runs (used by the CLI)."""
from cnnlab.training.checkpoint import (
    TrainingState,
    load_training_state,
    save_model,
    save_training_state,
)
from cnnlab.training.loop import (
    EpochResult,
    confusion_matrix,
    evaluate,
    format_confusion_matrix,
    train_one_epoch,
)
from cnnlab.training.run import RunResult, TrainConfig, fit, load_for_evaluation

__all__ = ["EpochResult", "RunResult", "TrainConfig", "TrainingState", "confusion_matrix",
           "evaluate", "fit", "format_confusion_matrix", "load_for_evaluation",
           "load_training_state", "save_model", "save_training_state", "train_one_epoch"]
