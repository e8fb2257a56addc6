"""The pair-mining rule as SQL window functions, shared by the DuckDB and Spark engines (no quadratic self-join).

Input: a view `raw` (u, note STRING, ts BIGINT ns, rid_file STRING, rid BIGINT, action STRING, w DOUBLE) and a
view `known_notes` (note, code): code = the note's rank among the sorted note ids, so integer codes order exactly as
the ids do and joins and aggregations hash integers, not strings. Steps, mirroring mining.py exactly:
1. keep the configured actions and the known notes; number each user's events `pos` = 0, 1, ... by
   (ts, rid_file, rid), the file order the pandas engine keeps for equal timestamps; drop pos >= the per-user cap;
2. kmax = how many successors an event may pair with: min(window, events left), and with a max gap the last
   position within the gap (a RANGE window over ts);
3. explode k = 1..kmax and equi-join (u, pos + k): linear in events × window, unlike a join on the user alone;
4. one vote per (user, A, B) (the largest weight), times 1/N_u; sum per (A, B); mirror when symmetric;
5. round half-to-even to 9 decimals the way numpy does (x·1e9, rint, /1e9), bound l ≤ s ≤ u and keep
   row_number() OVER (PARTITION BY A ORDER BY score DESC, B) <= t (note ids compare as bytes, as Python's do).
Float sums may be added in a different order than pandas does; the rounding to 9 decimals makes that invisible
except for a sum within one ulp of a rounding boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from notellm.data.mining import MiningConfig


class SqlRunner(Protocol):
    """What an engine offers the shared SQL: views, materialised tables, one-row and frame queries."""

    def view(self, name: str, sql: str) -> None: ...

    def table(self, name: str, sql: str) -> None: ...

    def row(self, sql: str) -> tuple: ...

    def frame(self, sql: str) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Dialect:
    """The few expressions DuckDB and Spark SQL spell differently."""

    explode_k: str  # a set-returning expression giving k = 1..kmax as rows
    round9: str  # numpy's round(x, 9) of the DOUBLE {x}
    backslash_escapes: bool  # string literals escape with a backslash (Spark) rather than by doubling quotes

    def quote(self, text: str) -> str:
        if self.backslash_escapes:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"


DUCKDB = Dialect(explode_k="unnest(range(1, kmax + 1))",
                 round9="(round_even({x} * CAST(1e9 AS DOUBLE), 0) / CAST(1e9 AS DOUBLE))", backslash_escapes=False)
SPARK = Dialect(explode_k="explode(sequence(1, CAST(kmax AS INT)))",
                round9="(bround({x} * CAST(1e9 AS DOUBLE), 0) / CAST(1e9 AS DOUBLE))", backslash_escapes=True)


def _double(value: float) -> str:
    return f"CAST('{value!r}' AS DOUBLE)"  # repr round-trips: the exact same double as in Python


def mine_sql(run: SqlRunner, dialect: Dialect, cfg: MiningConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Top-t pairs (note codes a, b and score) of the `raw` view and the step counts, as mining.py counts them."""
    stats: dict[str, Any] = {}
    if cfg.actions is not None:
        wanted = ", ".join(dialect.quote(a) for a in cfg.actions)
        n_in, n_other = run.row(f"SELECT count(*), coalesce(sum(CASE WHEN action IN ({wanted}) THEN 0 ELSE 1 END), 0)"
                                " FROM raw")
        stats.update(events_in=int(n_in), events_other_action=int(n_other))
        run.view("act", f"SELECT * FROM raw WHERE action IN ({wanted})")
    else:
        stats["events_in"] = int(run.row("SELECT count(*) FROM raw")[0])
        run.view("act", "SELECT * FROM raw")
    run.table("ranked", """
        SELECT a.u, k.code AS note, a.ts, a.w,
               row_number() OVER (PARTITION BY a.u ORDER BY a.ts, a.rid_file, a.rid) - 1 AS pos
        FROM act a JOIN known_notes k ON k.note = a.note""")
    cap = cfg.max_events_per_user
    kept_if = "TRUE" if cap is None else f"pos < {int(cap)}"
    n_known, n_used, n_users, users_capped = (int(x) for x in run.row(
        f"SELECT count(*), coalesce(sum(CASE WHEN {kept_if} THEN 1 ELSE 0 END), 0), "
        f"count(DISTINCT CASE WHEN {kept_if} THEN u END), count(DISTINCT CASE WHEN NOT ({kept_if}) THEN u END) "
        "FROM ranked"))
    stats["events_unknown_note"] = stats["events_in"] - stats.get("events_other_action", 0) - n_known
    if cap is not None:
        stats.update(events_over_user_cap=n_known - n_used, users_capped=users_capped)
    stats.update(events_used=n_used, users=n_users)
    kept = "ranked" if cap is None else f"(SELECT * FROM ranked WHERE pos < {int(cap)})"
    gap = cfg.max_gap_ns()
    if gap is None:
        kmax = f"least({int(cfg.window)}, n_u - 1 - pos)"  # window is set when there is no gap (config check)
    else:
        in_gap = "last_in_gap - pos"
        kmax = in_gap if cfg.window is None else f"least({int(cfg.window)}, {in_gap})"
    run.table("ev", f"""
        SELECT u, note, w, pos, inv_n, {kmax} AS kmax FROM (
            SELECT e.u, e.note, e.w, e.pos, n.n_u, n.inv_n,
                   max(e.pos) OVER (PARTITION BY e.u ORDER BY e.ts
                                    RANGE BETWEEN CURRENT ROW AND {gap or 0} FOLLOWING) AS last_in_gap
            FROM {kept} e
            JOIN (SELECT u, count(*) AS n_u, CAST(1 AS DOUBLE) / count(DISTINCT note) AS inv_n
                  FROM {kept} x GROUP BY u) n ON n.u = e.u
        ) s""")
    if cfg.symmetric:
        na, nb = "least(a.note, b.note)", "greatest(a.note, b.note)"
    else:
        na, nb = "a.note", "b.note"
    weight = "b.w" if cfg.use_weights else "CAST(1 AS DOUBLE)"
    summed = f"""
        SELECT na, nb, sum(cw) AS s FROM (
            SELECT u, na, nb, max(w) * max(inv_n) AS cw FROM (
                SELECT a.u, a.inv_n, {na} AS na, {nb} AS nb, {weight} AS w
                FROM (SELECT u, pos, note, inv_n, {dialect.explode_k} AS k FROM ev WHERE kmax >= 1) a
                JOIN ev b ON b.u = a.u AND b.pos = a.pos + a.k
                WHERE a.note <> b.note
            ) p GROUP BY u, na, nb
        ) d GROUP BY na, nb"""
    if cfg.symmetric:
        run.view("summed_half", summed)
        summed = "SELECT na, nb, s FROM summed_half UNION ALL SELECT nb AS na, na AS nb, s FROM summed_half"
    run.table("scored", f"SELECT na, nb, {dialect.round9.format(x='s')} AS score FROM ({summed}) m")
    lower, upper = _double(cfg.lower), _double(cfg.upper)
    n_cand, n_below, n_above = run.row(
        f"SELECT count(*), coalesce(sum(CASE WHEN score < {lower} THEN 1 ELSE 0 END), 0), "
        f"coalesce(sum(CASE WHEN score > {upper} THEN 1 ELSE 0 END), 0) FROM scored")
    stats.update(candidate_pairs=int(n_cand), below_lower=int(n_below), above_upper=int(n_above))
    top = run.frame(f"""
        SELECT na AS a, nb AS b, score FROM (
            SELECT na, nb, score, row_number() OVER (PARTITION BY na ORDER BY score DESC, nb) AS r
            FROM scored WHERE score >= {lower} AND score <= {upper}
        ) t WHERE r <= {int(cfg.top_t)}""")
    stats["cut_by_top_t"] = int(n_cand) - int(n_below) - int(n_above) - len(top)
    return top, stats


def known_notes_frame(note_ids: pd.Index) -> pd.DataFrame:
    """The `known_notes` view's rows: each sorted note id with its code (position)."""
    return pd.DataFrame({"note": note_ids.to_numpy(dtype=object), "code": np.arange(len(note_ids), dtype=np.int64)})

