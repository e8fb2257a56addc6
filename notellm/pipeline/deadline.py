"""The quickstart's clock: one deadline for the whole run, and a cost model that predicts what a stage will take,
so the stages that can shrink (a training share when earlier stages overran, the generation sample, the optional
baselines, the serving index) are cut to fit, and every cut is said (console + report), never silent.

Costs are seconds per item of a kind of work ("llm": one note embedded by the backbone, "sbert": one note embedded
by SentenceBERT, "generate": one note's generation metrics), learned from the stages that ran; a kind not seen yet
predicts nothing (the stage runs and teaches the model). Tests inject a fixed cost model and a fake clock, so what
is cut does not depend on the machine's speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console


@dataclass
class CostModel:
    """Seconds per item of each kind of work; `learn=False` keeps the given rates (tests, a known machine)."""

    rates: dict[str, float] = field(default_factory=dict)
    learn: bool = True

    def observe(self, kind: str, items: int, seconds: float) -> None:
        if self.learn and items > 0 and seconds > 0:
            self.rates[kind] = seconds / items

    def predict(self, kind: str, items: int) -> float | None:
        """Predicted seconds, or None when this kind of work has not been seen."""
        rate = self.rates.get(kind)
        return None if rate is None else rate * items

    def affordable(self, kind: str, seconds: float) -> int | None:
        """How many items of `kind` fit in `seconds` (None when the kind is unknown)."""
        rate = self.rates.get(kind)
        if rate is None:
            return None
        return max(0, math.floor(seconds / rate)) if rate > 0 else 2**31


class Deadline:
    """Wall-clock seconds left of a budget that started when this object was made."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.seconds - self.elapsed()


@dataclass
class BudgetKeeper:
    """Decides, stage by stage, what still fits before the deadline; records each cut as a sentence."""

    deadline: Deadline
    costs: CostModel
    console: Console
    cuts: list[str] = field(default_factory=list)

    def cut(self, sentence: str) -> None:
        self.cuts.append(sentence)
        self.console.print(f"[yellow]budget:[/yellow] {sentence}")

    def fits(self, label: str, kind: str, items: int, keep: float = 0.0) -> bool:
        """Whether `items` of `kind` fit in the time left minus `keep` seconds (kept for later stages); an unknown
        kind fits (it runs and is measured). A stage that does not fit is recorded as skipped."""
        need = self.costs.predict(kind, items)
        left = self.deadline.remaining() - keep
        if need is None or need <= left:
            return True
        self.cut(f"{label} skipped: it would take about {need:.0f} s and {max(0.0, left):.0f} s are left for it "
                 f"(a larger --budget runs it)")
        return False

    def shrink(self, label: str, kind: str, wanted: int, keep: float = 0.0, overhead_items: Callable[[int], int]
               = lambda n: 0, done_items: int = 0) -> int:
        """The largest n ≤ `wanted` whose n + overhead_items(n) items of `kind`, less the first `done_items` of the
        n (computed already, e.g. by a timing probe), fit in the time left minus `keep`; records the cut when
        n < wanted."""
        left = self.deadline.remaining() - keep
        n = wanted
        if self.costs.rates.get(kind) is not None:
            while n > 0 and (self.costs.predict(kind, n + overhead_items(n) - min(done_items, n)) or 0.0) > left:
                n -= 1
        if n < wanted:
            self.cut(f"{label}: {n} of {wanted} notes (each takes about {self.costs.rates[kind]:.1f} s and "
                     f"{max(0.0, left):.0f} s are left for it)")
        return n

    def squeeze(self, label: str, planned: float, keep: float) -> float:
        """A time share cut to what is left minus `keep` (earlier stages overran), at least 1 s; says when cut."""
        left = self.deadline.remaining() - keep
        if left >= planned:
            return planned
        seconds = max(1.0, left)
        if planned - seconds < 1.0:  # a sub-second shortfall (import and mining ran first) is no cut worth a line
            return seconds
        self.cut(f"{label}: {seconds:.0f} s instead of the planned {planned:.0f} s (earlier stages took longer "
                 "than their share)")
        return seconds
