"""Fuzz and fault suite of issue #13: malformed inputs into every importer and HTTP endpoint, kills and full disks.

    flock /tmp/notellm-heavy.lock python bench/bench_fuzz.py --inputs 1000 --kills 20
    python bench/bench_fuzz.py --inputs 40 --kills 2            # the small sample the tests run

Inputs (hypothesis strategies, seeded, no shrinking database):
- importers: note rows with wrong types, control/bidi characters, lone surrogates, huge and far-away timestamps,
  `javascript:` urls, over-long fields, written as CSV, JSONL and Parquet, plus Stack Exchange `Posts.xml` +
  `PostLinks.xml` with random attributes. Checked: no exception but `DataFileError` (a whole-file problem, named),
  accepted + rejected == rows written (nothing silently dropped), every reject names file, row and field/record.
- HTTP: every route of the service (GET/POST/DELETE, ids with quotes, filter syntax, slashes, control characters,
  random JSON bodies and near-valid notes) on FAISS and milvus-lite. Checked: no 5xx, every 4xx names the
  request field (422 `loc`) or the id / limit; the index still holds every note after each injected Milvus
  filter (nothing deleted by an id).
Faults (each a child process killed with SIGKILL at a random moment, then reopened in this process):
- index writes with compaction every 5 records (acknowledged writes are printed by the child after each returns);
- checkpoint saves (`save_checkpoint` of a small model) and `save_pretrained` of the tiny NoteLLM;
- `notellm import files` into an existing data folder;
- ENOSPC injected into the WAL at random byte budgets (in process), and two processes opening one index folder.
Checked: acknowledged writes lost = 0, every reopen/load succeeds, no corrupt file. Writes
bench/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "serve"))

NOTE_COLUMNS = ["note_id", "title", "content", "hashtags", "category"]


# --- strategies -------------------------------------------------------------------------------------------------
def _strategies():
    from hypothesis import strategies as st

    nasty_text = st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", "   ", "a\u202eb", "\ud800", "x\x00y", "o'brien", "zzz'] or note_id not in ['",
                         'q"d', "back\\slash", "a/related", "%_", "\n", "é" * 300, "x" * 600, "x" * 140_000]),
    )
    cell = st.one_of(nasty_text, st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
                     st.none(), st.booleans(), st.lists(nasty_text, max_size=3))
    stamp = st.one_of(st.integers(min_value=-(10**13), max_value=10**13), st.floats(allow_nan=True),
                      st.sampled_from(["2020-01-01", "yesterday", "9300000000", "1e11", "", "2262-04-12T00:00:00"]))
    url = st.one_of(st.sampled_from(["https://ok.org/1", "javascript:alert(1)", "JAVASCRIPT:x", "//evil.org",
                                     "https://a b", "data:text/html,x", "http://" + "a" * 3000]), nasty_text)
    row = st.fixed_dictionaries({"note_id": cell, "title": cell, "content": cell, "hashtags": cell, "category": cell},
                                optional={"created_at": stamp, "url": url})
    return st, nasty_text, row


# --- importers --------------------------------------------------------------------------------------------------
def _write_rows(rows: list[dict], path: Path, fmt: str) -> None:
    import pandas as pd

    columns = list(dict.fromkeys(NOTE_COLUMNS + [k for r in rows for k in r]))
    if fmt == "jsonl":  # ensure_ascii: lone surrogates travel as \u escapes, as a real client would send them
        path.write_text("".join(json.dumps(r, ensure_ascii=True, default=str) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "csv":
        import csv

        with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="") as handle:  # bad bytes on disk
            writer = csv.writer(handle)
            writer.writerow(columns)
            for r in rows:
                writer.writerow(["" if r.get(c) is None else str(r.get(c)) for c in columns])
    else:
        def arrow_safe(v):
            return None if v is None else str(v).encode("utf-8", "replace").decode("utf-8")

        pd.DataFrame([{c: arrow_safe(r.get(c)) for c in columns} for r in rows]).to_parquet(path, index=False)


def fuzz_importers(n: int, seed: int, work: Path) -> dict:
    from hypothesis import HealthCheck, given, settings

    from notellm.data.readers import DataFileError, read_table
    from notellm.data.validate import validate_notes

    st, _, row = _strategies()
    stats = {"inputs": 0, "rows": 0, "accepted": 0, "rejected": 0, "file_errors": 0, "crashes": [], "dropped": [],
             "unnamed_rejects": []}
    counter = iter(range(10**9))

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(rows=st.lists(row, min_size=1, max_size=6), fmt=st.sampled_from(["csv", "jsonl", "parquet"]))
    def check(rows, fmt):
        path = work / f"fuzz-{next(counter)}.{fmt}"
        try:
            _write_rows(rows, path, fmt)
        except (ValueError, TypeError, OverflowError, UnicodeError) as exc:  # a file pyarrow cannot even write
            del exc
            return
        stats["inputs"] += 1
        stats["rows"] += len(rows)
        try:
            validated = validate_notes(read_table(path))
        except DataFileError as exc:
            stats["file_errors"] += 1
            if str(path) not in str(exc):
                stats["unnamed_rejects"].append(str(exc)[:200])
            return
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            stats["crashes"].append(f"{fmt}: {type(exc).__name__}: {exc}"[:300])
            return
        accepted, rejected = len(validated.accepted), len(validated.rejects)
        stats["accepted"] += accepted
        stats["rejected"] += rejected
        if accepted + rejected != len(rows):
            stats["dropped"].append(f"{fmt}: {len(rows)} rows, {accepted} accepted + {rejected} rejected")
        for message in validated.messages(limit=rejected):
            if str(path) not in message or " row " not in message or ("field '" not in message
                                                                      and "record" not in message):
                stats["unnamed_rejects"].append(message[:200])
        path.unlink()

    check()
    stats["inputs"] += fuzz_stackexchange(max(2, n // 10), seed, work, stats)
    return stats


def fuzz_stackexchange(n: int, seed: int, work: Path, stats: dict) -> int:
    """Random Posts.xml/PostLinks.xml attributes: every question row is accepted or rejected, links too."""
    from xml.sax.saxutils import quoteattr

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from notellm.data.readers import DataFileError
    from notellm.data.stackexchange import import_stackexchange

    printable = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
    date = st.one_of(st.sampled_from(["2020-01-01T10:00:00.000", "yesterday", "", "99999-01-01", "2020-13-45"]),
                     printable)
    post = st.fixed_dictionaries({"Id": st.integers(1, 6).map(str), "PostTypeId": st.sampled_from(["1", "2", "x"]),
                                  "CreationDate": date, "Title": printable, "Body": printable,
                                  "Tags": printable, "OwnerUserId": st.sampled_from(["7", "", "-1", "x"])})
    link = st.fixed_dictionaries({"Id": st.integers(1, 9).map(str), "PostId": st.integers(1, 6).map(str),
                                  "RelatedPostId": st.integers(1, 6).map(str), "CreationDate": date,
                                  "LinkTypeId": st.sampled_from(["1", "3", "9"])})
    counter = iter(range(10**9))
    done = [0]

    def xml(tag: str, rows: list[dict]) -> str:
        body = "".join("  <row " + " ".join(f"{k}={quoteattr(v)}" for k, v in r.items()) + " />\n" for r in rows)
        return f'<?xml version="1.0" encoding="utf-8"?>\n<{tag}>\n{body}</{tag}>\n'

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(posts=st.lists(post, min_size=1, max_size=6), links=st.lists(link, max_size=4))
    def check(posts, links):
        site = work / f"se-{next(counter)}" / "fuzz.stackexchange.com"
        site.mkdir(parents=True)
        (site / "Posts.xml").write_text(xml("posts", posts), encoding="utf-8")
        (site / "PostLinks.xml").write_text(xml("postlinks", links), encoding="utf-8")
        done[0] += 1
        try:
            report = import_stackexchange([site], site.parent / "out")
        except DataFileError:
            stats["file_errors"] += 1
            return
        except Exception as exc:  # noqa: BLE001
            stats["crashes"].append(f"stackexchange: {type(exc).__name__}: {exc}"[:300])
            return
        questions = sum(p["PostTypeId"] == "1" for p in posts)
        got = report.counts.get("notes", 0) + sum(report.rejected.get("notes", {}).values())
        if got != questions:
            stats["dropped"].append(f"stackexchange: {questions} questions, {got} accounted for")
        stats["rows"] += questions

    check()
    return done[0]


# --- HTTP -------------------------------------------------------------------------------------------------------
def fuzz_http(n: int, seed: int, backend: str, work: Path) -> dict:
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from serve_testkit import HashingEmbedder, planted_notes

    from notellm.serve.app import create_app
    from notellm.serve.config import ServeConfig
    from notellm.serve.store import LocalNoteIndex

    _, nasty_text, _ = _strategies()
    embedder, notes = HashingEmbedder(dim=32), planted_notes()
    folder = LocalNoteIndex.create(work / f"index-{backend}", notes, embedder.embed(notes))
    if backend == "faiss":
        index = LocalNoteIndex.open(folder, compact_every=50)
    else:
        from notellm.serve.milvus import MilvusNoteIndex

        index = MilvusNoteIndex.open(str(work / "milvus.db"), "fuzz", seed_from=folder)
    stats = {"inputs": 0, "unsendable": 0, "by_status": {}, "server_errors": [], "unnamed_4xx": [], "lost_notes": 0}
    planted = {n.note_id for n in notes}
    json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                        nasty_text), lambda inner: st.lists(inner, max_size=3)
                              | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
    note = st.fixed_dictionaries({"note_id": nasty_text}, optional={
        "title": st.one_of(nasty_text, st.just("t" * 1001)), "content": nasty_text,
        "hashtags": st.one_of(st.lists(nasty_text, max_size=70), json_value), "category": nasty_text,
        "url": st.sampled_from(["https://ok.org", "javascript:alert(1)", "x" * 3000]), "extra": json_value})
    body = st.one_of(json_value, st.fixed_dictionaries({"notes": st.lists(note, max_size=10)}),
                     st.fixed_dictionaries({"task": st.sampled_from(["hashtags", "category", "x"])}, optional={
                         "note_ids": st.lists(nasty_text, max_size=10), "notes": st.lists(note, max_size=3),
                         "k": st.integers(-5, 50), "vocabulary": st.lists(nasty_text, max_size=5),
                         "categories": st.lists(nasty_text, max_size=5)}))
    request = st.one_of(
        st.tuples(st.just("GET"), st.sampled_from(["/notes/{}", "/notes/{}/related"]), nasty_text,
                  st.dictionaries(st.sampled_from(["k", "diversify", "q", "limit"]),
                                  st.one_of(nasty_text, st.integers(-10, 10**6).map(str)), max_size=3), st.none()),
        st.tuples(st.just("GET"), st.sampled_from(["/notes", "/health", "/metrics", "/", "/static/app.js"]),
                  st.just(""), st.dictionaries(st.sampled_from(["q", "limit"]), nasty_text, max_size=2), st.none()),
        st.tuples(st.just("DELETE"), st.just("/notes/{}"), nasty_text, st.just({}), st.none()),
        st.tuples(st.just("POST"), st.sampled_from(["/notes", "/embed", "/generate"]), st.just(""), st.just({}), body),
    )

    def named(response) -> bool:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            return False
        if isinstance(detail, list):
            return all(isinstance(e, dict) and e.get("loc") for e in detail)
        return isinstance(detail, str) and len(detail) > 5

    from urllib.parse import quote

    app = create_app(index, embedder, ServeConfig(max_notes_per_request=8, embed_max_wait_ms=1.0))
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:

        @settings(max_examples=n, database=None, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(req=request)
        def check(req):
            method, template, note_id, params, payload = req
            path = template.format(quote(note_id.encode("utf-8", "surrogatepass"), safe="")) if "{}" in template \
                else template
            if params:  # encoded by hand: a lone surrogate goes out as the (invalid) UTF-8 bytes a raw client sends
                path += "?" + "&".join(f"{quote(k)}={quote(str(v).encode('utf-8', 'surrogatepass'), safe='')}"
                                       for k, v in params.items())
            content = None if payload is None else json.dumps(payload, ensure_ascii=True)
            headers = {"content-type": "application/json"} if content is not None else {}
            try:
                response = client.request(method, path, content=content, headers=headers)
            except Exception as exc:  # noqa: BLE001 - a crash of the app (TestClient re-raises nothing: 500s)
                if type(exc).__name__ == "InvalidURL":  # the client refuses to send a URL over 65,536 characters
                    stats["unsendable"] += 1
                    return
                stats["inputs"] += 1
                stats["server_errors"].append(f"{type(exc).__name__}: {exc} ({method} {path[:100]})"[:300])
                return
            stats["inputs"] += 1
            code = response.status_code
            stats["by_status"][str(code)] = stats["by_status"].get(str(code), 0) + 1
            if code >= 500:
                stats["server_errors"].append(f"{code} {response.text[:200]} ({method} {path[:100]} "
                                              f"{content and content[:120]})")
            elif 400 <= code < 500 and not named(response):
                stats["unnamed_4xx"].append(f"{method} {path}: {code} {response.text[:200]}")

        check()
        remaining = {n.note_id for n in index.get_many(sorted(planted)) if n is not None}
        # planted notes may be deleted only by their exact id; the fuzzer's ids are never planted ones
        stats["lost_notes"] = len(planted - remaining)
    if backend == "faiss":
        index.close()
    else:
        index._client.drop_collection("fuzz")
        index.close()
    return stats


# --- faults -----------------------------------------------------------------------------------------------------
def _child(kind: str, folder: str) -> None:
    """Work loops run in a child process that the parent kills; each acknowledged step is printed and flushed."""
    folder = Path(folder)
    if kind == "index":
        from serve_testkit import HashingEmbedder

        from notellm.data.schema import Note
        from notellm.serve.store import LocalNoteIndex

        embedder = HashingEmbedder(dim=16)
        index = LocalNoteIndex.open(folder, compact_every=5)  # compactions run under the kill too
        for i in range(10**6):  # "try" before each write: the one in flight at the kill may land or not
            note = Note(note_id=f"k{os.getpid()}-{i}", title=f"note {i}", content="x")
            print(f"try upsert {note.note_id}", flush=True)
            index.upsert([note], embedder.embed([note]))
            print(f"upsert {note.note_id}", flush=True)
            if i % 3 == 2:
                victim = f"k{os.getpid()}-{i - 1}"
                print(f"try delete {victim}", flush=True)
                index.delete(victim)
                print(f"delete {victim}", flush=True)
    elif kind == "checkpoint":
        import torch
        from accelerate import Accelerator

        from notellm.train.checkpoint import RunState, save_checkpoint, track_state_as_json

        accelerator = Accelerator(cpu=True)
        model = torch.nn.Linear(64, 64)
        optimizer = torch.optim.AdamW(model.parameters())
        model, optimizer = accelerator.prepare(model, optimizer)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        state = RunState()
        track_state_as_json(accelerator, scheduler, state, {"seed": 0})
        for step in range(1, 10**6):
            with torch.no_grad():
                model.weight.fill_(float(step))
            state.step = step
            save_checkpoint(accelerator, folder, step, keep=2)
            print(f"saved {step}", flush=True)
    elif kind == "pretrained":
        import torch

        from notellm.model.notellm import NoteLLM, NoteLLMConfig

        model = NoteLLM.from_backbone(NoteLLMConfig(backbone=str(folder / "backbone"), emb_dim=16))
        for version in range(1, 10**6):
            with torch.no_grad():
                model.tau.fill_(float(version))
            model.save_pretrained(folder / "model")
            print(f"saved {version}", flush=True)
    elif kind == "import":
        from notellm.data.importing import import_files

        for version in range(1, 10**6):
            notes = folder / "in" / "notes.csv"
            notes.write_text("note_id,title,content,hashtags,category\n" +
                             "".join(f"v{version}-{i},t,c,h,x\n" for i in range(50)), encoding="utf-8")
            import_files(notes, None, folder / "data")
            print(f"imported {version}", flush=True)


def _kill_child(kind: str, folder: Path, rng: random.Random, min_acks: int = 1, max_wait: float = 60.0) -> list[str]:
    """Start a child loop, SIGKILL it after a random number of acknowledged steps; returns its acknowledgements."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(folder)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    target = min_acks + rng.randrange(0, 6)
    lines: list[str] = []
    deadline = time.monotonic() + max_wait
    while len(lines) < target and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    time.sleep(rng.uniform(0.0, 0.05))  # land anywhere inside the next step
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    lines += [line for line in rest.splitlines() if line.strip()]  # acknowledged before the signal arrived
    return lines


