"""Render a run's metrics JSON into `report.md` (+ PNG files) and a self-contained `report.html`.

The report renders, never computes: every number comes from the metrics dict the pipeline wrote
(`metrics.json`). The Markdown is the single source; the HTML is that Markdown converted with markdown-it-py
(already installed with rich) plus a small stylesheet, with every plot inlined as a base64 PNG so the file can be
mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path

from notellm.evaluation.results import COLLAPSE_COSINE, Difference, Estimate, RetrievalTable, comparison_sentences
from notellm.report.metrics import ABLATION, COLD, FOLDS, FULL, WARM, AblationRow, GenerationReport, RunMetrics
from notellm.report.plots import loss_curve_png, recall_curve_png

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2330;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}
th,td{border:1px solid #d0d6e0;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#eef2f8}
tr:nth-child(even) td{background:#fafbfd}
code{background:#f1f3f7;padding:1px 4px;border-radius:3px}
img{max-width:100%}
h1{border-bottom:2px solid #d0d6e0}
h2{margin-top:1.6em;border-bottom:1px solid #e3e7ee}
"""


def _pct(value) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{100 * value:.2f}"


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out + [""]


def _pm(est: Estimate | None) -> str:
    """`x ± half-width` in % (the half-width of the bootstrap interval)."""
    if est is None or est.value != est.value:
        return "–"
    return f"{100 * est.value:.2f} ± {100 * est.half_width:.2f}"


def _diff(diff: Difference | None) -> str:
    if diff is None:
        return "reference"
    return f"{100 * diff.value:+.2f} [{100 * diff.lo:+.2f}, {100 * diff.hi:+.2f}] {diff.verdict}"


def recall_table(table: RetrievalTable, rule: str) -> list[str]:
    """One row per method: Recall@K for every K, Avg, MRR, NDCG@10 (value ± interval half-width, in %), queries,
    and the Avg difference to the reference with its interval and verdict."""
    results = {name: per_rule[rule] for name, per_rule in table.methods.items() if rule in per_rule}
    if not results:
        return []
    ks = next(iter(results.values())).ks
    compare = table.reference is not None and table.reference in results
    header = (["method"] + [f"R@{k}" for k in ks] + ["Avg", "MRR", "NDCG@10", "queries"]
              + ([f"Avg − {table.reference} [95% interval]"] if compare else []))
    rows = []
    for name, res in results.items():
        m = res.metrics
        rows.append([name] + [_pm(m.get(f"recall@{k}")) for k in ks]
                    + [_pm(m.get("recall_avg")), _pm(m.get("mrr")), _pm(m.get("ndcg@10")), str(res.n_queries)]
                    + ([_diff(res.versus_reference.get("recall_avg"))] if compare else []))
    return _table(header, rows)


def breakdown_table(table: RetrievalTable, rule: str, breakdown: str, ks: tuple[int, ...] = (10, 100)) -> list[str]:
    """Rows = methods, columns = bucket × (R@k for k in ks that exist); bucket sizes in the header (point values:
    buckets are small, read them as descriptive)."""
    results = {name: per_rule[rule] for name, per_rule in table.methods.items()
               if rule in per_rule and breakdown in per_rule[rule].breakdowns}
    if not results:
        return []
    first = next(iter(results.values()))
    ks = tuple(k for k in ks if k in first.ks) or (first.ks[-1],)
    buckets = list(first.breakdowns[breakdown])
    header = ["method"] + [f"{b} R@{k} (n={first.breakdowns[breakdown][b]['n_queries']})" for b in buckets for k in ks]
    rows = []
    for name, res in results.items():
        bd = res.breakdowns[breakdown]
        rows.append([name] + [_pct(bd.get(b, {}).get(f"recall@{k}")) for b in buckets for k in ks])
    return _table(header, rows)


def health_lines(table: RetrievalTable) -> list[str]:
    """The embedding-space health table and, in words, every collapsed space."""
    if not table.health:
        return []
    rows = [[name, _num(h.mean_random_cosine), f"{h.effective_rank:.1f} / {h.dim}", _num(h.top1_score),
             f"{_num(h.far_score)} (#{h.far_rank})", _num(h.gap), "**collapsed**" if h.collapsed else "ok"]
            for name, h in table.health.items()]
    lines = ["### Embedding-space health (test-pool vectors)", "",
             "Mean cosine of random note pairs; effective rank (exp of the entropy of the normalised singular "
             "values) over the dimension; mean cosine of each note's nearest and of its 100th neighbour (or its "
             "last, in a smaller pool) and their gap. A space whose random pairs average above "
             f"{COLLAPSE_COSINE} is flagged as collapsed.", ""]
    lines += _table(["method", "random-pair cosine", "effective rank / dim", "top-1 cosine", "far neighbour",
                     "gap", "space"], rows)
    for name, h in table.health.items():
        if h.collapsed:
            lines += [f"**{name}: collapsed embedding space.** Random note pairs have mean cosine "
                      f"{h.mean_random_cosine:.3f} (above {COLLAPSE_COSINE}); the nearest and the #{h.far_rank} "
                      f"neighbour differ by {h.gap:.3f} in cosine, so its ranking rests on small differences.", ""]
    return lines


