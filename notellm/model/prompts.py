"""The Note Compression Prompt (paper §2): one builder for training, embedding and generation sequences.

    [BOS]<instruction> <note> The compression word is: "[EMB]". <guidance> <output>.[EOS]

Choices made here (docs/method.md §2, §7):
- Two templates. `en` (default) follows the paper's §2.1 wording, instruction prefix included; `zh` is the official
  code's short Chinese form, no instruction prefix. Both have a category and a hashtag ("topics") variant.
- Every sequence is built from token ids by concatenating separately tokenised pieces. Only the first piece is
  tokenised as the start of a text (with BOS if the tokenizer uses one); every later piece is tokenised as a
  continuation (no BOS, no SentencePiece dummy prefix "▁"). The embedding input is therefore a token-for-token
  prefix of the category training sequence; the official code drops a different number of leading ids at training
  and at inference and so feeds a stray "▁" at inference only.
- Note fields are truncated by TOKENS, as the paper says (the code truncates characters): title 20, content 80,
  hashtag field 32 tokens, and the whole note body (the JSON-like part) at most 140 tokens (the code's cap), trimming
  content first, then hashtags, then the title, so the body always stays well formed. Whitespace is collapsed and
  quotes escaped JSON-style; the literal [EMB]/[PAD] strings are removed from user text so a note cannot inject them.
- Hashtag prompt input is title + content only (paper) by default; `hashtag_input: remaining` keeps the tags that are
  not targets (official code). The number of target tags j is drawn uniformly from 1..min(max_train_hashtags, #tags)
  (paper: "randomly"); `max_train_hashtags: 1` reproduces the code, which always used j=1 to save memory. We default
  to 5 because generation asks for j=5 (the code's test setting), which a j=1-trained model never saw, and our
  backbones are small enough for the longer targets.
- Category target: all hierarchy levels (ours have at most two) joined by the template's separator.
- Labels cover exactly the output tokens, the end mark ("." / "。") and EOS; everything else, [EMB] included, is -100.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Literal

from notellm.data.schema import CATEGORY_SEPARATOR, Note

IGNORE_INDEX = -100
Task = Literal["category", "hashtag"]


@dataclass(frozen=True)
class PromptTemplate:
    """The literal text pieces of one language's template (see the module docstring for the layout)."""

    category_instruction: str  # "" = no instruction prefix
    hashtag_instruction: str  # may contain {j}
    note_open: str  # opens the note body up to the title value
    topic_key: str  # closes the title value, opens the hashtag value
    content_key: str  # closes the previous value, opens the content value
    note_close: str  # closes the note body
    compress: str  # ends right before [EMB]; the last token of this piece is the embedding position
    category_guidance: str  # follows [EMB]: closing quote + guidance
    hashtag_guidance: str  # may contain {j}
    output_prefix: str  # put before the output text (a space in English)
    separator: str  # joins category levels and hashtags, in targets and in the note's hashtag field
    end: str  # closes the output, before EOS


TEMPLATES: dict[str, PromptTemplate] = {
    "en": PromptTemplate(
        category_instruction="Extract the note information in json format, compress it into one word for "
        "recommendation, and generate the category of the note.",
        hashtag_instruction="Extract the note information in json format, compress it into one word for "
        "recommendation, and generate {j} topics of the note.",
        note_open=' {"title": "',
        topic_key='", "topic": "',
        content_key='", "content": "',
        note_close='"}',
        compress=' The compression word is: "',
        category_guidance='". The category is:',
        hashtag_guidance='". The {j} topics are:',
        output_prefix=" ",
        separator=", ",
        end=".",
    ),
    "zh": PromptTemplate(
        category_instruction="",
        hashtag_instruction="",
        note_open='笔记：{"标题":"',
        topic_key='","话题":"',
        content_key='","内容":"',
        note_close='"}',
        compress="，压缩为一个词：“",
        category_guidance="”。生成笔记类目：",
        hashtag_guidance="”。生成笔记{j}个话题：",
        output_prefix="",
        separator="，",
        end="。",
    ),
}


