"""Feed evaluation: held-out users, neighbour candidates, re-rankers compared at matched relevance."""

from __future__ import annotations

from notellm.feed.evaluate import FeedConfig, FeedEvalResult, evaluate_feeds
from notellm.feed.plot import plot_frontier
from notellm.feed.users import UserSplit, candidates_for, split_users

__all__ = [
    "FeedConfig",
    "FeedEvalResult",
    "UserSplit",
    "candidates_for",
    "evaluate_feeds",
    "plot_frontier",
    "split_users",
]