def comparison_lines(table: RetrievalTable) -> list[str]:
    """The comparative sentences of one table, each worded by the interval of its difference."""
    sentences = comparison_sentences(table, metrics=("recall_avg",))
    if not sentences:
        return []
    return ([f"Against the reference ({table.reference}), paired bootstrap over queries "
             f"({table.bootstrap.resamples} resamples, seed {table.bootstrap.seed}); \"better\"/\"worse\" only where "
             "the interval of the difference excludes 0:", ""] + [f"- {s}" for s in sentences] + [""])


def generation_table(gen: GenerationReport) -> list[str]:
    """One row per generator: category Acc/Ill, hashtag BLEU/ROUGE/tag P/R/Ill and the diversity figures (%)."""
    rows = []
    for r in gen.rows:
        c, h, d = r.category, r.hashtags, r.diversity

        def pm(value, key: str, r=r) -> str:  # value ± the half-width of its interval over notes, when there is one
            lo, hi = r.intervals.get(key, (None, None))
            return _pm(Estimate(value, lo, hi)) if lo is not None and lo == lo and value == value else _pct(value)

        rows.append([r.model, r.decoding + (f" (chosen on validation for {r.chosen})" if r.chosen else ""),
                     pm(c.get("acc"), "acc"), _pct(c.get("ill"))]
                    + [_pct(h.get(m)) for m in ("bleu4", "rouge1", "rougeL")]
                    + [pm(h.get("tag_precision"), "tag_precision"), pm(h.get("tag_recall"), "tag_recall"),
                       _pct(h.get("tag_ill"))]
                    + [_num(d.get("distinct_per_note"), 2), _pct(d.get("modal_share")), str(c.get("n", "–"))])
    return _table(["generator", "decoding", "category Acc", "category Ill", "BLEU-4", "ROUGE-1", "ROUGE-L",
                   "tag P", "tag R", "tag Ill", "distinct tags / note", "notes with the modal tag list", "notes"],
                  rows)


def ablation_table(rows: list[AblationRow], table: RetrievalTable | None) -> list[str]:
    """Paper Tables 5–6 layout: one row per setting, recall (± interval) then generation metrics (in %)."""
    if not rows:
        return []
    results = table.methods if table else {}
    first = next((per_rule["paper"] for per_rule in results.values() if "paper" in per_rule), None)
    ks = first.ks if first else []
    header = (["setting", "steps"] + [f"R@{k}" for k in ks] + ["Avg"]
              + ([f"Avg − {table.reference}"] if table and table.reference else [])
              + ["Acc", "Ill", "BLEU-4", "R-1", "R-2", "R-L"])
    body = []
    for r in rows:
        res = results.get(r.setting, {}).get("paper")
        m = res.metrics if res else {}
        g = r.generation
        body.append([r.setting, str(r.steps)] + [_pm(m.get(f"recall@{k}")) for k in ks] + [_pm(m.get("recall_avg"))]
                    + ([_diff(res.versus_reference.get("recall_avg")) if res else "–"] if table and table.reference
                       else [])
                    + [_pct(g.get(k)) for k in ("acc", "ill", "bleu4", "rouge1", "rouge2", "rougeL")])
    return _table(header, body)


