"""Import Stack Exchange data dumps (`Posts.xml`, `Comments.xml`, `PostLinks.xml`) as notes, events and links.

Mapping (see /work/shared/data/stackexchange/README.md):
- A question (PostTypeId 1) is a note: id `<site>:<Id>` (e.g. `beer:123`, unique across sites), `title`, `content` =
  the HTML body as plain text (tags dropped, code text kept, entities unescaped, whitespace collapsed), `hashtags`
  = its `Tags`, `category` = the site (folder name minus `.stackexchange.com`), or `<site>/<first tag>` with
  `category_level2="first-tag"`; `created_at` = CreationDate (UTC). Extra columns: `site`, `post_id`, `url`
  (`https://<site host>/q/<Id>`, for the CC BY-SA attribution), `score`, `view_count`.
- Events (behaviour): asking (action `ask`: the question's OwnerUserId at its CreationDate), answering (`answer`:
  the answer's owner, mapped to its question via ParentId) and commenting (`comment`: on the question, or on one of
  its answers, mapped to that answer's question). User ids are per site, `<site>:u<UserId>`: Stack Exchange accounts
  are separate per site, so the same number on two sites is two people.
- Records that carry nothing to import are skipped and counted (never silently): posts/comments without a user
  (deleted accounts), the Community bot (user -1), answers/comments whose question is not in the dump, comments on
  other post types (tag wikis), links that are not between two imported questions or have another LinkTypeId.
- `PostLinks` -> `links.parquet`: note_id_a = PostId, note_id_b = RelatedPostId, `link_type` "linked"
  (LinkTypeId 1) or "duplicate" (3), only between imported questions of the same site.
- XML is streamed with `xml.etree.ElementTree.iterparse`, clearing each element after use.
Questions and events then pass the same validation as `notellm import files` (empty title and content, bad
timestamps, ...), so a bad row is rejected with its file and row like any other input.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import lxml.etree
import lxml.html
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from notellm.data import schema as S
from notellm.data.artifacts import new_manifest, source_entry
from notellm.data.importing import ImportReport, check_out_dir, write_data_folder
from notellm.data.readers import DETAIL, REASON, SOURCE_ROW, DataFileError, RawTable
from notellm.data.validate import FIELD, SOURCE_FILE, Validated, parse_timestamps, validate_events, validate_notes

CategoryLevel2 = Literal["none", "first-tag"]
SITE_SUFFIXES = (".stackexchange.com", ".com")
LINK_TYPES = {"1": "linked", "3": "duplicate"}
COMMUNITY_USER = "-1"
_BLOCK_TAGS = (
    "p",
    "br",
    "li",
    "pre",
    "div",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "hr",
    "ul",
    "ol",
    "table",
)
_TAG_RE = re.compile(r"<([^<>]+)>")


def site_name(folder: str | Path) -> str:
    """`beer.stackexchange.com` -> `beer` (the folder name minus the host suffix)."""
    name = Path(folder).name
    for suffix in SITE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def html_to_text(html: str | None) -> str:
    """Plain text of a post body: tags dropped, code text kept, entities unescaped, whitespace collapsed."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return " ".join(lxml.html.document_fromstring(f"<p>{html}</p>").text_content().split())
    for element in root.iter(*_BLOCK_TAGS):  # keep words of adjacent blocks apart
        element.tail = " " + (element.tail or "")
    return " ".join(root.text_content().split())


