"""The quickstart end to end on the tiny backbone and a slice of the shipped Stack Exchange data, then a resume.

Run: PYTHONPATH=. python -m pytest tests/pipeline -q
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from notellm.cli import build_app
from notellm.evaluation import harness as E
from notellm.evaluation.harness import SCORINGS, EvalContext
from notellm.evaluation.results import build_table
from notellm.pipeline.ablate import run_ablation, settings
from notellm.pipeline.deadline import CostModel
from notellm.pipeline.quickstart import (
    MAIN,
    NO_CSFT,
    NO_GCL,
    RESERVED,
    QuickstartConfig,
    plan_budget,
    recipe_overrides,
    run_quickstart,
    train_config,
)
from notellm.pipeline.stages import StageRunner
from notellm.report.metrics import AblationRow
from notellm.report.render import ablation_table
from notellm.retrieval.vectors import NoteVectors


def test_quickstart_end_to_end_and_resume(tmp_path, stackexchange_dir, tiny_backbone_dir):
    cfg = QuickstartConfig(
        stackexchange=str(stackexchange_dir), out=str(tmp_path / "qs"), model=str(tiny_backbone_dir),
        budget_minutes=60.0, max_notes=160, skip_baselines=True, gen_notes=3, examples=2, progress=False,
        overrides=["train.max_steps=2", "train.batch_pairs=4", "train.max_seconds=0"],  # steps, not the clock
    )
    first = run_quickstart(cfg)
    out = tmp_path / "qs"
    for name in ("report.md", "report.html", "metrics.json", "vectors.npz", "faiss/labels.json",
                 "index", "model/notellm.json", "plots/recall_at_k.png"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    cold = metrics["tables"]["cold"]
    methods = set(cold["methods"])
    assert {MAIN, "SentenceBERT (all-MiniLM-L6-v2)", "BM25", "PromptEOL zero-shot", "LLM zero-shot (last token)",
            "ItemCF (train events)"} <= methods
    assert cold["reference"] == "SentenceBERT (all-MiniLM-L6-v2)"  # skip_baselines: no fine-tuned SentenceBERT
    for name in methods:
        paper = cold["methods"][name]["paper"]
        m = paper["metrics"]
        assert paper["n_queries"] > 0
        assert 0.0 <= m["recall@1"]["value"] <= m["recall@5"]["value"] <= 1.0
        for est in m.values():  # every number carries its interval
            assert est["lo"] <= est["value"] <= est["hi"]
        assert (name == cold["reference"]) == (not paper["versus_reference"])
    for name in (MAIN, "SentenceBERT (all-MiniLM-L6-v2)"):  # embedding health on the test-pool vectors
        health = cold["health"][name]
        assert -1.0 <= health["mean_random_cosine"] <= 1.0 and 1.0 <= health["effective_rank"] <= health["dim"]
    full = metrics["tables"]["full"]
    assert {MAIN, "SentenceBERT (all-MiniLM-L6-v2)", "BM25", "ItemCF (train events)"} == set(full["methods"])
    assert full["methods"][MAIN]["paper"]["pool_size"] == metrics["data"]["notes"]
    assert full["methods"][MAIN]["paper"]["n_queries"] == cold["methods"][MAIN]["paper"]["n_queries"]
    report = (out / "report.md").read_text()
    for row in ("| NoteLLM |", "| SentenceBERT (all-MiniLM-L6-v2) |", "| BM25 |", "Worked examples", " ± ",
                "## I2I retrieval: full corpus", "Embedding-space health", "most frequent (training notes)",
                "kNN vote (NoteLLM)"):
        assert row in report, row
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html and "plots/" not in html
    assert metrics["training"][MAIN]["steps"] == 2
    warm, warm_table = metrics["warm"], metrics["tables"]["warm"]  # the slice has new warm co-occurrences
    assert {"ItemCF (events before t0)", "BM25", "SentenceBERT (all-MiniLM-L6-v2)", MAIN} == set(warm_table["methods"])
    for result in warm_table["methods"].values():
        assert result["paper"]["n_queries"] == warm["pairs"] > 0
        assert result["paper"]["pool_size"] == warm["pool_size"]
    assert "## Warm notes" in report and metrics["data"]["warm_holdout"]["train_pairs_held_out"] > 0
    rows = {(r["model"], r["decoding"]): r for r in metrics["generation"]["rows"]}
    constrained = [f"constrained {label}" for label in SCORINGS]  # greedy, pmi λ=0.5, pmi λ=1, beam
    assert {(MAIN, "free")} | {(MAIN, d) for d in constrained} <= set(rows)
    for decoding in constrained:
        assert rows[(MAIN, decoding)]["category"]["ill"] == 0.0  # the automaton keeps it in the set
        assert not rows[(MAIN, decoding)]["hashtags"]["tag_ill"] > 0  # 0, or NaN when nothing was generated
    chosen = " and ".join(r["chosen"] for r in rows.values() if r["chosen"])  # each task chose one scoring
    assert sorted(chosen.split(" and ")) == ["category", "hashtags"]
    assert metrics["generation"]["choice"]["validation_notes"] > 0
    generated = json.loads((out / ".stages" / "generate:notellm.json").read_text())["result"]
    assert generated["reused"] == 1 and generated["notes"] == 3  # the timing probe's note is not decoded again
    ctx = EvalContext.from_data_dir(out / "data")
    vocabulary = set(ctx.hashtag_vocabulary())
    for example in metrics["examples"]:
        assert set(example["constrained_hashtags"]) <= vocabulary
        assert example["constrained_category"] in ctx.category_set()
    assert "train:notellm" in first["stages_ran"]

    second = run_quickstart(cfg)
    assert second["stages_ran"] == []
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["meta"]["stage_seconds"]["train:notellm"] == metrics["meta"]["stage_seconds"]["train:notellm"]
    assert "train:notellm" in second["stages_skipped"] and "index" in second["stages_skipped"]
    assert json.loads((out / "metrics.json").read_text())["tables"] == metrics["tables"]

    # the CLI on the run's artefacts: embed with the trained model, re-render the report elsewhere
    app = build_app()
    runner = CliRunner()
    res = runner.invoke(app, ["embed", "--model", str(out / "model"), "--data", str(out / "data"),
                              "--out", str(tmp_path / "v.npz")])
    assert res.exit_code == 0, res.output
    assert len(NoteVectors.load(tmp_path / "v.npz")) == metrics["data"]["notes"]
    res = runner.invoke(app, ["report", str(out / "metrics.json"), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "report.md").read_text() == (out / "report.md").read_text()
    res = runner.invoke(app, ["evaluate", "--model", str(out / "model"), "--data", str(out / "data"), "--out",
                              str(tmp_path / "ev"), "--no-baselines", "--gen-notes", "0"])
    assert res.exit_code == 0, res.output
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert (evaluated["tables"]["cold"]["methods"]["NoteLLM"]["paper"]["metrics"]
            == cold["methods"][MAIN]["paper"]["metrics"])
    res = runner.invoke(app, ["report", str(tmp_path / "missing.json")])
    assert res.exit_code == 1 and "metrics file not found" in res.output


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_machine(monkeypatch, out, rates: dict, train_seconds: dict) -> FakeClock:
    """Every stage advances a fake clock by what the fixed `rates` say it costs (a training run: `train_seconds`
    of its stage name), so what the quickstart cuts does not depend on this machine's speed."""
    clock, original = FakeClock(), StageRunner.run

    def charge(name: str, params: dict) -> float:
        if name in ("import", "mine"):
            return 10.0
        if name.startswith("train:"):
            return train_seconds[name]
        if name.startswith("generate:"):
            return rates["generate"] * (len(params["notes"]) + len(params["val"]))
        if name.startswith("eval:") and name not in ("eval:bm25", "eval:itemcf"):
            pool = len(EvalContext.from_data_dir(out / "data").pool_ids)
            return pool * rates["sbert" if name.startswith("eval:sbert") else "llm"]
        return 0.0

    def charged(self, name, params, fn, workdir=None):
        result = original(self, name, params, fn, workdir)
        clock.now += charge(name, params)
        return result

    monkeypatch.setattr(StageRunner, "run", charged)
    return clock