def _one_line(text: str) -> str:
    """Model output on one Markdown line (generated text may hold newlines and table pipes)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _examples(examples: list[dict]) -> list[str]:
    out: list[str] = []
    for ex in examples:
        note = ex["note"]
        out.append(f"### {note['title'] or note['note_id']}")
        out.append("")
        out.append(f"`{note['note_id']}` · category **{note['category']}** · hashtags: "
                   f"{', '.join(note['hashtags']) or '(none)'}")
        out.append("")
        if "generated_category" in ex or "generated_hashtags" in ex:
            tags = ", ".join(_one_line(t) for t in ex.get("generated_hashtags") or []) or "(none)"
            out.append(f"Generated category: **{_one_line(ex.get('generated_category') or '–')}** · "
                       f"generated hashtags: {tags}")
            out.append("")
        if ex.get("constrained_category") or ex.get("constrained_hashtags"):
            tags = ", ".join(_one_line(t) for t in ex.get("constrained_hashtags") or []) or "(none)"
            choice = ex.get("constrained_scoring") or {}
            how = (f" (scoring chosen on validation: category {choice['category']}, hashtags {choice['hashtags']})"
                   if choice.get("category") else "")
            out.append(f"Constrained decoding{how}: category "
                       f"**{_one_line(ex.get('constrained_category') or '–')}** · hashtags: {tags}")
            out.append("")
        for method, neighbours in ex["neighbours"].items():
            rows = [[str(i + 1), n["title"][:90], n["category"], _num(n["score"]),
                     "✓" if n.get("related") else ""] for i, n in enumerate(neighbours)]
            out.append(f"Top-{len(neighbours)} by **{method}** (✓ = a test pair or explicit link of this note):")
            out.append("")
            out += _table(["#", "title", "category", "score", "related"], rows)
    return out


def _retrieval_section(table: RetrievalTable, image: Callable[[str, bytes], str] | None, png_name: str,
                       breakdowns: bool) -> list[str]:
    """The rule tables, comparison sentences, the Recall@K plot (unless `image` is None), breakdowns, health."""
    lines = ["**Paper rule** (every test pair is a query; candidates = the pool minus the query):", ""]
    lines += recall_table(table, "paper")
    code = recall_table(table, "code")
    if code:
        lines += ["**Official-code rule** (pairs de-duplicated so each note is used once; candidates = the pool "
                  "minus every query note):", ""] + code
    links = recall_table(table, "links")
    if links:
        lines += ["**Explicit links** (Stack Exchange PostLinks inside the test notes, both directions, paper rule):",
                  ""] + links
    lines += comparison_lines(table)
    png = recall_curve_png(table, "paper") if image is not None else None
    if png:
        lines += [f"![Recall@K]({image(png_name, png)})", ""]
    if breakdowns:
        for name, title in (("exposure", "by ground-truth exposure (low = bottom 30%, high = top 10% by events)"),
                            ("length", "by query-note length (median split)"),
                            ("warm_cold", "warm (query note has training pairs) vs cold"),
                            ("category", "by query-note category")):
            bt = breakdown_table(table, "paper", name)
            if bt:
                lines += [f"### Breakdown {title}", ""] + bt
    return lines + health_lines(table)


def _interval_note(table: RetrievalTable) -> str:
    b = table.bootstrap
    folds = f", pooled over {table.folds} note splits (folds)" if table.folds > 1 else ""
    return (f"Values: % ± the half-width of a {100 * b.level:.0f}% paired-bootstrap interval over queries "
            f"({b.resamples} resamples, seed {b.seed}){folds}. Pool: {table.pool}.")


def render_markdown(metrics: RunMetrics, image: Callable[[str, bytes], str]) -> str:
    """The report as Markdown; `image(name, png)` returns the link target for a plot (file path or data URI)."""
    meta, data = metrics.meta, metrics.data
    lines = [f"# NoteLLM report: {meta.title}", ""]
    lines += [f"- Command: `{meta.command}`",
              f"- Backbone: `{meta.backbone}` · budget {_num(meta.budget_minutes, 0)} min · machine: "
              f"{meta.machine or '–'}",
              f"- Started {meta.started or '–'}, this invocation took {_num(meta.seconds, 0)} s "
              f"(stages reused from earlier runs: {len(meta.stages_skipped)}); load average "
              f"start/end: {meta.loadavg_start or '–'} / {meta.loadavg_end or '–'}"]
    if meta.stage_seconds:
        lines.append("- Compute seconds per stage (whenever it ran): "
                     + ", ".join(f"{k} {v:.0f}" for k, v in meta.stage_seconds.items()))
    lines.append("")
    pairs = data.pairs
    lines += ["## Data", "",
              f"{data.notes} notes, {data.events} events; mined pairs: train {pairs.get('train', 0)}, val "
              f"{pairs.get('val', 0)}, test {pairs.get('test', 0)}. Test pool: {data.pool_size} notes; explicit "
              f"links inside the pool: {data.links_in_pool}.", ""]
    if meta.budget_plan:
        lines += ["Time budget plan (seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in meta.budget_plan.items()),
                  ""]
    cold = metrics.tables.get(COLD)
    if cold:
        lines += ["## I2I retrieval: cold test notes (Recall@K, %)", "",
                  "Avg = the mean of the Recall@K columns shown (the paper averages R@100 to R@100k; a smaller pool "
                  "only fits smaller K). MRR and NDCG@10 are for the single ground truth of each query. "
                  + _interval_note(cold), ""]
        lines += _retrieval_section(cold, image, "recall_at_k.png", breakdowns=True)
    pooled = metrics.tables.get(FOLDS)
    if pooled:
        lines += [f"## I2I retrieval: {pooled.folds} note splits pooled (Recall@K, %)", "",
                  f"The same recipe on {pooled.folds} note splits with disjoint test notes (each fold trains on its "
                  "own training notes only), every fold's queries ranked within its own test pool and pooled: "
                  f"{pooled.folds} times the queries of one split. Methods scored in every fold. "
                  + _interval_note(pooled), ""]
        lines += _retrieval_section(pooled, image, "recall_at_k_folds.png", breakdowns=False)
    full = metrics.tables.get(FULL)
    if full:
        lines += ["## I2I retrieval: full corpus (Recall@K, %)", "",
                  "The same test pairs as queries, ranked against every note, training notes included (the "
                  "production I2I setting; only methods with vectors of every note are scored). "
                  + _interval_note(full), ""]
        lines += _retrieval_section(full, image, "recall_at_k_full.png", breakdowns=False)
    warm_table, warm = metrics.tables.get(WARM), metrics.warm
    if warm_table and warm:
        held = data.warm_holdout or {}
        lines += ["## Warm notes: a time split of the behaviour log (Recall@K, %)", "",
                  f"The log is cut at t0 = {warm.t0}. Queries: {warm.pairs} co-occurrences mined from the "
                  f"events after t0 alone, between notes that both had behaviour before t0, and that did not "
                  f"co-occur before t0. Pool: the {warm.pool_size} notes with behaviour before t0. ItemCF "
                  "learns from the events before t0 only. Training never saw these pairs: for their notes it kept "
                  "only pairs that co-occurred before t0 too"
                  + (f" ({held['train_pairs_held_out']} training pairs held out)" if "train_pairs_held_out" in held
                     else "") + ". The main table above is the cold-start case (no test note has behaviour). "
                  + _interval_note(warm_table), ""]
        lines += _retrieval_section(warm_table, image, "recall_at_k_warm.png", breakdowns=False)
    if metrics.generation:
        lines += generation_section(metrics.generation)
    if metrics.training:
        lines += ["## Training", ""]
        rows = [[name, str(t.get("steps", "–")), _num(t.get("seconds"), 0), _num(t.get("first_loss")),
                 _num(t.get("final_loss")), _num(t.get("tau"))] for name, t in metrics.training.items()]
        lines += _table(["run", "steps", "seconds", "first loss", "final loss", "final tau"], rows)
        png = loss_curve_png(metrics.training)
        if png:
            lines += [f"![training loss]({image('training_loss.png', png)})", ""]
    if metrics.ablation:
        lines += ablation_section(metrics)
    if metrics.feed_plot_png_b64:
        png = base64.b64decode(metrics.feed_plot_png_b64)
        lines += ["## Feed diversity frontier", "", f"![feed frontier]({image('feed_frontier.png', png)})", ""]
    if metrics.examples:
        lines += ["## Worked examples", ""] + _examples(metrics.examples)
    if metrics.remarks:
        lines += ["## Notes", ""] + [f"- {r}" for r in metrics.remarks] + [""]
    return "\n".join(lines)


def generation_section(gen: GenerationReport) -> list[str]:
    """The generation section: what each figure is, the decoder chosen on validation, the table, the verdicts."""
    choice = gen.choice
    scores = choice.get("scores", {})
    shown = "; ".join(f"{task} {' / '.join(f'{k} {_pct(v)}' for k, v in by.items())} ({measure})"
                      for task, measure in (("category", "accuracy"), ("hashtags", "tag F1"))
                      if (by := scores.get(task)))
    chosen = (f" Constrained scoring chosen on {choice.get('validation_notes', 0)} validation notes: category "
              f"{choice.get('category')}, hashtags {choice.get('hashtags')} (validation, %: {shown})."
              if choice.get("validation_notes") else "")
    lines = ["## Generation (%)", "",
             f"On {gen.notes} test notes. Category accuracy = exact match; Ill = share outside the category "
             "set. Hashtags: BLEU-4 (sacrebleu, one reference per note) and ROUGE F1 on segmented text; tag P / "
             "R = exact-tag precision / recall against the note's own tags; tag Ill = share of generated tags "
             "that no training note has. Constrained decoding draws from the closed sets (the categories; the "
             f"{gen.vocabulary} tags of the training notes, which hold {_pct(gen.tags_reachable)}% of the test "
             "notes' own tags), so its Ill is 0 by construction; \"greedy\" picks token by token (repetition "
             "penalty 1.2), \"pmi λ\" picks token by token by log p(tags | note) − λ·log p(tags | empty note) (the "
             "model's note-free preference removed), \"beam\" ranks 4 paths by their length-normalised "
             "log-probability." + chosen
             + " Baselines: the training notes' most frequent category and tags for every note, and the "
             "category and tags voted by each note's nearest training notes under an embedding. Diversity: "
             "distinct generated tags per note, and the share of notes that got the most common tag list. "
             "Accuracy and tag P / R carry ± the half-width of a 95% bootstrap interval over notes.", ""]
    lines += generation_table(gen)
    return lines + _generation_verdicts(gen)


def ablation_section(metrics: RunMetrics) -> list[str]:
    ab = metrics.tables.get(ABLATION)
    lines = ["## Ablation", ""] + ([_interval_note(ab), ""] if ab else [])
    return lines + ablation_table(metrics.ablation, ab) + (comparison_lines(ab) if ab else [])


README_TABLES = ((COLD, "Cold notes (test pool)"), (FOLDS, "Note splits pooled"), (FULL, "Full corpus"),
                 (WARM, "Warm notes (time split)"))


def _demote(lines: list[str], levels: int = 2) -> list[str]:
    """Headings `levels` deeper, so report sections paste under a README section."""
    return [("#" * levels + line) if line.startswith("#") else line for line in lines]


def render_readme_tables(metrics: RunMetrics) -> str:
    """The README's result blocks of one run: the run line, then per retrieval table its pool and interval note,
    its rule tables (value ± half-width), the comparison sentences and the embedding health; then generation and
    the ablation. The report's own section renderers, without plots and breakdowns (`notellm report --readme`)."""
    meta = metrics.meta
    lines = [f"Run: `{meta.command}` · machine: {meta.machine or '–'} · {_num(meta.seconds, 0)} s · load average "
             f"start/end {meta.loadavg_start or '–'} / {meta.loadavg_end or '–'} · {metrics.data.notes} notes, test "
             f"pool {metrics.data.pool_size}.", ""]
    for key, title in README_TABLES:
        table = metrics.tables.get(key)
        if table:
            lines += [f"#### {title}", "", _interval_note(table), ""]
            lines += _demote(_retrieval_section(table, None, "", breakdowns=False))
    if metrics.generation:
        lines += _demote(generation_section(metrics.generation))
    if metrics.ablation:
        lines += _demote(ablation_section(metrics))
    return "\n".join(lines)


