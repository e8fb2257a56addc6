"""Request and response bodies of the HTTP API (pydantic v2). Configurable limits are checked in app.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from notellm.data import limits as L

NOTE_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # any printable text; ids never reach a file path
URL_PATTERN = r"^(https?://[^\s\x00-\x1f\x7f]+)?$"  # empty or http(s): the page renders it as a link


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic validator from a data/limits.py check: a 422 that names the field and says why."""

    def validate(value: str) -> str:
        if value and (reason := problem(value)) is not None:
            raise ValueError(reason)
        return value

    return AfterValidator(validate)


# Field types bounded like the backends' columns (data/limits.py); lone surrogates are refused here, before the
# tokenizer sees them (issue #13, cases 6 and 7).
Text = Annotated[str, _checked(L.text_problem)]
NoteId = Annotated[str, Field(min_length=1, max_length=L.MAX_NOTE_ID_BYTES), _checked(L.id_problem)]
Category = Annotated[str, _checked(L.category_problem)]
Hashtag = Annotated[str, Field(max_length=L.MAX_HASHTAG_CHARS), _checked(L.text_problem)]
Url = Annotated[str, Field(max_length=L.MAX_URL_BYTES, pattern=URL_PATTERN), _checked(L.url_problem)]


class NoteText(BaseModel):
    """A note's fields; `note_id` optional (for /embed and /generate)."""

    model_config = ConfigDict(extra="forbid")
    note_id: Annotated[str, Field(max_length=L.MAX_NOTE_ID_BYTES), _checked(L.id_problem)] = Field(
        "", description="Note id (optional here).")
    title: Text = Field("", description="Note title.")
    content: Text = Field("", description="Note body text.")
    hashtags: list[Hashtag] = Field(default_factory=list, max_length=L.MAX_HASHTAGS,
                                    description="Hashtags/topics, without '#'.")
    category: Category = Field("", description="Category path, levels joined by '/'.")
    url: Url = Field("", description="Link to the source (http/https).")


class NoteIn(NoteText):
    """A note to add or update; `note_id` required."""

    note_id: Annotated[NoteId, Field(pattern=NOTE_ID_PATTERN)] = Field(..., description="Unique note id.")


class NoteOut(BaseModel):
    note_id: str
    title: str
    content: str
    hashtags: list[str]
    category: str
    url: str = Field("", description="Source link (attribution), empty if none.")


class NoteSummary(BaseModel):
    note_id: str
    title: str
    hashtags: list[str]
    category: str
    url: str = ""


class RelatedNote(NoteSummary):
    score: float = Field(description="Cosine similarity to the query note.")
    rank: int = Field(description="1-based position in the returned list.")


class RelatedOut(BaseModel):
    note_id: str
    k: int
    diversify: str
    candidates: int = Field(description="Nearest neighbours considered (re-ranked when diversify != none).")
    items: list[RelatedNote]


class SearchOut(BaseModel):
    query: str
    items: list[NoteSummary]


class UpsertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[NoteIn] = Field(..., min_length=1, description="Notes to add or replace (by note_id).")


class UpsertOut(BaseModel):
    ids: list[str] = Field(description="Ids written durably and searchable now.")
    notes_total: int


class DeleteOut(BaseModel):
    deleted: str
    notes_total: int


class EmbedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[NoteText] = Field(..., min_length=1)


class EmbedOut(BaseModel):
    dim: int
    embeddings: list[list[float]] = Field(description="One L2-normalised vector per note, in request order.")


class GenerateIn(BaseModel):
    """Generate hashtags or a category, for stored notes (`note_ids`) or inline `notes` (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")
    task: Literal["hashtags", "category"]
    note_ids: list[NoteId] = Field(default_factory=list, max_length=4096)
    notes: list[NoteText] = Field(default_factory=list)
    k: int = Field(3, ge=1, le=20, description="Hashtags to generate per note (task=hashtags).")
    categories: list[Category] | None = Field(None, max_length=L.MAX_VOCABULARY,
                                              description="task=category: constrain the output to these.")
    vocabulary: list[Hashtag] | None = Field(
        None, max_length=L.MAX_VOCABULARY,
        description="task=hashtags: constrain the output to these hashtags (distinct, at most k).")

    @model_validator(mode="after")
    def _one_source(self) -> GenerateIn:
        if bool(self.note_ids) == bool(self.notes):
            raise ValueError("give exactly one of note_ids or notes")
        return self


class Generated(BaseModel):
    note_id: str
    hashtags: list[str] | None = None
    category: str | None = None


class GenerateOut(BaseModel):
    task: str
    results: list[Generated]


class HealthOut(BaseModel):
    status: Literal["ok"]
    backend: str
    notes: int
    dim: int
    model: str
    can_generate: bool
    runtime: str = Field(description="What embeds notes: torch or onnx (custom for a test double).")
    precision: str = Field(description="Embedding precision: fp32, bf16-autocast (torch) or int8 (onnx).")


class ErrorOut(BaseModel):
    detail: str