def test_quickstart_fits_its_budget_by_cutting_visibly(tmp_path, monkeypatch, stackexchange_dir,
                                                       tiny_backbone_dir, seeded_slice):
    """Training takes its whole share; the run must end inside budget + 10%, shrink generation to what fits, skip
    the serving index and the zero-shot rows that do not fit, and say so in the report."""
    rates, out = {"llm": 1.0, "sbert": 0.01, "generate": 35.0}, seeded_slice.into(tmp_path / "qs")
    clock = _fake_machine(monkeypatch, out, rates, {"train:notellm": plan_budget(600, True)[f"train {MAIN}"]})
    cfg = QuickstartConfig(
        stackexchange=str(stackexchange_dir), out=str(out), model=str(tiny_backbone_dir), budget_minutes=10.0,
        max_notes=seeded_slice.notes, skip_baselines=True, gen_notes=20, examples=2, progress=False, precision="fp32",
        overrides=["train.max_steps=1", "train.batch_pairs=4", "train.max_seconds=0"])
    result = run_quickstart(cfg, clock=clock, costs=CostModel(dict(rates), learn=False))
    assert {"import", "mine"} <= set(result["stages_skipped"])  # the session's slice (conftest.py), charged 20 s
    assert clock.now <= 600 * 1.1
    n_pool = len(EvalContext.from_data_dir(out / "data").pool_ids)
    left = 600 - 20 - plan_budget(600, True)[f"train {MAIN}"] - n_pool * (rates["llm"] + rates["sbert"])
    fits = [n for n in range(21) if rates["generate"] * (n + E.validation_size(n)) <= left]  # brute force
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < max(fits) < 20 and metrics["generation"]["rows"][0]["category"]["n"] == max(fits)
    assert result["index"] is None and not (out / "index").exists() and "full" not in metrics["tables"]
    methods = set(metrics["tables"]["cold"]["methods"])
    assert MAIN in methods and "BM25" in methods
    assert not {"PromptEOL zero-shot", "LLM zero-shot (last token)"} & methods
    report = (out / "report.md").read_text()
    assert f"generation metrics of {MAIN}: {max(fits)} of 20 notes" in report
    assert "the serving index (every note embedded by NoteLLM" in report
    assert "the PromptEOL zero-shot row (embedding the test pool) skipped" in report


