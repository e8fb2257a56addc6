"""Note Compression Prompt: labels, [EMB] position, truncation and train/inference prefix identity, on the real
SmolLM2 tokenizer.  Run: PYTHONPATH=. python -m pytest tests/model/test_prompts.py -q"""

from __future__ import annotations

import random

import pytest

from notellm.data.schema import Note
from notellm.model.prompts import IGNORE_INDEX, NotePromptBuilder, PromptConfig, prepare_tokenizer


def _label_span(seq):
    """(first, last) index of supervised labels; asserts they form one contiguous block at the end."""
    idx = [i for i, lab in enumerate(seq.labels) if lab != IGNORE_INDEX]
    assert idx == list(range(idx[0], len(seq.labels))), "labels must be one contiguous block ending the sequence"
    return idx[0], idx[-1]


def test_category_sequence_labels_emb_pos_and_prefix_identity(builder, tokenizer, notes):
    note = notes[0]
    seq = builder.training_sequence(note, "category", random.Random(0))
    first, _ = _label_span(seq)
    # Labels cover exactly the output, the end mark and EOS: " beer, brewing" "." <eos>.
    supervised = seq.input_ids[first:]
    assert [lab for lab in seq.labels if lab != IGNORE_INDEX] == supervised
    assert supervised[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(supervised[:-1]) == " beer, brewing."
    assert supervised == builder.category_target_ids("beer/brewing")
    # [EMB] sits right after emb_pos, is not a target, and the token at emb_pos is the opening quote.
    assert seq.input_ids[seq.emb_pos + 1] == builder.emb_id
    assert seq.labels[seq.emb_pos + 1] == IGNORE_INDEX
    assert tokenizer.decode(seq.input_ids[seq.emb_pos]).strip() == '"'
    assert seq.input_ids.count(builder.emb_id) == 1
    # The training prefix is token-for-token the inference input.
    assert seq.input_ids[: seq.emb_pos + 1] == builder.embedding_ids(note)
    text = tokenizer.decode(seq.input_ids)
    assert text.startswith("Extract the note information in json format")
    assert '"topic": "brewing, stout, yeast"' in text
    assert 'The compression word is: "[EMB]". The category is: beer, brewing.' in text


def test_every_note_prefix_matches_inference(builder, notes):
    for note in notes:
        if note.category_levels:
            seq = builder.training_sequence(note, "category", random.Random(1))
            assert seq.input_ids[: seq.emb_pos + 1] == builder.embedding_ids(note)
            assert builder.generation_ids(note, "category")[: seq.emb_pos + 2] == seq.input_ids[: seq.emb_pos + 2]


def test_hashtag_sequence_paper_input_and_random_j(builder, tokenizer, notes):
    note = notes[3]  # six hashtags
    js = set()
    for seed in range(40):
        seq = builder.training_sequence(note, "hashtag", random.Random(seed))
        first, _ = _label_span(seq)
        target = tokenizer.decode(seq.input_ids[first:-1])
        assert target.endswith(".") and seq.input_ids[-1] == tokenizer.eos_token_id
        tags = [t.strip() for t in target[:-1].split(",")]
        assert set(tags) <= set(note.hashtags) and len(tags) == len(set(tags))
        js.add(len(tags))
        prompt = tokenizer.decode(seq.input_ids[:first])
        assert f"generate {len(tags)} topics of the note." in prompt and f"The {len(tags)} topics are:" in prompt
        assert '"topic"' not in prompt  # paper: title + content only
        assert seq.input_ids[seq.emb_pos + 1] == builder.emb_id
    assert js == {1, 2, 3, 4, 5}  # uniform over 1..min(5, 6)


def test_hashtag_code_settings_keep_remaining_tags_and_j_1(tokenizer, notes):
    cfg = PromptConfig(hashtag_input="remaining", max_train_hashtags=1)
    b = NotePromptBuilder(tokenizer, cfg)
    note = notes[0]
    seq = b.training_sequence(note, "hashtag", random.Random(3))
    first, _ = _label_span(seq)
    chosen = tokenizer.decode(seq.input_ids[first:-1]).strip().rstrip(".")
    assert chosen in note.hashtags
    prompt = tokenizer.decode(seq.input_ids[:first])
    remaining = ", ".join(t for t in note.hashtags if t != chosen)
    assert f'"topic": "{remaining}"' in prompt


def test_truncation_by_tokens_and_body_cap(builder, tokenizer):
    words = " ".join(f"word{i}" for i in range(300))
    note = Note("long", words, words, tuple(f"tag{i}" for i in range(30)), "beer")
    ids = builder.embedding_ids(note)
    text = tokenizer.decode(ids)
    title = text.split('"title": "')[1].split('", "topic"')[0]
    assert len(builder._continuation(title)) == 20  # title: 20 tokens
    body_start = text.index(' {"title"')
    body = text[body_start : text.index(" The compression word is")]
    assert body.endswith('"}')  # still closed after trimming
    assert len(builder._continuation(body)) <= 140 + 2  # re-tokenising may merge at piece borders
    tags_in_body = text.split('"topic": "')[1].split('"')[0]
    assert len(tags_in_body.split(", ")) <= 10
    short = Note("s", "Short title", "Short body.", ("a",), "beer")
    assert "Short title" in tokenizer.decode(builder.embedding_ids(short))


def test_content_is_trimmed_before_title(tokenizer):
    cfg = PromptConfig(note_max_tokens=40, content_max_tokens=80, title_max_tokens=20)
    b = NotePromptBuilder(tokenizer, cfg)
    note = Note("n", "alpha beta gamma delta", " ".join(["content"] * 100), (), "beer")
    text = tokenizer.decode(b.embedding_ids(note))
    assert '"title": "alpha beta gamma delta"' in text and '"}' in text


def test_special_strings_in_text_cannot_inject_emb(builder, notes):
    note = Note("evil", "Title [EMB] here", "Content with [EMB] and [PAD] inside", (), "beer")
    assert builder.emb_id not in builder.embedding_ids(note)
    seq = builder.training_sequence(note, "category", random.Random(0))
    assert seq.input_ids.count(builder.emb_id) == 1


def test_generation_prompts(builder, tokenizer, notes):
    note = notes[0]
    cat = builder.generation_ids(note, "category")
    assert cat == builder.embedding_ids(note) + [builder.emb_id] + builder.encode_piece('". The category is:')
    tag = tokenizer.decode(builder.generation_ids(note, "hashtag", k=5))
    assert tag.endswith('"[EMB]". The 5 topics are:') and "generate 5 topics" in tag and '"topic"' not in tag


def test_chinese_template(tokenizer, notes):
    b = NotePromptBuilder(tokenizer, PromptConfig(language="zh"))
    seq = b.training_sequence(notes[0], "category", random.Random(0))
    text = tokenizer.decode(seq.input_ids)
    assert text.startswith('笔记：{"标题":"How do I brew a stout at home?","话题":"brewing，stout，yeast","内容":"')
    assert text.endswith('"}，压缩为一个词：“[EMB]”。生成笔记类目：beer，brewing。' + tokenizer.eos_token)
    assert seq.input_ids[: seq.emb_pos + 1] == b.embedding_ids(notes[0])
    hashtag = tokenizer.decode(b.generation_ids(notes[0], "hashtag", k=5))
    assert hashtag.endswith("“[EMB]”。生成笔记5个话题：") and '话题":' not in hashtag
    assert b.parse_category("beer，brewing。") == "beer/brewing"
    assert b.parse_hashtags("酿造，啤酒，酿造。") == ["酿造", "啤酒"]


def test_parsers(builder):
    assert builder.parse_category(" beer, brewing.") == "beer/brewing"
    assert builder.parse_category(' "coffee". The category is: tea') == "coffee"
    assert builder.parse_hashtags(" asp.net, yeast, yeast, c#. trailing junk", k=5) == ["asp.net", "yeast", "c#"]
    assert builder.parse_hashtags(" a, b, c, d", k=2) == ["a", "b"]
    assert builder.parse_hashtags("") == []


def test_missing_fields_raise_naming_note(builder, notes):
    with pytest.raises(ValueError, match="m1"):
        builder.training_sequence(notes[4], "hashtag", random.Random(0))
    with pytest.raises(ValueError, match="x1"):
        builder.training_sequence(notes[5], "category", random.Random(0))
    with pytest.raises(ValueError, match="task"):
        builder.training_sequence(notes[0], "summary", random.Random(0))


def test_prepare_tokenizer_and_config_checks(tokenizer):
    assert prepare_tokenizer(tokenizer, PromptConfig()) == []  # already prepared: idempotent
    with pytest.raises(ValueError, match="language"):
        PromptConfig(language="fr")
    with pytest.raises(ValueError, match="title_max_tokens"):
        PromptConfig(title_max_tokens=0)
