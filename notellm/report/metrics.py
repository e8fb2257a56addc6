"""The pipeline → report contract: one typed `RunMetrics` per run, built once by the pipeline that ran
(quickstart, evaluate or ablate), written to `metrics.json` with `to_dict` and read back with `from_dict` (pydantic
validates the nested dataclasses, so a malformed or outdated file fails with the field that is wrong)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from notellm.evaluation.results import GenerationReport, RetrievalTable

# Keys of `RunMetrics.tables`, in report order.
COLD, FOLDS, FULL, WARM, ABLATION = "cold", "folds", "full", "warm", "ablation"


@dataclass
class RunMeta:
    title: str
    command: str = ""
    backbone: str = ""
    machine: str = ""
    started: str = ""
    seconds: float | None = None
    loadavg_start: str = ""
    loadavg_end: str = ""
    budget_minutes: float | None = None
    budget_plan: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    stages_ran: list[str] = field(default_factory=list)
    stages_skipped: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    precision: dict | None = None
    """The precision the run computed in, why, and its measured matmul peak (notellm/precision.py)."""


@dataclass
class DataSummary:
    notes: int
    events: int
    pairs: dict[str, int]
    pool_size: int
    links_in_pool: int = 0
    warm_holdout: dict | None = None


@dataclass
class WarmSetting:
    """What the warm-note table's queries and pool are (its numbers are in `tables["warm"]`)."""

    t0: str
    pairs: int
    pool_size: int


@dataclass
class AblationRow:
    setting: str
    alpha: float
    hashtag_ratio: float
    steps: int
    generation: dict[str, float | None] = field(default_factory=dict)  # acc, ill, bleu4, rouge1, rouge2, rougeL
    intervals: dict[str, list[float]] = field(default_factory=dict)  # the same keys: 95% [lo, hi] over notes


@dataclass
class RunMetrics:
    meta: RunMeta
    data: DataSummary
    tables: dict[str, RetrievalTable] = field(default_factory=dict)
    warm: WarmSetting | None = None
    generation: GenerationReport | None = None
    training: dict[str, dict] = field(default_factory=dict)
    ablation: list[AblationRow] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    index: dict | None = None
    feed_plot_png_b64: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunMetrics:
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            raise ValueError(f"metrics.json does not match the report contract (written by an older version? "
                             f"re-run the evaluation): {exc}") from exc
