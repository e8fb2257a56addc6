"""Co-occurrence pair mining (docs/method.md §1): s(A→B) = Σ_users 1/N_u, bounds [l, u], top t per source note.

For every user u whose log holds an A-then-B event (B among the next `window` interactions after A, and/or at most
`max_gap` later), s(A→B) gains 1/N_u, where N_u is the number of DISTINCT notes u engaged with in the (action-
filtered) log; this down-weights users who engage with everything. Choices, stated once:
- A (user, A, B) triple counts at most once per user, however often it repeats: one user re-reading the same two
  notes is one vote, as the paper's "users whose behaviour contains the A→B event" reads.
- "Then" = strictly later in the user's log ordered by (timestamp, original row order); events with equal
  timestamps keep their file order. The window counts interactions (events), repeats of a note included.
- Default window 10, no time gap: about one browsing session on a feed, so B was plausibly reached from A; on logs
  spanning years (Stack Exchange) add `max_gap` (e.g. "7d") so that "then" stays short-term.
- Self pairs (A = B) never count. Directional by default (the paper is: s(A→B) ≠ s(B→A)); `symmetric` counts a user
  once per unordered {A, B} and gives both directions that score.
- `use_weights`: the contribution becomes weight(B event) / N_u (the largest weight when a triple repeats).
- Scores are rounded to 9 decimals before filtering and ranking, so sums taken in different orders (chunking)
  give identical results; the bounds are inclusive (l ≤ s ≤ u) after that rounding.
- Top t per source note by score; ties broken by note id (ascending), since note codes follow sorted note ids.
- `balance_per_combination` keeps at most that many pairs per (category_a, category_b) combination, chosen at
  random with `seed` (paper: "a fixed number of pairs per category combination"), after the top-t cut.
- `max_events_per_user` (off by default) keeps each user's first events only (a crawler or bot must not dominate
  the scores or, on Spark, stall one partition); N_u is counted on what is kept and the manifest counts the rest.
This module is the pandas engine and the reference: DuckDB and Spark (mining_engine.py, mining_sql.py) give the
same pairs, scores and counts, and share `finish_pairs` (order, balancing) with it.
Vectorised: events sorted by (user, time); for offset k = 1..w the successor of event i is event i+k (a shifted
array), kept while it belongs to the same user (and within the gap). Users are processed in chunks of about
`chunk_events` events so memory stays bounded; partial sums are merged with a groupby on int64 pair codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from tqdm.auto import tqdm

from notellm.data import schema as S

SCORE_DECIMALS = 9


@dataclass
class MiningConfig:
    """Parameters of co-occurrence pair mining (defaults = paper §3 where it gives them)."""

    window: int | None = 10
    """B must be among the next `window` interactions of the user after A (None: no count limit)."""
    max_gap: str | None = None
    """B must come at most this long after A, as a pandas Timedelta string: "7d", "12h", "30min" (None: no limit)."""
    lower: float = 0.01
    """l: drop pairs scoring below this (paper 0.01)."""
    upper: float = 30.0
    """u: drop pairs scoring above this (paper 30): extremely popular co-occurrences."""
    top_t: int = 10
    """t: keep at most this many pairs per source note, best first (paper 10)."""
    actions: list[str] | None = None
    """Only events with these actions count (None: all actions)."""
    use_weights: bool = False
    """Multiply each contribution by the B event's `weight` column."""
    symmetric: bool = False
    """Score unordered {A, B} co-occurrence and emit both directions (the paper is directional)."""
    balance_per_combination: int | None = None
    """Keep at most this many pairs per (category_a, category_b) combination, drawn with `seed` (None: no cap)."""
    balance_level: int | None = None
    """Category levels used for balancing combinations (1: `beer` of `beer/hops`; None: the full category)."""
    seed: int = 0
    """Seed for the balancing draw."""
    chunk_events: int = 1_000_000
    """Events per processing chunk (whole users per chunk); bounds peak memory."""
    max_events_per_user: int | None = None
    """Keep only each user's first this-many events (by time, then file order) after the action and note filters,
    so one crawler or bot with millions of events cannot dominate a partition (None: no cap, the paper's rule).
    N_u is counted on the kept events; the manifest counts what the cap dropped."""

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None, got {self.window}")
        if self.window is None and self.max_gap is None:
            raise ValueError("set window and/or max_gap: with neither, every pair in a user's log would count")
        self.max_gap_ns()  # validates the string
        if self.lower < 0 or self.upper < self.lower:
            raise ValueError(f"need 0 <= lower <= upper, got lower={self.lower}, upper={self.upper}")
        if self.top_t < 1:
            raise ValueError(f"top_t must be >= 1, got {self.top_t}")
        if self.balance_per_combination is not None and self.balance_per_combination < 1:
            raise ValueError(f"balance_per_combination must be >= 1 or None, got {self.balance_per_combination}")
        if self.balance_level is not None and self.balance_level < 1:
            raise ValueError(f"balance_level must be >= 1 or None, got {self.balance_level}")
        if self.chunk_events < 1:
            raise ValueError(f"chunk_events must be >= 1, got {self.chunk_events}")
        if self.max_events_per_user is not None and self.max_events_per_user < 2:
            raise ValueError(f"max_events_per_user must be >= 2 (a pair needs two events) or None, "
                             f"got {self.max_events_per_user}")
        if self.actions is not None and not self.actions:
            raise ValueError("actions must be None (all) or a non-empty list")

    def max_gap_ns(self) -> int | None:
        """`max_gap` in nanoseconds (None when unset)."""
        if self.max_gap is None:
            return None
        try:
            gap = pd.Timedelta(re.sub(r"(?<=\d)\s*d\b", "D", self.max_gap))  # pandas deprecates "7d" for "7D"
        except ValueError as exc:
            raise ValueError(f"max_gap {self.max_gap!r} is not a duration like '7d', '12h' or '30min'") from exc
        if gap <= pd.Timedelta(0):
            raise ValueError(f"max_gap must be positive, got {self.max_gap!r}")
        return int(gap.value)


