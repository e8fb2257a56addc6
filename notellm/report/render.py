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


def recall_table(retrieval: dict, rule: str) -> list[str]:
    """One row per method: Recall@K for every K, Avg, MRR, NDCG@10, queries (values in %)."""
    results = {name: r[rule] for name, r in retrieval.items() if r.get(rule)}
    if not results:
        return []
    ks = next(iter(results.values()))["ks"]
    header = ["method"] + [f"R@{k}" for k in ks] + ["Avg", "MRR", "NDCG@10", "queries"]
    rows = []
    for name, res in results.items():
        o = res["overall"]
        rows.append([name] + [_pct(o.get(f"recall@{k}")) for k in ks]
                    + [_pct(o["recall_avg"]), _pct(o["mrr"]), _pct(o["ndcg@10"]), str(o["n_queries"])])
    return _table(header, rows)


def breakdown_table(retrieval: dict, rule: str, breakdown: str, ks: tuple[int, ...] = (10, 100)) -> list[str]:
    """Rows = methods, columns = bucket × (R@k for k in ks that exist); bucket sizes in the header."""
    results = {name: r[rule] for name, r in retrieval.items() if r.get(rule) and breakdown in r[rule]["breakdowns"]}
    if not results:
        return []
    first = next(iter(results.values()))
    ks = tuple(k for k in ks if k in first["ks"]) or (first["ks"][-1],)
    buckets = list(first["breakdowns"][breakdown])
    header = ["method"] + [f"{b} R@{k} (n={first['breakdowns'][breakdown][b]['n_queries']})"
                           for b in buckets for k in ks]
    rows = []
    for name, res in results.items():
        bd = res["breakdowns"][breakdown]
        rows.append([name] + [_pct(bd.get(b, {}).get(f"recall@{k}")) for b in buckets for k in ks])
    return _table(header, rows)


def generation_table(generation: dict) -> list[str]:
    """Category (free and constrained decoding) then hashtags (one row per model and decoding)."""
    cat_rows, tag_rows = [], []
    for name, g in generation.items():
        free, cons = g.get("category_free", {}), g.get("category_constrained", {})
        cat_rows.append([name, _pct(free.get("acc")), _pct(free.get("ill")), _pct(cons.get("acc")),
                         _pct(cons.get("ill")), str(free.get("n", "–"))])
        for decoding, key in (("free", "hashtags"), ("constrained", "hashtags_constrained")):
            tags = g.get(key)
            if tags:
                tag_rows.append([name, decoding] + [_pct(tags.get(m)) for m in (
                    "bleu4", "bleu4_corpus", "rouge1", "rouge2", "rougeL", "tag_precision", "tag_recall", "tag_ill")]
                    + [str(tags.get("n", "–"))])
    lines = _table(["model", "category Acc (free)", "Ill (free)", "Acc (constrained)", "Ill (constrained)", "notes"],
                   cat_rows) if cat_rows else []
    if tag_rows:
        lines += _table(["model", "hashtag decoding", "BLEU-4", "BLEU-4 corpus", "ROUGE-1", "ROUGE-2", "ROUGE-L",
                         "tag P", "tag R", "tag Ill", "notes"], tag_rows)
    return lines


def ablation_table(rows: list[dict]) -> list[str]:
    """Paper Tables 5–6 layout: one row per setting, recall then generation metrics (in %)."""
    if not rows:
        return []
    ks = rows[0]["ks"]
    header = ["setting", "steps"] + [f"R@{k}" for k in ks] + ["Avg", "Acc", "Ill", "BLEU-4", "R-1", "R-2", "R-L"]
    body = []
    for r in rows:
        body.append([r["setting"], str(r.get("steps", "–"))] + [_pct(r["recall"].get(f"recall@{k}")) for k in ks]
                    + [_pct(r["recall"].get("recall_avg")), _pct(r.get("acc")), _pct(r.get("ill")),
                       _pct(r.get("bleu4")), _pct(r.get("rouge1")), _pct(r.get("rouge2")), _pct(r.get("rougeL"))])
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
            out.append(f"Constrained decoding: category **{_one_line(ex.get('constrained_category') or '–')}** · "
                       f"hashtags: {tags}")
            out.append("")
        for method, neighbours in ex["neighbours"].items():
            rows = [[str(i + 1), n["title"][:90], n["category"], _num(n["score"]),
                     "✓" if n.get("related") else ""] for i, n in enumerate(neighbours)]
            out.append(f"Top-{len(neighbours)} by **{method}** (✓ = a test pair or explicit link of this note):")
            out.append("")
            out += _table(["#", "title", "category", "score", "related"], rows)
    return out


