"""Plots for the report, drawn from the metrics JSON (nothing is computed here but the drawing).

Each function returns PNG bytes, so the Markdown report can write them next to itself and the HTML report can embed
them as base64 `data:` URIs. matplotlib's non-interactive Agg backend is used: no display needed.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from notellm.evaluation.results import RetrievalTable


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def recall_curve_png(table: RetrievalTable, rule: str = "paper") -> bytes | None:
    """Recall@K against K (log x axis), one line per method with its bootstrap interval as a band."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = 0
    for name, per_rule in table.methods.items():
        result = per_rule.get(rule)
        if not result:
            continue
        ks = result.ks
        est = [result.metrics[f"recall@{k}"] for k in ks]
        (line,) = ax.plot(ks, [100 * e.value for e in est], marker="o", label=name)
        ax.fill_between(ks, [100 * e.lo for e in est], [100 * e.hi for e in est], color=line.get_color(), alpha=0.15,
                        linewidth=0)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K (%)")
    level = 100 * table.bootstrap.level
    ax.set_title(f"I2I Recall@K ({rule} rule; bands: {level:.0f}% bootstrap intervals)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def loss_curve_png(training: dict) -> bytes | None:
    """Training loss against step for every training run that logged a curve (plus GCL/CSFT parts if present)."""
    runs = {name: run for name, run in training.items() if run.get("curve")}
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, run in runs.items():
        steps = [row["step"] for row in run["curve"]]
        ax.plot(steps, [row["loss"] for row in run["curve"]], label=f"{name}: loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