@dataclass
class _Log:
    """Events sorted by (user, time, row), as integer codes."""

    user: np.ndarray  # (E,) int64 user code
    note: np.ndarray  # (E,) int64 note code = rank of the note id among sorted ids
    time: np.ndarray  # (E,) int64 ns
    weight: np.ndarray | None  # (E,) float64 or None
    inv_n: np.ndarray  # (U,) float64, 1 / N_u
    stats: dict[str, Any] = field(default_factory=dict)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int64 array by sort + compare (numpy's hash-based unique is slower here)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _prepare_log(events: pd.DataFrame, note_ids: pd.Index, cfg: MiningConfig) -> _Log:
    stats: dict[str, Any] = {"events_in": len(events)}
    if cfg.actions is not None:
        keep = events[S.ACTION].isin(cfg.actions).to_numpy() if S.ACTION in events else np.zeros(len(events), bool)
        stats["events_other_action"] = int((~keep).sum())
        events = events.loc[keep]
    codes, uniques = pd.factorize(events[S.NOTE_ID])  # look up each distinct id once, not every event
    note = note_ids.get_indexer(uniques).astype(np.int64)[codes]  # (E,) -1 for unknown notes
    known = note >= 0
    stats["events_unknown_note"] = int((~known).sum())
    user = pd.factorize(events[S.USER_ID])[0].astype(np.int64)[known]  # (E',) order of first appearance
    note = note[known]
    time = pd.to_datetime(events[S.TIMESTAMP], utc=True).dt.as_unit("ns").array.asi8[known]  # (E',) ns
    weight = events[S.WEIGHT].to_numpy(dtype=np.float64)[known] if cfg.use_weights else None
    order = np.lexsort((time, user))  # by user, then time; lexsort is stable, so ties keep file order
    user, note, time = user[order], note[order], time[order]
    weight = None if weight is None else weight[order]
    if cfg.max_events_per_user is not None:
        user, note, time, weight = _cap_per_user(user, note, time, weight, cfg.max_events_per_user, stats)
    n_users = int(user.max()) + 1 if len(user) else 0
    if n_users and n_users > np.iinfo(np.int64).max // max(len(note_ids), 1):
        raise ValueError("too many users x notes for int64 pair codes")
    distinct = _sorted_unique(user * len(note_ids) + note)  # (user, note) pairs
    n_per_user = np.bincount(distinct // len(note_ids), minlength=n_users)  # N_u
    inv_n = 1.0 / np.maximum(n_per_user, 1)
    stats.update(events_used=len(user), users=int((n_per_user > 0).sum()))
    return _Log(user, note, time, weight, inv_n, stats)


def _cap_per_user(user: np.ndarray, note: np.ndarray, time: np.ndarray, weight: np.ndarray | None, cap: int,
                  stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Keep each user's first `cap` events of the (user, time, row)-sorted log; count what was dropped."""
    run_first = np.r_[0, np.flatnonzero(np.diff(user)) + 1] if len(user) else np.empty(0, np.int64)
    run_len = np.diff(np.r_[run_first, len(user)])
    keep = np.arange(len(user)) - np.repeat(run_first, run_len) < cap  # (E,) rank within the user's run
    stats.update(events_over_user_cap=int((~keep).sum()), users_capped=int((run_len > cap).sum()))
    return user[keep], note[keep], time[keep], None if weight is None else weight[keep]


def _chunk_bounds(user: np.ndarray, chunk_events: int) -> list[tuple[int, int]]:
    """[start, end) ranges of about chunk_events events that never split a user."""
    bounds, start, n = [], 0, len(user)
    while start < n:
        end = min(start + chunk_events, n)
        if end < n:  # move end forward to the next user boundary
            end = int(np.searchsorted(user, user[end - 1], side="right"))
        bounds.append((start, end))
        start = end
    return bounds


def _chunk_matrix(log: _Log, start: int, end: int, cfg: MiningConfig, n_notes: int) -> sparse.csr_matrix:
    """One chunk's deduplicated per-user contributions, summed into an (n_notes, n_notes) sparse matrix."""
    user, note, time = log.user[start:end], log.note[start:end], log.time[start:end]  # views, (C,)
    weight = None if log.weight is None else log.weight[start:end]
    gap = cfg.max_gap_ns()
    nn = np.int64(n_notes)
    run_first = np.r_[0, np.flatnonzero(np.diff(user)) + 1]  # each user's first event in the chunk
    run_len = np.diff(np.r_[run_first, len(user)])
    # Per alive source event i: the end of its user's run, its note and its (local user, A) code prefix.
    src = np.arange(len(user), dtype=np.int64)
    limit = np.repeat(run_first + run_len, run_len)  # (C,) successors must stay below this position
    u_local = np.repeat(np.arange(len(run_first), dtype=np.int64), run_len)  # (C,)
    prefix = (u_local * nn + note) * nn  # (C,) code of (local user, A, B=0)
    codes, weights = [], []
    k = 0
    while src.size and (cfg.window is None or k < cfg.window):
        k += 1
        alive = src + k < limit  # the k-th successor is still the same user's event
        if gap is not None:
            alive &= time[np.minimum(src + k, len(user) - 1)] - time[src] <= gap  # sorted: later k only later
        src, limit, prefix = src[alive], limit[alive], prefix[alive]
        b = note[src + k]  # (M,) note of the k-th successor
        distinct = b != note[src]  # no self pairs
        if cfg.symmetric:
            a = note[src[distinct]]
            lo, hi = np.minimum(a, b[distinct]), np.maximum(a, b[distinct])
            codes.append(prefix[distinct] - a * nn + lo * nn + hi)
        else:
            codes.append(prefix[distinct] + b[distinct])
        if weight is not None:
            weights.append(weight[src[distinct] + k])
    code = np.concatenate(codes) if codes else np.empty(0, np.int64)  # (P,) (local user, A, B) codes
    if weight is None:
        code = _sorted_unique(code)  # one vote per (user, A, B)
        w = np.ones(len(code))
    else:
        order = np.argsort(code, kind="stable")
        code_sorted = code[order]
        first = np.r_[0, np.flatnonzero(np.diff(code_sorted)) + 1] if len(code) else np.empty(0, np.int64)
        w = np.maximum.reduceat(np.concatenate(weights)[order], first) if len(code) else np.empty(0)  # largest
        code = code_sorted[first]
    pair = code % (nn * nn)
    u_code = user[run_first[code // (nn * nn)]] if len(code) else np.empty(0, np.int64)
    w = w * log.inv_n[u_code]  # (P',) weight / N_u
    # COO -> CSR sums the duplicate (A, B) entries of different users (a counting sort by row, in C).
    return sparse.csr_matrix((w, (pair // n_notes, pair % n_notes)), shape=(n_notes, n_notes))


def _check_code_space(log: _Log, bounds: list[tuple[int, int]], n_notes: int) -> None:
    """(local user, A, B) codes must fit in int64; shrink `chunk_events` otherwise."""
    limit = np.iinfo(np.int64).max // max(n_notes, 1) ** 2
    for start, end in bounds:
        users_in_chunk = int(log.user[end - 1] - log.user[start]) + 1
        if users_in_chunk > limit:
            raise ValueError(
                f"chunk of {users_in_chunk:,} users x {n_notes:,} notes overflows int64 pair codes; "
                f"lower chunk_events (now {end - start:,} events in this chunk)"
            )


def _top_t(row: np.ndarray, score: np.ndarray, t: int) -> np.ndarray:
    """Positions of the top-t entries per row (score desc, then column = note id asc), in (row, rank) order.

    Expects entries in canonical CSR order (rows ascending, columns ascending within a row) and scores rounded to
    SCORE_DECIMALS. One stable argsort on the int64 key (row, -score) then keeps column order among equal scores.
    """
    q = np.rint(score * 10**SCORE_DECIMALS).astype(np.int64)  # exact: scores are already rounded
    q_max = int(q.max()) if len(q) else 0
    if len(row) and int(row.max()) < np.iinfo(np.int64).max // (q_max + 1) - 1:
        order = np.argsort(row.astype(np.int64) * (q_max + 1) + (q_max - q), kind="stable")
    else:  # key would overflow (huge `upper`): sort by two keys instead
        order = np.lexsort((-q, row))
    row_sorted = row[order]
    run = np.r_[0, np.flatnonzero(np.diff(row_sorted)) + 1]  # first entry of each row
    rank = np.arange(len(order)) - np.repeat(run, np.diff(np.r_[run, len(order)]))  # rank within its row
    return order[rank < t]


def _balance(a: np.ndarray, b: np.ndarray, categories: np.ndarray, cfg: MiningConfig) -> np.ndarray:
    """Indices kept when capping pairs per (category_a, category_b) combination; a seeded random choice."""
    if cfg.balance_level is not None:
        categories = np.array(
            [S.CATEGORY_SEPARATOR.join(c.split(S.CATEGORY_SEPARATOR)[: cfg.balance_level]) for c in categories],
            dtype=object,
        )
    cat_code, uniques = pd.factorize(categories, sort=True)
    combo = cat_code[a].astype(np.int64) * len(uniques) + cat_code[b]
    priority = np.random.default_rng(cfg.seed).random(len(a))
    order = np.lexsort((priority, combo))
    combo_sorted = combo[order]
    first = np.r_[0, np.flatnonzero(np.diff(combo_sorted)) + 1]
    run_start = np.repeat(first, np.diff(np.r_[first, len(combo_sorted)]))
    keep = order[(np.arange(len(order)) - run_start) < cfg.balance_per_combination]
    return np.sort(keep)


def top_pairs_pandas(
    events_df: pd.DataFrame, note_ids: pd.Index, cfg: MiningConfig, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The in-memory engine: scored, bounded, top-t pairs as (a codes, b codes, scores, stats) before balancing.

    `note_ids` must be sorted; codes are positions in it. Pairs come in (a, score desc, b) order.
    """
    n_notes = len(note_ids)
    log = _prepare_log(events_df, note_ids, cfg)
    stats = dict(log.stats)
    bounds = _chunk_bounds(log.user, cfg.chunk_events)
    _check_code_space(log, bounds, n_notes)
    total = sparse.csr_matrix((n_notes, n_notes), dtype=np.float64)
    for start, end in tqdm(bounds, desc="mining", unit=" chunk", disable=not progress):
        total = total + _chunk_matrix(log, start, end, cfg, n_notes)
    if cfg.symmetric:
        total = total + total.T.tocsr()  # entries sit at (min, max); mirror them onto (max, min)
    total.sum_duplicates()  # canonical CSR: rows ascending, columns ascending within a row
    cols = total.indices  # (nnz,) int32 while n_notes < 2**31: half the memory of int64
    rows = np.repeat(np.arange(n_notes, dtype=cols.dtype), np.diff(total.indptr))  # (nnz,)
    score = np.round(total.data, SCORE_DECIMALS)  # (nnz,)
    del total
    stats["candidate_pairs"] = len(score)
    below, above = score < cfg.lower, score > cfg.upper
    stats.update(below_lower=int(below.sum()), above_upper=int(above.sum()))
    inside = ~below & ~above
    rows, cols, score = rows[inside], cols[inside], score[inside]
    top = _top_t(rows, score, cfg.top_t)
    stats["cut_by_top_t"] = len(score) - len(top)
    return rows[top], cols[top], score[top], stats


def sorted_note_ids(notes_df: pd.DataFrame) -> pd.Index:
    """Distinct note ids as strings, sorted: a note's code is its position here (ties in top t go by this order)."""
    return pd.Index(notes_df[S.NOTE_ID].astype("str").unique()).sort_values()


def finish_pairs(
    a: np.ndarray, b: np.ndarray, score: np.ndarray, notes_df: pd.DataFrame, note_ids: pd.Index,
    cfg: MiningConfig, stats: dict[str, Any]
) -> pd.DataFrame:
    """Engine-independent last step: canonical order (a, score desc, b), category balancing, the pairs frame.

    Every engine ends here, so the seeded balancing draw sees the same pairs in the same order.
    """
    order = np.lexsort((b, -score, a))
    a, b, score = a[order], b[order], score[order]
    if cfg.balance_per_combination is not None:
        category = notes_df.set_index(notes_df[S.NOTE_ID].astype(str))[S.CATEGORY].groupby(level=0).first()
        kept = _balance(a, b, category.reindex(note_ids).fillna("").to_numpy(dtype=object), cfg)
        stats["cut_by_balance"] = len(a) - len(kept)
        a, b, score = a[kept], b[kept], score[kept]
    pairs = pd.DataFrame(
        {
            S.NOTE_ID_A: note_ids.take(a),
            S.NOTE_ID_B: note_ids.take(b),
            S.SCORE: score.astype(np.float64),
        }
    )
    stats["pairs"] = len(pairs)
    stats["source_notes"] = int(pairs[S.NOTE_ID_A].nunique())
    return pairs


def mine_pairs_with_stats(
    events_df: pd.DataFrame, notes_df: pd.DataFrame, cfg: MiningConfig, progress: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`mine_pairs`, also returning counts of what each step kept and dropped (for the manifest)."""
    note_ids = sorted_note_ids(notes_df)
    a, b, score, stats = top_pairs_pandas(events_df, note_ids, cfg, progress=progress)
    return finish_pairs(a, b, score, notes_df, note_ids, cfg, stats), stats


def mine_pairs(events_df: pd.DataFrame, notes_df: pd.DataFrame, cfg: MiningConfig) -> pd.DataFrame:
    """Mine related-note pairs from a behaviour log (docs/method.md §1; the choices are in the module docstring).

    Args:
        events_df: user_id, note_id, timestamp [, action, weight]; events on notes absent from `notes_df` are
            ignored (and counted by `mine_pairs_with_stats`).
        notes_df: note_id [, category when balancing].
        cfg: mining parameters.

    Returns:
        note_id_a, note_id_b, score: sorted by note_id_a, then score descending, then note_id_b.
    """
    return mine_pairs_with_stats(events_df, notes_df, cfg)[0]
