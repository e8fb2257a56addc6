"""Stack Exchange import: the seven shipped sites with their real counts, and a planted mini dump.

PYTHONPATH=. python -m pytest tests/data/test_stackexchange.py -q
"""

from __future__ import annotations

import pandas as pd
import pytest

from notellm.data.readers import DataFileError
from notellm.data.stackexchange import html_to_text, import_stackexchange, parse_tags, site_name
from notellm.data.store import load_events, load_links, load_notes, read_manifest

# From /work/shared/data/stackexchange/README.md: site -> (questions, answers, comments, post links).
README_COUNTS = {
    "ai": (264, 415, 0, 0),
    "beer": (1029, 2277, 3509, 148),
    "cardano": (1042, 1496, 1829, 104),
    "coffee": (225, 327, 758, 106),
    "genai": (181, 243, 0, 0),
    "matheducators": (397, 1507, 0, 0),
    "quantumcomputing": (612, 1060, 3413, 327),
}


@pytest.fixture
def shipped(shipped_import):
    return shipped_import  # the session's one import of the shipped dumps (tests/conftest.py)


def test_all_seven_sites_import_with_readme_counts(shipped):
    out, report = shipped
    notes = load_notes(out)
    assert len(notes) == 3750 and report.counts["notes"] == 3750
    assert notes["category"].value_counts().to_dict() == {s: c[0] for s, c in README_COUNTS.items()}
    assert notes["note_id"].is_unique
    assert notes["note_id"].str.fullmatch(r"[a-z]+:\d+").all()
    assert (notes["note_id"].str.split(":").str[0] == notes["site"]).all()
    sites = read_manifest(out)["sites"]
    assert {s: (v["questions"], v["answers"], v["comments"], v["links"]) for s, v in sites.items()} == {
        s: (q, a, c, sites[s]["links"]) for s, (q, a, c, _) in README_COUNTS.items()
    }
    assert report.rejected == {}  # the shipped dumps are clean


def test_every_behaviour_record_is_accounted_for(shipped):
    out, report = shipped
    events = load_events(out)
    actions = events["action"].value_counts().to_dict()
    skipped = report.skipped
    answers = sum(c[1] for c in README_COUNTS.values())
    comments = sum(c[2] for c in README_COUNTS.values())
    links = sum(c[3] for c in README_COUNTS.values())
    assert actions["ask"] + skipped.get("ask_without_user", 0) + skipped.get("ask_by_community_bot", 0) == 3750
    assert actions["answer"] + sum(v for k, v in skipped.items() if k.startswith("answer_")) == answers
    assert actions["comment"] + sum(v for k, v in skipped.items() if k.startswith("comment_")) == comments
    assert len(load_links(out)) + sum(v for k, v in skipped.items() if "link" in k) == links
    assert events["note_id"].isin(set(load_notes(out)["note_id"])).all()
    # user ids are per site: the site prefix of the user equals the site prefix of the note
    assert (events["user_id"].str.split(":").str[0] == events["note_id"].str.split(":").str[0]).all()
    assert events["user_id"].str.fullmatch(r"[a-z]+:u\d+").all()
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_bodies_are_plain_text_and_links_are_typed(shipped):
    out, _ = shipped
    notes = load_notes(out).set_index("note_id")
    assert not notes["content"].str.contains("<p>|&lt;|&quot;", regex=True).any()
    assert notes.loc["ai:1", "title"] == 'What is "backprop"?'
    assert notes.loc["ai:1", "content"].startswith('What does "backprop" mean?')
    assert notes.loc["ai:1", "hashtags"] == ["neural-networks", "definitions"]
    assert notes.loc["ai:1", "url"] == "https://ai.stackexchange.com/q/1"
    links = load_links(out)
    assert set(links["link_type"]) == {"linked", "duplicate"}
    assert links["note_id_a"].isin(notes.index).all() and links["note_id_b"].isin(notes.index).all()