def test_quickstart_with_baselines_squeezes_training_after_an_overrun(tmp_path, monkeypatch, stackexchange_dir,
                                                                      tiny_backbone_dir, seeded_slice):
    """The first training run overruns its share by 30 s: the next shares are cut to what is left (said), the
    optional rows run in priority order while they fit, and the run still ends inside budget + 10%."""
    plan, out = plan_budget(600, False), seeded_slice.into(tmp_path / "qs")
    rates = {"llm": 2.0, "sbert": 0.01, "generate": 35.0}
    clock = _fake_machine(monkeypatch, out, rates, {
        "train:notellm": plan[f"train {MAIN}"] + 30, "train:no_csft": plan[f"train {NO_CSFT}"],
        "train:no_gcl": plan[f"train {NO_GCL}"], "train:sbert_finetuned": plan["fine-tune SentenceBERT"]})
    cfg = QuickstartConfig(
        stackexchange=str(stackexchange_dir), out=str(out), model=str(tiny_backbone_dir), budget_minutes=10.0,
        max_notes=seeded_slice.notes, gen_notes=20, examples=2, progress=False, precision="fp32",
        overrides=["train.max_steps=1", "train.batch_pairs=4"])  # time-boxed shares, one step each
    result = run_quickstart(cfg, clock=clock, costs=CostModel(dict(rates), learn=False))
    assert {"import", "mine"} <= set(result["stages_skipped"])  # the session's slice (conftest.py), charged 20 s
    assert clock.now <= 600 * 1.1
    report = (out / "report.md").read_text()
    tail = plan[RESERVED] - 20  # reserved minus import + mining
    # hand-computed: after the overrun 600 - 20 - 270 = 310 s are left, and 90 + 48 + tail must stay
    assert f"training {NO_CSFT}: {310 - 90 - 48 - tail:.0f} s instead of the planned 90 s" in report
    assert f"training {NO_GCL}: {310 - 90 - 48 - tail:.0f} s instead of the planned 90 s" in report
    assert f"fine-tuning SentenceBERT: {310 - 180 - tail:.0f} s instead of the planned 48 s" in report
    methods = set(json.loads((out / "metrics.json").read_text())["tables"]["cold"]["methods"])
    assert {MAIN, "SentenceBERT fine-tuned (MNRL)"} <= methods
    priority = [NO_GCL, NO_CSFT, "PromptEOL zero-shot", "LLM zero-shot (last token)"]
    ran = [name in methods for name in priority]
    assert ran == sorted(ran, reverse=True)  # what ran is a prefix of the priority order
    for name in priority:
        assert (name in methods) != (f"the {name} row (embedding the test pool) skipped" in report)