def fault_index_kills(rounds: int, work: Path, rng: random.Random) -> dict:
    from serve_testkit import HashingEmbedder, planted_notes

    from notellm.serve.store import LocalNoteIndex

    notes = planted_notes()
    folder = LocalNoteIndex.create(work / "kill-index", notes, HashingEmbedder(dim=16).embed(notes))
    upserted, deleted, lost, acked, failures = set(), set(), 0, 0, []
    for _ in range(rounds):
        in_flight = None
        for line in _kill_child("index", folder, rng, min_acks=6):
            words = line.split(" ")
            if words[0] == "try":
                in_flight = words[2]
                continue
            in_flight = None
            (upserted if words[0] == "upsert" else deleted).add(words[1])
        if in_flight is not None:  # the write cut by the kill was never acknowledged: either outcome is allowed
            upserted.discard(in_flight)
            deleted.discard(in_flight)
        try:
            index = LocalNoteIndex.open(folder, compact_every=0)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"reopen: {type(exc).__name__}: {exc}")
            continue
        missing = sorted(i for i in upserted - deleted if index.get(i) is None)
        present = sorted(i for i in deleted if index.get(i) is not None)
        if missing or present:
            failures.append(f"after kill: acknowledged upserts missing {missing[:5]}, deletes undone {present[:5]}")
        lost += len(missing) + len(present)
        upserted -= set(missing)  # count each loss once, not again after every later kill
        deleted -= set(present)
        acked = len(upserted) + len(deleted) + lost
        index.close()
    return {"kills": rounds, "acknowledged": acked, "lost": lost, "failed_restarts": failures}


