"""NoteLLM training: GCL + CSFT losses, the resumable multi-process recipe, and its config.

from notellm.train import load_train_config, train
result = train(load_train_config("notellm/configs/smollm2_135m.yaml", ["train.data_dir=/tmp/se-data"]))
"""

from __future__ import annotations

from notellm.train.config import TrainArgs, TrainConfig, load_train_config
from notellm.train.loop import TrainResult, train
from notellm.train.losses import LossOutput, gcl_loss, notellm_loss

__all__ = [
    "LossOutput",
    "TrainArgs",
    "TrainConfig",
    "TrainResult",
    "gcl_loss",
    "load_train_config",
    "notellm_loss",
    "train",
]