def test_cpu_recipe_on_a_cpu_the_preset_on_a_gpu_and_the_user_wins(tmp_path, monkeypatch):
    import torch

    from notellm.configs import CPU_RECIPES, preset_path

    auto = QuickstartConfig(out=str(tmp_path))  # smollm2-135m with its shipped preset
    assert recipe_overrides(auto, cuda=False) == CPU_RECIPES["smollm2-135m"]
    assert recipe_overrides(auto, cuda=True) == []  # GPUs train the preset: full fine-tuning
    forced = QuickstartConfig(out=str(tmp_path), recipe="cpu")
    assert recipe_overrides(forced, cuda=True) == CPU_RECIPES["smollm2-135m"]
    assert recipe_overrides(QuickstartConfig(out=str(tmp_path), recipe="preset"), cuda=False) == []
    explicit = QuickstartConfig(out=str(tmp_path), config=str(preset_path("smollm2-135m")))
    assert recipe_overrides(explicit, cuda=False) == []  # a --config is trained as written
    assert recipe_overrides(QuickstartConfig(out=str(tmp_path), model="tiny"), cuda=False) == []  # none measured
    with pytest.raises(ValueError, match="no CPU recipe is measured for backbone 'tiny'"):
        recipe_overrides(QuickstartConfig(out=str(tmp_path), model="tiny", recipe="cpu"))
    with pytest.raises(ValueError, match="--recipe must be one of auto, preset, cpu"):
        QuickstartConfig(out=str(tmp_path), recipe="fast")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train = train_config(auto, tmp_path, tmp_path / "run", 60.0, ["train.alpha=0"])[0].train
    assert (train.mode, train.top_n_layers, train.lr, train.alpha) == ("top_n", 8, 1e-4, 0.0)
    user = QuickstartConfig(out=str(tmp_path), overrides=["train.lr=5e-5", "train.top_n_layers=4"])
    train = train_config(user, tmp_path, tmp_path / "run", 60.0, [])[0].train
    assert (train.mode, train.top_n_layers, train.lr) == ("top_n", 4, 5e-5)  # --set wins over the recipe
    train = train_config(QuickstartConfig(out=str(tmp_path), recipe="preset"), tmp_path, tmp_path / "run", 60.0,
                         [])[0].train
    assert (train.mode, train.lr) == ("full", 3e-5)