MINI_POSTS = """\ufeff<?xml version="1.0" encoding="utf-8"?>
<posts>
  <row Id="1" PostTypeId="1" CreationDate="2020-01-01T10:00:00.000"
        Body="&lt;p&gt;Use &lt;code&gt;x &amp;lt; 3&lt;/code&gt;&lt;/p&gt;&lt;p&gt;please&lt;/p&gt;"
        OwnerUserId="7" Title="First" Tags="&lt;hops&gt;&lt;ipa&gt;" />
  <row Id="2" PostTypeId="2" ParentId="1" CreationDate="2020-01-01T11:00:00.000" Body="an answer" OwnerUserId="8" />
  <row Id="3" PostTypeId="1" CreationDate="2020-01-02T10:00:00.000" Body="second body" Title="Second" Tags="|malt|" />
  <row Id="4" PostTypeId="2" ParentId="99" CreationDate="2020-01-02T11:00:00.000" Body="orphan" OwnerUserId="8" />
  <row Id="5" PostTypeId="4" CreationDate="2020-01-02T11:00:00.000" Body="tag wiki" OwnerUserId="-1" />
</posts>
"""
MINI_COMMENTS = """<?xml version="1.0" encoding="utf-8"?>
<comments>
  <row Id="1" PostId="2" Text="on the answer" CreationDate="2020-01-01T12:00:00.000" UserId="9" />
  <row Id="2" PostId="3" Text="on the question" CreationDate="2020-01-02T12:00:00.000" />
  <row Id="3" PostId="5" Text="on a wiki" CreationDate="2020-01-02T12:00:00.000" UserId="9" />
</comments>
"""
MINI_LINKS = """<?xml version="1.0" encoding="utf-8"?>
<postlinks>
  <row Id="1" CreationDate="2020-01-03T00:00:00.000" PostId="3" RelatedPostId="1" LinkTypeId="3" />
  <row Id="2" CreationDate="2020-01-03T00:00:00.000" PostId="3" RelatedPostId="2" LinkTypeId="1" />
  <row Id="3" CreationDate="2020-01-03T00:00:00.000" PostId="1" RelatedPostId="3" LinkTypeId="2" />
</postlinks>
"""


@pytest.fixture
def mini_site(tmp_path):
    site = tmp_path / "brew.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_text(MINI_POSTS, encoding="utf-8")
    (site / "Comments.xml").write_text(MINI_COMMENTS, encoding="utf-8")
    (site / "PostLinks.xml").write_text(MINI_LINKS, encoding="utf-8")
    return site


def test_planted_dump_mapping(mini_site, tmp_path):
    out = tmp_path / "out"
    report = import_stackexchange([mini_site], out, category_level2="first-tag")
    notes = load_notes(out).set_index("note_id")
    assert list(notes.index) == ["brew:1", "brew:3"]
    assert notes.loc["brew:1", "content"] == "Use x < 3 please"  # code text kept, entity unescaped
    assert notes.loc["brew:1", "category"] == "brew/hops" and notes.loc["brew:3", "category"] == "brew/malt"
    assert notes.loc["brew:3", "hashtags"] == ["malt"]
    assert notes.loc["brew:1", "created_at"] == pd.Timestamp("2020-01-01T10:00:00Z")
    events = load_events(out)
    assert events[["user_id", "note_id", "action"]].values.tolist() == [
        ["brew:u7", "brew:1", "ask"],
        ["brew:u8", "brew:1", "answer"],
        ["brew:u9", "brew:1", "comment"],
    ]
    assert report.skipped == {
        "answer_without_question": 1,
        "ask_without_user": 1,
        "comment_on_other_post": 1,
        "comment_without_user": 1,
        "link_not_between_questions": 1,
        "link_other_type": 1,
    }
    links = load_links(out)
    assert links[["note_id_a", "note_id_b", "link_type"]].values.tolist() == [["brew:3", "brew:1", "duplicate"]]


def test_bad_inputs_are_named(tmp_path, mini_site):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="empty: no Posts.xml"):
        import_stackexchange([tmp_path / "empty"], tmp_path / "o")
    with pytest.raises(DataFileError, match="not a folder"):
        import_stackexchange([tmp_path / "missing"], tmp_path / "o")
    (mini_site / "Posts.xml").write_text("<posts><row Id='1'", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"Posts.xml: malformed XML at line 1"):
        import_stackexchange([mini_site], tmp_path / "o")


def test_helpers():
    assert site_name("beer.stackexchange.com") == "beer" and site_name("stackoverflow.com") == "stackoverflow"
    assert parse_tags("<a><b-c>") == ["a", "b-c"] and parse_tags("|a|b|") == ["a", "b"] and parse_tags(None) == []
    assert (
        html_to_text("<p>a&amp;b</p><pre><code>f(x)\n  return</code></pre><ul><li>one</li><li>two</li></ul>")
        == "a&b f(x) return one two"
    )
    assert html_to_text("") == "" and html_to_text("plain") == "plain"