def fault_checkpoint_kills(rounds: int, work: Path, rng: random.Random) -> dict:
    import json as _json

    from notellm.train.checkpoint import STATE_FILE, checkpoint_dirs

    folder = work / "kill-checkpoint"
    folder.mkdir()
    acked, lost, failures = 0, 0, []
    for _ in range(rounds):
        lines = _kill_child("checkpoint", folder, rng)
        last = max((int(x.split()[1]) for x in lines), default=0)
        acked += len(lines)
        dirs = checkpoint_dirs(folder)
        newest = int(dirs[-1].name.split("-")[1]) if dirs else 0
        if newest < last:
            lost += 1
        for d in dirs:  # every published checkpoint is complete and loadable without unpickling
            try:
                from safetensors.torch import load_file

                weights = load_file(str(d / "model.safetensors"))
                state = _json.loads((d / STATE_FILE).read_text())
                if int(state["run"]["step"]) != int(d.name.split("-")[1]) or not len(weights):
                    failures.append(f"{d.name}: inconsistent")
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{d.name}: {type(exc).__name__}: {exc}"[:200])
    return {"kills": rounds, "acknowledged": acked, "lost": lost, "corrupt": failures}


def fault_pretrained_kills(rounds: int, work: Path, rng: random.Random) -> dict:
    from notellm.model.backbone import create_tiny_backbone
    from notellm.model.notellm import NoteLLM

    folder = work / "kill-pretrained"
    folder.mkdir()
    create_tiny_backbone(folder / "backbone")
    acked, lost, failures = 0, 0, []
    for _ in range(rounds):
        lines = _kill_child("pretrained", folder, rng, max_wait=120)
        acked += len(lines)
        if not (folder / "model").exists():
            if lines:
                lost += 1
            continue
        try:
            version = float(NoteLLM.from_pretrained(folder / "model").tau.item())
            if lines and version < int(lines[-1].split()[1]):
                lost += 1
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"kills": rounds, "acknowledged": acked, "lost": lost, "corrupt": failures}


