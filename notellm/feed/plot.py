"""The relevance–diversity frontier of a feed evaluation as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from notellm.feed.evaluate import FeedEvalResult

STYLE = {
    "none": ("black", "*"),
    "mmr": ("tab:blue", "o"),
    "dpp": ("tab:orange", "s"),
    "dpp_window": ("tab:brown", "v"),
    "ssd": ("tab:green", "^"),
    "ssd_star": ("tab:red", "D"),
}


def plot_frontier(result: FeedEvalResult, path: str | Path, x: str | None = None) -> Path:
    """Plot ILAD and windowed ILMD against relevance kept, one line per method (its parameter sweep).

    Args:
        result: output of `evaluate_feeds`.
        path: PNG path to write (parent created).
        x: relevance axis, "score_ratio" or "ndcg" (default: the config's `match_on`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frontier = result.frontier
    x = x or result.config.match_on
    window = result.config.metric_window
    panels = [("ilad", "ILAD (whole feed)"), (f"ilmd@w{window}", f"ILMD, mean over windows of {window}")]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 4.2))
    for ax, (metric, title) in zip(axes, panels):
        for method, part in frontier.groupby("method", sort=False):
            color, marker = STYLE.get(method, ("gray", "x"))
            part = part.sort_values(x)
            ax.plot(
                part[x],
                part[metric],
                marker=marker,
                color=color,
                label=method,
                ms=5 if method != "none" else 12,
                lw=1.2,
            )
        if x == result.config.match_on:
            ax.axvline(result.config.match_relevance, color="gray", ls=":", lw=1)
        ax.set_xlabel({"score_ratio": "relevance kept (score sum / top-T)", "ndcg": "NDCG vs un-reranked"}[x])
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Relevance–diversity frontier {result.label} ({result.n_users} users, T={result.config.feed_size}, "
        f"N={result.config.n_candidates})",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