def test_budget_keeper_decisions_hand_computed():
    from rich.console import Console

    from notellm.pipeline.deadline import BudgetKeeper, Deadline

    clock = FakeClock()
    keeper = BudgetKeeper(Deadline(100.0, clock), CostModel({"llm": 2.0, "generate": 5.0}, learn=False),
                          Console(file=None, quiet=True))
    clock.now = 40.0  # 60 s left
    assert keeper.fits("a", "llm", 30) and not keeper.fits("b", "llm", 31)  # 60 s vs 62 s
    assert keeper.fits("c", "unknown kind", 10**6)  # never seen: it runs and is measured
    assert not keeper.fits("d", "llm", 10, keep=41.0)  # 20 s needed, 19 s left after what later stages keep
    assert keeper.shrink("e", "generate", 50, keep=10.0) == 10  # 50 s: 10 notes of 5 s
    assert keeper.shrink("f", "generate", 4) == 4  # fits whole: no cut
    assert keeper.shrink("g", "generate", 50, overhead_items=lambda n: 2) == 10  # 12 items = 60 s
    assert keeper.shrink("g2", "generate", 50, overhead_items=lambda n: 2, done_items=1) == 11  # 11 + 2 - 1 = 60 s
    assert keeper.squeeze("h", 30.0, keep=45.0) == 15.0 and keeper.squeeze("i", 10.0, keep=0.0) == 10.0
    assert [c.split(" ")[0] for c in keeper.cuts] == ["b", "d", "e:", "g:", "g2:", "h:"]


def test_stage_marker_reruns_on_changed_params(tmp_path):
    runner = StageRunner(tmp_path)
    calls = []
    assert runner.run("s", {"a": 1}, lambda: calls.append(1) or {"v": 1}) == {"v": 1}
    assert runner.run("s", {"a": 1}, lambda: calls.append(2) or {"v": 2}) == {"v": 1}
    assert runner.run("s", {"a": 2}, lambda: calls.append(3) or {"v": 3}) == {"v": 3}
    assert calls == [1, 3]
    (tmp_path / ".stages" / "s.json").write_text("{broken")
    assert runner.run("s", {"a": 2}, lambda: {"v": 4}) == {"v": 4}


def test_stage_workdir_is_emptied_only_for_other_inputs(tmp_path):
    """An interrupted stage resumes from its own partial work; a stage with new inputs never sees an old run's."""
    runner, work = StageRunner(tmp_path / "out"), tmp_path / "out" / "runs" / "x"

    def interrupted():
        (work / "checkpoint").write_text("partial")
        raise KeyboardInterrupt

    try:
        runner.run("t", {"data": 1}, interrupted, workdir=work)
    except KeyboardInterrupt:
        pass
    seen = []
    runner.run("t", {"data": 1}, lambda: seen.append((work / "checkpoint").exists()) or {}, workdir=work)
    runner.run("t", {"data": 2}, lambda: seen.append((work / "checkpoint").exists()) or {}, workdir=work)
    assert seen == [True, False]  # same inputs: resumed from the checkpoint; new inputs: started afresh
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "checkpoint").write_text("no stamp: from before stamping, inputs unknown")
    runner.run("u", {"data": 1}, lambda: seen.append((tmp_path / "legacy" / "checkpoint").exists()) or {},
               workdir=tmp_path / "legacy")
    assert seen[-1] is False


def test_budget_plan_adds_up():
    plan = plan_budget(600, skip_baselines=False)
    assert abs(sum(plan.values()) - 600) < 1e-6
    assert plan["train NoteLLM"] == 240
    assert plan_budget(600, skip_baselines=True)["train NoteLLM"] == 420


def test_ablation_grid_and_table():
    """α sweep at r = 0.4 plus r sweep at α = 0.01; (0.01, 0.4) appears once: 4 + 3 - 1 = 6 runs."""
    grid = [(a, r) for _, a, r in settings()]
    assert grid == [(0.0, 0.4), (0.01, 0.4), (0.1, 0.4), (1.0, 0.4), (0.01, 0.0), (0.01, 1.0)]
    raw = {"α=0, r=0.4": {"paper": {"ks": [1, 10], "greater": [0, 5, 20, 3], "ties": [0, 0, 0, 0],
                                    "pool_size": 30, "n_candidates": 29, "query_digest": "q"}}}
    table = build_table("ablation", "test", raw)
    rows = [AblationRow(setting="α=0, r=0.4", alpha=0.0, hashtag_ratio=0.4, steps=7,
                        generation={"acc": 0.0, "ill": 1.0, "bleu4": 0.01, "rouge1": 0.2, "rouge2": 0.1,
                                    "rougeL": 0.2})]
    text = "\n".join(ablation_table(rows, table))
    # R@1 = 1/4, R@10 = 3/4, Avg = 1/2, each with its bootstrap half-width
    r1, r10 = table.methods["α=0, r=0.4"]["paper"].metrics["recall@1"], table.methods["α=0, r=0.4"]["paper"].metrics[
        "recall@10"]
    assert r1.value == 0.25 and r10.value == 0.75
    assert (f"| α=0, r=0.4 | 7 | 25.00 ± {100 * r1.half_width:.2f} | 75.00 ± {100 * r10.half_width:.2f} | 50.00 ± "
            in text)
    assert "| 0.00 | 100.00 | 1.00 | 20.00 | 10.00 | 20.00 |" in text
    rows[0].intervals = {"acc": [0.0, 0.0], "bleu4": [0.0, 0.03]}  # generation intervals over notes, when known
    assert "| 0.00 ± 0.00 | 100.00 | 1.00 ± 1.50 | 20.00 | 10.00 | 20.00 |" in "\n".join(ablation_table(rows, table))