def fault_import_kills(rounds: int, work: Path, rng: random.Random) -> dict:
    from notellm.data.artifacts import read_manifest
    from notellm.data.store import load_notes

    folder = work / "kill-import"
    (folder / "in").mkdir(parents=True)
    acked, lost, failures = 0, 0, []
    for _ in range(rounds):
        lines = _kill_child("import", folder, rng)
        acked += len(lines)
        if not (folder / "data").exists():
            lost += bool(lines)
            continue
        try:
            manifest = read_manifest(folder / "data")
            ids = load_notes(folder / "data")["note_id"]
            versions = {i.split("-")[0] for i in ids}
            if len(ids) != manifest["counts"]["notes"] or len(versions) != 1:
                failures.append(f"mixed or short folder: {sorted(versions)}, {len(ids)} notes")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
    return {"kills": rounds, "acknowledged": acked, "lost": lost, "corrupt": failures}


def fault_enospc(rounds: int, work: Path, rng: random.Random) -> dict:
    from serve_testkit import HashingEmbedder, planted_notes

    from notellm.data.schema import Note
    from notellm.serve.store import LocalNoteIndex

    embedder, notes = HashingEmbedder(dim=16), planted_notes()
    folder = LocalNoteIndex.create(work / "enospc", notes, embedder.embed(notes))
    real_write, real_truncate = os.write, os.ftruncate
    acked, refused, lost, resurrected, failures = set(), set(), 0, 0, []
    for r in range(rounds):
        index = LocalNoteIndex.open(folder, compact_every=0)
        budget = [rng.randrange(0, 3000)]  # bytes before the disk is full: mid-record or between records
        truncate_fails = rng.random() < 0.3

        def full_disk(fd, data, budget=budget):
            if budget[0] <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = real_write(fd, bytes(data)[: budget[0]])
            budget[0] -= n
            return n

        def broken_truncate(fd, length):
            raise OSError(errno.EIO, "I/O error")

        os.write = full_disk
        if truncate_fails:
            os.ftruncate = broken_truncate
        try:
            for i in range(6):
                note = Note(note_id=f"e{r}-{i}", title="t", content="c")
                try:
                    index.upsert([note], embedder.embed([note]))
                    acked.add(note.note_id)
                except OSError:
                    refused.add(note.note_id)
        finally:
            os.write, os.ftruncate = real_write, real_truncate
        index._wal.close()
        index._release_lock()  # the process dies
        try:
            again = LocalNoteIndex.open(folder, compact_every=0)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        lost += sum(again.get(i) is None for i in acked)
        resurrected += sum(again.get(i) is not None for i in refused)
        again.close()
    return {"rounds": rounds, "acknowledged": len(acked), "refused": len(refused), "lost": lost,
            "refused_but_present": resurrected, "failed_restarts": failures}