@dataclass
class PromptConfig:
    """How notes become token sequences (paper §2; method doc §1.2, §2.2)."""

    language: Literal["en", "zh"] = "en"
    """Template: `en` = the paper's English wording (default), `zh` = the official code's Chinese prompt."""
    title_max_tokens: int = 20
    """Title truncated to this many tokens (paper: 20)."""
    content_max_tokens: int = 80
    """Content truncated to this many tokens (paper: 80)."""
    topic_max_tokens: int = 32
    """The hashtag field inside the note body is truncated to this many tokens."""
    note_max_tokens: int = 140
    """Cap on the whole note body (JSON-like part) in tokens (code: 140); content is trimmed first."""
    max_input_hashtags: int = 10
    """At most this many hashtags are written into the note body (code: first 10)."""
    hashtag_input: Literal["none", "remaining"] = "none"
    """Hashtag-prompt input: `none` = title + content only (paper); `remaining` = keep non-target tags (code)."""
    max_train_hashtags: int = 5
    """Training j is uniform in 1..min(this, #tags); 1 reproduces the official code."""
    emb_token: str = "[EMB]"
    """The compression token added to the vocabulary (a normal added token, as in the code)."""
    pad_token: str = "[PAD]"
    """Pad token added only if the tokenizer has none."""

    def __post_init__(self) -> None:
        if self.language not in TEMPLATES:
            raise ValueError(f"language must be one of {sorted(TEMPLATES)}, got {self.language!r}")
        for name in ("title_max_tokens", "content_max_tokens", "topic_max_tokens", "max_train_hashtags"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_input_hashtags < 0:
            raise ValueError(f"max_input_hashtags must be >= 0, got {self.max_input_hashtags}")
        if self.note_max_tokens < 16:
            raise ValueError(
                f"note_max_tokens must be >= 16 (room for the body's own punctuation), got {self.note_max_tokens}"
            )
        if self.hashtag_input not in ("none", "remaining"):
            raise ValueError(f"hashtag_input must be 'none' or 'remaining', got {self.hashtag_input!r}")
        if not self.emb_token or not self.pad_token or self.emb_token == self.pad_token:
            raise ValueError("emb_token and pad_token must be non-empty and different")

    @property
    def template(self) -> PromptTemplate:
        return TEMPLATES[self.language]


@dataclass
class TrainingSequence:
    """One training sequence: `input_ids[emb_pos + 1]` is [EMB]; labels are -100 except output + end + EOS."""

    input_ids: list[int]
    labels: list[int]
    emb_pos: int
    task: str  # "category" | "hashtag" | "none" (embedding only, no generation target)


def prepare_tokenizer(tokenizer, cfg: PromptConfig) -> list[str]:
    """Add [EMB] (a normal added token, like the code) and a pad token if missing; return the tokens added."""
    added = []
    if cfg.emb_token not in tokenizer.get_vocab():
        tokenizer.add_tokens([cfg.emb_token])
        added.append(cfg.emb_token)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": cfg.pad_token})
        added.append(cfg.pad_token)
    return added


class NotePromptBuilder:
    """Builds token-id sequences for embedding, training (GCL + CSFT) and generation from `Note`s.

    Args:
        tokenizer: A HF tokenizer already prepared with `prepare_tokenizer` (holds [EMB] and a pad token).
        cfg: The prompt configuration.
    """

    def __init__(self, tokenizer, cfg: PromptConfig | None = None) -> None:
        self.tokenizer = tokenizer
        self.cfg = cfg or PromptConfig()
        self.template = self.cfg.template
        vocab = tokenizer.get_vocab()
        if self.cfg.emb_token not in vocab:
            raise ValueError(f"tokenizer has no {self.cfg.emb_token!r} token: call prepare_tokenizer(tokenizer, cfg)")
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no EOS token; NoteLLM targets end with EOS")
        self.emb_id: int = vocab[self.cfg.emb_token]
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self._bos = self._leading_bos()
        self._sentinel = tokenizer("\n", add_special_tokens=False).input_ids
        self._cache: dict[tuple[str, bool], list[int]] = {}

    # --- tokenisation of pieces -------------------------------------------------------------------------------
    def _leading_bos(self) -> list[int]:
        """[BOS] if the tokenizer puts one in front of a text (Llama-2, Gemma), else [] (SmolLM2, Qwen2)."""
        with_special = self.tokenizer("a", add_special_tokens=True).input_ids
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None and with_special and with_special[0] == bos else []

    def encode_piece(self, text: str, first: bool = False) -> list[int]:
        """Token ids of `text` as the start of a sequence (`first`) or as a continuation: no BOS, no dummy prefix.

        A continuation is tokenised behind a newline sentinel whose ids are then dropped, which suppresses the
        SentencePiece dummy prefix; tokenizers without one give the same ids as plain encoding.
        """
        if not text:
            return []
        key = (text, first)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        ids = self.tokenizer(text, add_special_tokens=False).input_ids if first else self._continuation(text)
        if len(self._cache) < 4096:  # template pieces and category targets repeat; bounded all the same
            self._cache[key] = ids
        return ids

    def _continuation(self, text: str) -> list[int]:
        joined = self.tokenizer("\n" + text, add_special_tokens=False).input_ids
        n = len(self._sentinel)
        if n and joined[:n] == self._sentinel:
            return joined[n:]
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _clean(self, text: str) -> str:
        """Collapse whitespace, drop literal special-token strings, escape quotes/backslashes JSON-style."""
        text = text.replace(self.cfg.emb_token, " ").replace(self.cfg.pad_token, " ")
        text = " ".join(text.split())
        return json.dumps(text, ensure_ascii=False)[1:-1]

    def _field(self, text: str, max_tokens: int) -> list[int]:
        cleaned = self._clean(text)
        if not cleaned:
            return []
        return self._continuation(cleaned)[:max_tokens]

    # --- building blocks ----------------------------------------------------------------------------------------
    def _note_body(self, note: Note, tags: list[str] | None, first: bool) -> list[int]:
        """The JSON-like note body, title/topic/content truncated by tokens and capped at `note_max_tokens`.

        `tags=None` leaves the topic field out (the paper's hashtag-prompt input).
        """
        t, c = self.template, self.cfg
        open_ids = self.encode_piece(t.note_open, first=first)
        topic_key = self.encode_piece(t.topic_key) if tags is not None else []
        content_key = self.encode_piece(t.content_key)
        close = self.encode_piece(t.note_close)
        title = self._field(note.title, c.title_max_tokens)
        topic = self._field(t.separator.join(tags[: c.max_input_hashtags]), c.topic_max_tokens) if tags else []
        content = self._field(note.content, c.content_max_tokens)
        budget = c.note_max_tokens - len(open_ids) - len(topic_key) - len(content_key) - len(close)
        # Trim content first, then the hashtag field, then the title, so the body stays closed and parseable.
        overflow = len(title) + len(topic) + len(content) - max(budget, 0)
        for part in (content, topic, title):
            if overflow <= 0:
                break
            cut = min(overflow, len(part))
            del part[len(part) - cut :]
            overflow -= cut
        return open_ids + title + topic_key + topic + content_key + content + close

    def _prefix(self, note: Note, task: Task, j: int, tags: list[str] | None) -> list[int]:
        """[BOS] instruction note-body compress: everything up to (not including) [EMB]."""
        t = self.template
        instruction = t.category_instruction if task == "category" else t.hashtag_instruction.format(j=j)
        ids = list(self._bos)
        if instruction:
            ids += self.encode_piece(instruction, first=True)
        ids += self._note_body(note, tags, first=not instruction)
        ids += self.encode_piece(t.compress)
        return ids

    def _guidance(self, task: Task, j: int) -> list[int]:
        t = self.template
        return self.encode_piece(t.category_guidance if task == "category" else t.hashtag_guidance.format(j=j))

    def output_ids(self, items: list[str] | tuple[str, ...]) -> list[int]:
        """Target ids for a list of category levels or hashtags: output text, end mark and EOS."""
        t = self.template
        text = t.output_prefix + t.separator.join(self._clean(item) for item in items)
        return self.encode_piece(text) + self.output_end_ids()

    def category_target_ids(self, category: str) -> list[int]:
        """Target ids for a schema category string ("l1/l2"): all levels, joined by the template separator."""
        return self.output_ids(self._levels(category))

    @staticmethod
    def _levels(category: str) -> list[str]:
        levels = [level.strip() for level in category.split(CATEGORY_SEPARATOR) if level.strip()]
        if not levels:
            raise ValueError(f"empty category {category!r}")
        return levels

    # --- pieces of the output, for constrained decoding (constrained.py) ---------------------------------------
    def output_item_ids(self, item: str, first: bool) -> list[int]:
        """Ids of one output item (a hashtag) as it opens the output (`first`) or follows the separator."""
        t = self.template
        return self.encode_piece((t.output_prefix if first else t.separator) + self._clean(item))

    def output_category_ids(self, category: str) -> list[int]:
        """Ids of a whole category ("l1/l2") as the output's only item: `category_target_ids` minus end and EOS."""
        t = self.template
        return self.encode_piece(t.output_prefix + t.separator.join(self._clean(v) for v in self._levels(category)))

    def output_end_ids(self) -> list[int]:
        """The end mark and EOS that close every output."""
        return self.encode_piece(self.template.end) + [self.eos_id]

    # --- public sequences -----------------------------------------------------------------------------------------
    def embedding_ids(self, note: Note) -> list[int]:
        """Inference input: category-prompt prefix ending at the token before [EMB] (its last position is pooled)."""
        return self._prefix(note, "category", 0, list(note.hashtags))

    def training_sequence(self, note: Note, task: Task, rng: random.Random) -> TrainingSequence:
        """A full training sequence for `task`; raises ValueError if the note lacks the field the task needs.

        For the category task `input_ids[: emb_pos + 1] == embedding_ids(note)`.
        """
        if task == "category":
            if not note.category_levels:
                raise ValueError(f"note {note.note_id!r} has no category for the category prompt")
            prefix = self.embedding_ids(note)
            target = self.category_target_ids(note.category)
            guidance = self._guidance("category", 0)
        elif task == "hashtag":
            tags = [tag for tag in note.hashtags if tag.strip()]
            if not tags:
                raise ValueError(f"note {note.note_id!r} has no hashtags for the hashtag prompt")
            j = rng.randint(1, min(self.cfg.max_train_hashtags, len(tags)))
            chosen = rng.sample(tags, j)
            remaining = [tag for tag in tags if tag not in chosen] if self.cfg.hashtag_input == "remaining" else None
            prefix = self._prefix(note, "hashtag", j, remaining)
            target = self.output_ids(chosen)
            guidance = self._guidance("hashtag", j)
        else:
            raise ValueError(f"task must be 'category' or 'hashtag', got {task!r}")
        head = prefix + [self.emb_id] + guidance
        return TrainingSequence(
            input_ids=head + target,
            labels=[IGNORE_INDEX] * len(head) + target,
            emb_pos=len(prefix) - 1,
            task=task,
        )

    def embedding_only_sequence(self, note: Note) -> TrainingSequence:
        """Embedding input + [EMB] with no generation target (a note with neither category nor hashtags)."""
        prefix = self.embedding_ids(note)
        ids = prefix + [self.emb_id]
        return TrainingSequence(input_ids=ids, labels=[IGNORE_INDEX] * len(ids), emb_pos=len(prefix) - 1, task="none")

    def generation_ids(self, note: Note, task: Task, k: int = 5) -> list[int]:
        """Generation prompt through the output guidance, [EMB] included literally (the code's test prompt).

        Category: the full note (with hashtags). Hashtag: title + content only, asking for `k` topics.
        """
        if task == "category":
            return self.embedding_ids(note) + [self.emb_id] + self._guidance("category", 0)
        if task == "hashtag":
            if k < 1:
                raise ValueError(f"k must be >= 1, got {k}")
            return self._prefix(note, "hashtag", k, None) + [self.emb_id] + self._guidance("hashtag", k)
        raise ValueError(f"task must be 'category' or 'hashtag', got {task!r}")

    # --- parsing generated text -------------------------------------------------------------------------------
    def _strip_output(self, text: str) -> str:
        """Cut generated text at the end mark (when followed by whitespace or the end) and strip punctuation."""
        end = re.escape(self.template.end)
        text = re.split(rf"{end}(?:\s|$)", text.strip(), maxsplit=1)[0]
        return text.strip().strip('"“”').strip()

    def _split(self, text: str) -> list[str]:
        sep = self.template.separator.strip() or self.template.separator
        items = [item.strip().strip('"“”').strip() for item in text.split(sep)]
        return [item for item in items if item]

    def parse_category(self, text: str) -> str:
        """Generated category text -> schema form ("l1/l2")."""
        return CATEGORY_SEPARATOR.join(self._split(self._strip_output(text)))

    def parse_hashtags(self, text: str, k: int | None = None) -> list[str]:
        """Generated hashtag text -> unique tags in order (at most `k`)."""
        tags = list(dict.fromkeys(self._split(self._strip_output(text))))
        return tags[:k] if k is not None else tags