def parse_tags(tags: str | None) -> list[str]:
    """`<a><b>` (classic dumps) or `|a|b|` (newer dumps) -> ["a", "b"]."""
    if not tags:
        return []
    found = _TAG_RE.findall(tags) if "<" in tags else tags.split("|")
    return [t.strip() for t in found if t.strip()]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream (1-based row number, attributes) of each <row> of a dump file, freeing parsed elements."""
    position = 0
    try:
        context = ET.iterparse(path, events=("start", "end"))
        _, root = next(context)
        for event, element in context:
            if event == "end" and element.tag == "row":
                position += 1
                yield position, dict(element.attrib)
                element.clear()
                root.clear()  # drop the processed children the root still references
    except ET.ParseError as exc:
        line, column = exc.position
        raise DataFileError(f"{path}: malformed XML at line {line}, column {column}: {exc}") from exc


def _merge(parts: list[Validated], source: str) -> Validated:
    """Concatenate per-file validation results; rejects get a `source_file` column."""
    accepted = pd.concat([p.accepted for p in parts], ignore_index=True)
    rejects = []
    for p in parts:
        if len(p.rejects):
            rej = p.rejects.copy()
            rej.insert(0, SOURCE_FILE, p.source)
            rejects.append(rej)
    rejects_df = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(columns=[SOURCE_FILE, SOURCE_ROW, REASON, DETAIL])
    )
    rejected: Counter[str] = Counter()
    for p in parts:
        rejected.update(p.counts["rejected"])
    counts = {"accepted": len(accepted), "rejected": dict(sorted(rejected.items())), "repaired_bytes": 0}
    return Validated(source, accepted, rejects_df, counts)


def _import_site(
    folder: Path, category_level2: CategoryLevel2, skipped: Counter[str]
) -> tuple[list[Validated], list[Validated], Validated, dict[str, int], list[Path]]:
    site = site_name(folder)
    posts_path = folder / "Posts.xml"
    if not posts_path.is_file():
        raise DataFileError(
            f"{folder}: no Posts.xml; expected a Stack Exchange dump folder like beer.stackexchange.com"
        )
    sources = [posts_path]

    questions: list[dict] = []
    question_rows: list[int] = []
    post_events: list[dict] = []
    post_event_rows: list[int] = []
    answers: list[tuple[int, str, str | None, str | None]] = []  # (row, parent id, user, date)
    answer_parent: dict[str, str] = {}
    for position, row in tqdm(_rows(posts_path), desc=f"{site}: posts", unit=" rows", leave=False):
        kind = row.get("PostTypeId")
        if kind == "1":
            post_id = row.get("Id", "")
            tags = parse_tags(row.get("Tags"))
            category = site if category_level2 == "none" or not tags else f"{site}{S.CATEGORY_SEPARATOR}{tags[0]}"
            questions.append(
                {
                    S.NOTE_ID: f"{site}:{post_id}",
                    S.TITLE: row.get("Title", ""),
                    S.CONTENT: html_to_text(row.get("Body")),
                    S.HASHTAGS: tags,
                    S.CATEGORY: category,
                    S.CREATED_AT: row.get("CreationDate", ""),
                    "site": site,
                    "post_id": post_id,
                    "url": f"https://{folder.name}/q/{post_id}",
                    "score": row.get("Score", ""),
                    "view_count": row.get("ViewCount", ""),
                }
            )
            question_rows.append(position)
            post_events.append(
                {"_post": post_id, "_user": row.get("OwnerUserId"), "_date": row.get("CreationDate"), S.ACTION: "ask"}
            )
            post_event_rows.append(position)
        elif kind == "2":
            answers.append((position, row.get("ParentId", ""), row.get("OwnerUserId"), row.get("CreationDate")))
            answer_parent[row.get("Id", "")] = row.get("ParentId", "")
    question_ids = {q["post_id"] for q in questions}
    for position, parent, user, date in answers:
        post_events.append({"_post": parent, "_user": user, "_date": date, S.ACTION: "answer"})
        post_event_rows.append(position)

    notes_frame = pd.DataFrame(questions, columns=list(questions[0]) if questions else list(S.NOTE_REQUIRED))
    notes_frame[SOURCE_ROW] = np.asarray(question_rows, dtype=np.int64)
    notes = validate_notes(RawTable(str(posts_path), notes_frame))
    accepted_ids = pd.Index(notes.accepted[S.NOTE_ID])

    event_parts = [_events_table(site, str(posts_path), post_events, post_event_rows, question_ids, skipped)]
    comments_path = folder / "Comments.xml"
    n_comments = 0
    if comments_path.is_file():
        sources.append(comments_path)
        comment_events: list[dict] = []
        comment_rows: list[int] = []
        for position, row in tqdm(_rows(comments_path), desc=f"{site}: comments", unit=" rows", leave=False):
            n_comments += 1
            post = row.get("PostId", "")
            if post not in question_ids:
                if post in answer_parent:
                    post = answer_parent[post]
                else:
                    skipped["comment_on_other_post"] += 1
                    continue
            comment_events.append(
                {"_post": post, "_user": row.get("UserId"), "_date": row.get("CreationDate"), S.ACTION: "comment"}
            )
            comment_rows.append(position)
        event_parts.append(
            _events_table(site, str(comments_path), comment_events, comment_rows, question_ids, skipped)
        )
    events = [validate_events(table, accepted_ids) for table in event_parts]

    links = pd.DataFrame(columns=[S.NOTE_ID_A, S.NOTE_ID_B, "link_type", S.CREATED_AT])
    link_rejects = pd.DataFrame(columns=[SOURCE_ROW, REASON, FIELD, DETAIL])
    links_path = folder / "PostLinks.xml"
    if links_path.is_file():
        sources.append(links_path)
        accepted_posts = set(notes.accepted["post_id"]) if "post_id" in notes.accepted else set()  # none accepted
        records = []
        for position, row in _rows(links_path):
            link_type = LINK_TYPES.get(row.get("LinkTypeId", ""))
            a, b = row.get("PostId", ""), row.get("RelatedPostId", "")
            if link_type is None:
                skipped["link_other_type"] += 1
            elif a not in accepted_posts or b not in accepted_posts or a == b:
                skipped["link_not_between_questions"] += 1
            else:
                records.append(
                    {
                        S.NOTE_ID_A: f"{site}:{a}",
                        S.NOTE_ID_B: f"{site}:{b}",
                        "link_type": link_type,
                        S.CREATED_AT: row.get("CreationDate", ""),
                        SOURCE_ROW: position,
                    }
                )
        if records:
            links = pd.DataFrame(records)
            # an unparsable or out-of-range date rejects that link (named by row), not the whole import
            stamps, _, why = parse_timestamps(links[S.CREATED_AT])
            bad = ~pd.isna(why)
            if bad.any():
                link_rejects = pd.DataFrame({SOURCE_ROW: links.loc[bad, SOURCE_ROW].to_numpy(),
                                             REASON: "bad_timestamp", FIELD: S.CREATED_AT, DETAIL: why[bad]})
            links = links.assign(**{S.CREATED_AT: stamps.dt.as_unit("ns")})[~bad]
            before = len(links)
            links = links.drop_duplicates([S.NOTE_ID_A, S.NOTE_ID_B, "link_type"]).reset_index(drop=True)
            if before > len(links):
                skipped["duplicate_link"] += before - len(links)
            links = links.drop(columns=[SOURCE_ROW])
    rejected = {str(k): int(v) for k, v in link_rejects[REASON].value_counts().items()}
    links = Validated(str(links_path), links, link_rejects,
                      {"accepted": len(links), "rejected": rejected, "repaired_bytes": 0})
    site_counts = {
        "questions": len(notes.accepted),
        "answers": len(answers),
        "comments": n_comments,
        "events": sum(len(e.accepted) for e in events),
        "links": len(links.accepted),
    }
    return [notes], events, links, site_counts, sources


def _events_table(
    site: str, source: str, records: list[dict], rows: list[int], question_ids: set[str], skipped: Counter[str]
) -> RawTable:
    """Behaviour records of one file -> a RawTable of canonical event columns, skipping those with no user/note."""
    out, positions = [], []
    for record, position in zip(records, rows, strict=True):
        action, user = record[S.ACTION], record["_user"]
        if record["_post"] not in question_ids:
            skipped[f"{action}_without_question"] += 1
        elif user is None or user == "":
            skipped[f"{action}_without_user"] += 1
        elif user == COMMUNITY_USER:
            skipped[f"{action}_by_community_bot"] += 1
        else:
            out.append(
                {
                    S.USER_ID: f"{site}:u{user}",
                    S.NOTE_ID: f"{site}:{record['_post']}",
                    S.TIMESTAMP: record["_date"] or "",
                    S.ACTION: action,
                }
            )
            positions.append(position)
    frame = pd.DataFrame(out, columns=[S.USER_ID, S.NOTE_ID, S.TIMESTAMP, S.ACTION])
    frame[SOURCE_ROW] = np.asarray(positions, dtype=np.int64)
    return RawTable(source, frame)


def import_stackexchange(
    site_dirs: list[str | Path] | tuple[str | Path, ...],
    out_dir: str | Path,
    *,
    category_level2: CategoryLevel2 = "none",
) -> ImportReport:
    """Import one or more Stack Exchange site folders into one data folder.

    Args:
        site_dirs: site folders (each holding Posts.xml, optionally Comments.xml and PostLinks.xml), or a parent
            folder holding several of them (e.g. the shipped `data/stackexchange`).
        out_dir: the data folder to (over)write.
        category_level2: "first-tag" adds the question's first tag as a second category level (`beer/hops`).

    Raises:
        DataFileError: a folder has no Posts.xml or a file is not well-formed XML.
    """
    if category_level2 not in ("none", "first-tag"):
        raise ValueError(f"category_level2 must be 'none' or 'first-tag', got {category_level2!r}")
    folders: list[Path] = []
    for d in site_dirs:
        d = Path(d)
        if not d.is_dir():
            raise DataFileError(f"{d}: not a folder")
        if (d / "Posts.xml").is_file():
            folders.append(d)
        else:
            children = sorted(c for c in d.iterdir() if (c / "Posts.xml").is_file())
            if not children:
                raise DataFileError(f"{d}: no Posts.xml in it or in its sub-folders")
            folders.extend(children)
    out_dir = Path(out_dir)
    check_out_dir(out_dir, folders)  # before the (long) parse: a refused --out costs nothing
    manifest = new_manifest(
        "notellm import stackexchange",
        {
            "site_dirs": [str(f.resolve()) for f in folders],
            "category_level2": category_level2,
        },
    )
    skipped: Counter[str] = Counter()
    notes_parts, event_parts, link_parts, sites = [], [], [], {}
    for folder in tqdm(folders, desc="sites", unit=" site"):
        notes, events, links, counts, sources = _import_site(folder, category_level2, skipped)
        notes_parts += notes
        event_parts += events
        if len(links.accepted) or len(links.rejects):
            link_parts.append(links)
        sites[site_name(folder)] = counts
        manifest["sources"].extend(source_entry(p) for p in sources)
    manifest["sites"] = sites
    notes_all = _merge(notes_parts, "Posts.xml")
    events_all = _merge(event_parts, "Posts.xml/Comments.xml")
    links_all = _merge(link_parts, "PostLinks.xml") if link_parts else None
    return write_data_folder(out_dir, manifest, notes_all, events_all, links_all, dict(sorted(skipped.items())),
                             inputs=folders)