def render_markdown(metrics: dict, image: Callable[[str, bytes], str]) -> str:
    """The report as Markdown; `image(name, png)` returns the link target for a plot (file path or data URI)."""
    meta, data = metrics.get("meta", {}), metrics.get("data", {})
    lines = [f"# NoteLLM report: {meta.get('title', 'quickstart')}", ""]
    if meta:
        lines += [f"- Command: `{meta.get('command', '')}`",
                  f"- Backbone: `{meta.get('backbone', '')}` · budget {meta.get('budget_minutes', '–')} min · "
                  f"machine: {meta.get('machine', '–')}",
                  f"- Started {meta.get('started', '–')}, this invocation took {_num(meta.get('seconds'), 0)} s "
                  f"(stages reused from earlier runs: {len(meta.get('stages_skipped', []))}); load average "
                  f"start/end: {meta.get('loadavg_start', '–')} / {meta.get('loadavg_end', '–')}"]
        if meta.get("stage_seconds"):
            lines.append("- Compute seconds per stage (whenever it ran): "
                         + ", ".join(f"{k} {v:.0f}" for k, v in meta["stage_seconds"].items()))
        lines.append("")
    if data:
        pairs = data.get("pairs", {})
        lines += ["## Data", "",
                  f"{data.get('notes', '–')} notes, {data.get('events', '–')} events; mined pairs: train "
                  f"{pairs.get('train', 0)}, val {pairs.get('val', 0)}, test {pairs.get('test', 0)}. Test pool: "
                  f"{data.get('pool_size', '–')} notes; explicit links inside the pool: "
                  f"{data.get('links_in_pool', 0)}.", ""]
    if meta.get("budget_plan"):
        lines += ["Time budget plan (seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in meta["budget_plan"].items()),
                  ""]
    retrieval = metrics.get("retrieval", {})
    if retrieval:
        lines += ["## I2I retrieval (Recall@K, %)", "",
                  "Avg = the mean of the Recall@K columns shown (the paper averages R@100 to R@100k; a smaller pool "
                  "only fits smaller K). MRR and NDCG@10 are for the single ground truth of each query.", "",
                  "**Paper rule** (every test pair is a query; candidates = the whole test pool minus the query):", ""]
        lines += recall_table(retrieval, "paper")
        lines += ["**Official-code rule** (pairs de-duplicated so each note is used once; candidates = the pool "
                  "minus every query note):", ""]
        lines += recall_table(retrieval, "code")
        links = recall_table(retrieval, "links")
        if links:
            lines += ["**Explicit links** (Stack Exchange PostLinks inside the pool, both directions, paper rule):",
                      ""] + links
        png = recall_curve_png(retrieval, "paper")
        if png:
            lines += [f"![Recall@K]({image('recall_at_k.png', png)})", ""]
        for name, title in (("exposure", "by ground-truth exposure (low = bottom 30%, high = top 10% by events)"),
                            ("length", "by query-note length (median split)"),
                            ("warm_cold", "warm (query note has training pairs) vs cold"),
                            ("category", "by query-note category")):
            table = breakdown_table(retrieval, "paper", name)
            if table:
                lines += [f"### Breakdown {title}", ""] + table
    warm = metrics.get("warm")
    if warm:
        held = data.get("warm_holdout") or {}
        lines += ["## Warm notes: a time split of the behaviour log (Recall@K, %)", "",
                  f"The log is cut at t0 = {warm['t0']}. Queries: {warm['pairs']} co-occurrences mined from the "
                  f"events after t0 alone, between notes that both had behaviour before t0, and that did not "
                  f"co-occur before t0. Pool: the {warm['pool_size']} notes with behaviour before t0. ItemCF "
                  "learns from the events before t0 only. Training never saw these pairs: for their notes it kept "
                  "only pairs that co-occurred before t0 too"
                  + (f" ({held['train_pairs_held_out']} training pairs held out)" if "train_pairs_held_out" in held
                     else "") + ". The main table above is the cold-start case (no test note has behaviour).", "",
                  "**Paper rule:**", ""]
        lines += recall_table(warm["retrieval"], "paper")
        lines += ["**Official-code rule:**", ""] + recall_table(warm["retrieval"], "code")
    generation = metrics.get("generation", {})
    if generation:
        lines += ["## Generation (%)", "",
                  "Category accuracy = exact match; Ill = share outside the category set. Hashtags: BLEU-4 "
                  "(sacrebleu, one reference per note) and ROUGE F1 on segmented text; tag P / R = exact-tag "
                  "precision / recall against the note's own tags; tag Ill = share of generated tags that no "
                  "training note has. Constrained decoding draws from the closed sets (the categories; the "
                  "training notes' hashtags), so its Ill is 0 by construction.", ""]
        lines += generation_table(generation)
    training = metrics.get("training", {})
    if training:
        lines += ["## Training", ""]
        rows = [[name, str(t.get("steps", "–")), _num(t.get("seconds"), 0), _num(t.get("first_loss")),
                 _num(t.get("final_loss")), _num(t.get("tau"))] for name, t in training.items()]
        lines += _table(["run", "steps", "seconds", "first loss", "final loss", "final tau"], rows)
        png = loss_curve_png(training)
        if png:
            lines += [f"![training loss]({image('training_loss.png', png)})", ""]
    if metrics.get("ablation"):
        lines += ["## Ablation", ""] + ablation_table(metrics["ablation"])
    if metrics.get("feed_plot_png_b64"):
        png = base64.b64decode(metrics["feed_plot_png_b64"])
        lines += ["## Feed diversity frontier", "", f"![feed frontier]({image('feed_frontier.png', png)})", ""]
    if metrics.get("examples"):
        lines += ["## Worked examples", ""] + _examples(metrics["examples"])
    if metrics.get("remarks"):
        lines += ["## Notes", ""] + [f"- {r}" for r in metrics["remarks"]] + [""]
    return "\n".join(lines)


def write_report(metrics: dict, out_dir: str | Path) -> tuple[Path, Path]:
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
    title = html.escape(f"NoteLLM report: {metrics.get('meta', {}).get('title', 'quickstart')}")
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head>\n<body>\n{body}</body></html>\n")
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return md_path, html_path


def write_report_from_file(metrics_path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """`write_report` for a metrics.json on disk (the report folder defaults to the file's folder)."""
    metrics_path = Path(metrics_path)
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    return write_report(metrics, out_dir or metrics_path.parent)