def fault_two_servers(work: Path) -> dict:
    from serve_testkit import HashingEmbedder, planted_notes

    from notellm.data.schema import Note
    from notellm.serve.store import IndexLockedError, LocalNoteIndex

    embedder, notes = HashingEmbedder(dim=16), planted_notes()
    folder = LocalNoteIndex.create(work / "two", notes, embedder.embed(notes))
    first = LocalNoteIndex.open(folder, compact_every=3)
    acked = []
    for i in range(10):
        note = Note(note_id=f"first-{i}", title="t", content="c")
        first.upsert([note], embedder.embed([note]))
        acked.append(note.note_id)
    code = f"from notellm.serve.store import LocalNoteIndex; LocalNoteIndex.open({str(folder)!r})"
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    refused = second.returncode != 0 and IndexLockedError.__name__ in second.stderr
    for i in range(10, 20):
        note = Note(note_id=f"first-{i}", title="t", content="c")
        first.upsert([note], embedder.embed([note]))
        acked.append(note.note_id)
    first.close()
    again = LocalNoteIndex.open(folder)
    lost = sum(again.get(i) is None for i in acked)
    again.close()
    return {"second_refused": refused, "acknowledged": len(acked), "lost": lost}


# --- main -------------------------------------------------------------------------------------------------------
SECTIONS = ("importers", "http_faiss", "http_milvus", "faults")