def test_ablate_end_to_end(tmp_path, monkeypatch, stackexchange_dir, tiny_backbone_dir, seeded_slice):
    """Six tiny training runs on a slice of the shipped data: one table row per (α, r), real recall values."""
    import notellm.train.loop as loop

    class StepClock:  # the training loop's `time`: each micro-batch costs exactly 1 s, on any machine
        now = 1000.0

        def perf_counter(self) -> float:
            return self.now

    clock, real_step = StepClock(), loop.training_step

    def timed_step(*args, **kwargs):
        clock.now += 1.0
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "time", clock)
    monkeypatch.setattr(loop, "training_step", timed_step)
    cfg = QuickstartConfig(
        stackexchange=str(stackexchange_dir), out=str(seeded_slice.into(tmp_path / "ab")),
        model=str(tiny_backbone_dir), budget_minutes=0.5, max_notes=seeded_slice.notes, gen_notes=2, progress=False,
        overrides=["train.batch_pairs=8", "train.epochs=1", "train.eval_every=0", "train.checkpoint_every=0"],
    )
    result = run_ablation(cfg)
    rows = result["rows"]
    assert [(row["alpha"], row["hashtag_ratio"]) for row in rows] == [(a, r) for _, a, r in settings()]
    # the first setting's 4 s share (0.8 × 30 s / 6) at 1 s a step stops it inside its epoch; every other setting
    # trains as many steps, with no time stop
    first = rows[0]["steps"]
    epoch = -(-len(EvalContext.from_data_dir(tmp_path / "ab" / "data").train_pairs) // 8)
    assert 1 <= first <= 5 < epoch
    for row, slug in zip(rows, ["alpha0_r0.4", "alpha0.01_r0.4", "alpha0.1_r0.4", "alpha1_r0.4", "alpha0.01_r0",
                                "alpha0.01_r1"]):
        assert row["steps"] == first
        max_steps = (tmp_path / "ab" / "runs" / slug / "config.yaml").read_text().split("max_steps: ")[1].split()[0]
        assert int(max_steps) == (0 if slug == "alpha0_r0.4" else first)
        assert row["generation"]["ill"] is not None and 0.0 <= row["generation"]["ill"] <= 1.0
    metrics = json.loads((tmp_path / "ab" / "ablation.json").read_text())
    table = metrics["tables"]["ablation"]
    assert table["reference"] == "α=0.01, r=0.4" and len(table["methods"]) == 6
    for name, per_rule in table["methods"].items():
        m = per_rule["paper"]["metrics"]
        assert 0.0 <= m["recall@1"]["value"] <= m["recall_avg"]["value"] <= 1.0
        assert (name == "α=0.01, r=0.4") == (not per_rule["paper"]["versus_reference"])
    assert {"import", "mine"} <= set(metrics["meta"]["stages_skipped"])  # the session's slice (conftest.py)
    report = (tmp_path / "ab" / "report.md").read_text()
    assert "| α=0, r=0.4 |" in report and "| α=0.01, r=1 |" in report and " ± " in report
