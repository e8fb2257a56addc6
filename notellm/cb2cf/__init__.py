"""CB2CF: content features → collaborative similarity space (twin tower, ItemCF pairs, BCE on (1 + cos) / 2)."""

from __future__ import annotations

from notellm.cb2cf.coldstart import ColdStartResult, co_engaged, evaluate_cold_start, retrieval_metrics
from notellm.cb2cf.itemcf import itemcf_pairs
from notellm.cb2cf.model import CB2CF, CB2CFConfig
from notellm.cb2cf.train import TrainLog, fit_from_events, pair_loss, train_cb2cf

__all__ = [
    "CB2CF",
    "CB2CFConfig",
    "ColdStartResult",
    "TrainLog",
    "co_engaged",
    "evaluate_cold_start",
    "fit_from_events",
    "itemcf_pairs",
    "pair_loss",
    "retrieval_metrics",
    "train_cb2cf",
]