def run(inputs: int, kills: int, seed: int = 0, work: Path | None = None, sections=SECTIONS,
        on_section=None) -> dict:
    """Run the chosen sections; `on_section(result)` is called after each, so a cut-off run keeps what it did."""
    rng = random.Random(seed)
    warnings.filterwarnings("ignore")
    result: dict = {}
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notellm-fuzz-")))
        for name in ("imp", "http", "faults"):
            (work / name).mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        steps = {
            "importers": lambda: fuzz_importers(inputs, seed, work / "imp"),
            "http_faiss": lambda: fuzz_http(inputs, seed, "faiss", work / "http"),
            "http_milvus": lambda: fuzz_http(inputs, seed, "milvus", work / "http"),
            "faults": lambda: {
                "kill_index_writes_and_compaction": fault_index_kills(kills, work / "faults", rng),
                "kill_checkpoint_save": fault_checkpoint_kills(kills, work / "faults", rng),
                "kill_save_pretrained": fault_pretrained_kills(kills, work / "faults", rng),
                "kill_import": fault_import_kills(kills, work / "faults", rng),
                "enospc_wal": fault_enospc(kills, work / "faults", rng),
                "two_servers_one_folder": fault_two_servers(work / "faults"),
            },
        }
        for name in sections:
            section_started = time.perf_counter()
            result[name] = steps[name]()
            result.setdefault("seconds", {})[name] = round(time.perf_counter() - section_started, 1)
            if on_section is not None:
                on_section(result)
        result["seconds"]["total"] = round(time.perf_counter() - started, 1)
    return result