def _generation_verdicts(gen: GenerationReport) -> list[str]:
    """In words: a generator that gives most notes one tag list, and the best baseline beside each model row."""
    out = []
    for r in gen.rows:
        share = r.diversity.get("modal_share")
        if share is not None and share == share and share >= 0.5 and not r.decoding.startswith("baseline"):
            out.append(f"- {r.model} ({r.decoding}) gives {100 * share:.0f}% of the notes the same tag list "
                       f"({', '.join(r.diversity.get('modal_list', [])) or 'empty'}).")
    baselines = [r for r in gen.rows if r.decoding.startswith("baseline")]
    if baselines:
        best = max(baselines, key=lambda r: _nan0(r.hashtags.get("tag_recall")))
        out.append(f"- Best baseline by tag recall: {best.model} ({_pct(best.hashtags.get('tag_recall'))}% tag R, "
                   f"{_pct(best.category.get('acc'))}% category Acc).")
    return out + [""] if out else []


def _nan0(x) -> float:
    return 0.0 if x is None or x != x else float(x)


def write_report(metrics: RunMetrics, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `report.md` (+ `plots/*.png`) and a self-contained `report.html` into `out_dir`."""
    from markdown_it import MarkdownIt

    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)

    def file_link(name: str, png: bytes) -> str:
        (out_dir / "plots" / name).write_bytes(png)
        return f"plots/{name}"

    def data_uri(name: str, png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(metrics, file_link), encoding="utf-8")
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(render_markdown(metrics, data_uri))
    title = html.escape(f"NoteLLM report: {metrics.meta.title}")
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head>\n<body>\n{body}</body></html>\n")
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return md_path, html_path


def metrics_from_file(metrics_path: str | Path) -> RunMetrics:
    """The typed `RunMetrics` of a metrics.json on disk (ValueError naming the field when it does not match)."""
    return RunMetrics.from_dict(json.loads(Path(metrics_path).read_text(encoding="utf-8")))


def write_report_from_file(metrics_path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """`write_report` for a metrics.json on disk (the report folder defaults to the file's folder)."""
    return write_report(metrics_from_file(metrics_path), out_dir or Path(metrics_path).parent)