def summary(result: dict) -> dict:
    empty_imp = {"inputs": 0, "rows": 0, "crashes": [], "dropped": [], "unnamed_rejects": []}
    imp, faults = result.get("importers", empty_imp), result.get("faults", {})
    https = [result[k] for k in ("http_faiss", "http_milvus") if k in result]
    return {
        "sections": [k for k in SECTIONS if k in result],
        "inputs_tried": imp["inputs"] + sum(h["inputs"] for h in https),
        "importer_inputs": imp["inputs"], "importer_rows": imp["rows"],
        "http_requests": sum(h["inputs"] for h in https),
        "crashes": len(imp["crashes"]), "responses_5xx": sum(len(h["server_errors"]) for h in https),
        "rows_silently_dropped": len(imp["dropped"]),
        "rejections_not_naming_where": len(imp["unnamed_rejects"]) + sum(len(h["unnamed_4xx"]) for h in https),
        "notes_lost_to_requests": sum(h["lost_notes"] for h in https),
        "faults_injected": sum(f.get("kills", f.get("rounds", 1)) for f in faults.values()),
        "acknowledged_writes": sum(f["acknowledged"] for f in faults.values()),
        "acknowledged_lost": sum(f["lost"] for f in faults.values()),
        "refused_writes_resurrected": faults.get("enospc_wal", {}).get("refused_but_present", 0),
        "failed_restarts_or_corrupt": sum(len(f.get("failed_restarts", f.get("corrupt", [])))
                                          for f in faults.values()),
        "second_server_refused": faults.get("two_servers_one_folder", {}).get("second_refused"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000,
                        help="Generated inputs per target (importers, each backend).")
    parser.add_argument("--kills", type=int, default=20, help="Kills (or ENOSPC rounds) per fault kind.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"Comma-separated subset of {SECTIONS}.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    def save(result: dict) -> None:
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
        payload = {"command": " ".join(sys.argv), "loadavg_after": load, "summary": summary(result),
                   "details": result}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    result = run(args.inputs, args.kills, args.seed, sections=sections, on_section=save)
    print(json.dumps(summary(result), indent=2))
    print(f"wrote {args.out} ({result['seconds']} s)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
