"""NoteLLM: a causal LM that compresses a note into the hidden state before [EMB], plus a projection and a scale.

Choices made here (docs/method.md §2, §3, §4.2):
- Embedding = last-layer hidden state after the final norm at the token before [EMB] -> bias-free linear
  projection hidden -> d -> L2 normalisation. d defaults to 128 (paper; the code uses 64).
- `tau` is a learnable scalar initialised to 3; the contrastive scale is `logit_scale = exp(tau)` (~20.1).
- The backbone's decoder (`get_decoder()`) runs once per batch; the LM head is applied ONLY at positions whose next
  label is supervised (gathered (n_labels, hidden) rows), so (2B, T, V) logits are never materialised. The
  generation loss is the token-level mean cross-entropy over all supervised tokens of the batch (the official
  code's normalisation; the paper writes a per-sequence mean).
- New vocabulary rows ([EMB], and [PAD] when the tokenizer has none) are set to the mean of the existing input
  embedding rows (the code). If the LM head is untied we also set its new rows to the mean of its existing rows:
  then a new token's logit is the average logit, which leaves the pretrained next-token distribution essentially
  unchanged and keeps greedy decoding from emitting [EMB]/[PAD]; random rows could do either.
- `proj` and `tau` stay float32 whatever the backbone dtype; pooled states are cast up before the projection.
- Saving writes safetensors only: `backbone/` (HF `save_pretrained`, LoRA merged by default),
  `notellm_head.safetensors` (proj, tau) and `notellm.json` (backbone name, template, d, special tokens and their
  ids, library version). Loading never unpickles (`use_safetensors=True`) and never contacts a hub.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from notellm.atomicdir import writing_folder
from notellm.config import from_dict, to_dict
from notellm.data.schema import Note
from notellm.model.backbone import load_causal_lm, load_tokenizer, resolve_backbone
from notellm.model.collate import Batch, collate_for_embedding
from notellm.model.constrained import ListConstraint
from notellm.model.prompts import IGNORE_INDEX, NotePromptBuilder, PromptConfig, Task, prepare_tokenizer

FORMAT_VERSION = 1
HEAD_FILE = "notellm_head.safetensors"
META_FILE = "notellm.json"
BACKBONE_DIR = "backbone"
ADAPTER_DIR = "adapter"
REPETITION_PENALTY = 1.2  # the official generation script (docs/method.md §5.3)
MIN_SHARED_PREFIX = 8  # shorter common prefixes are not worth a second decoder call


def common_prefix_length(id_lists: list[list[int]]) -> int:
    """Tokens every list starts with, leaving each list at least one token of its own (the pooled one)."""
    limit = min(len(ids) for ids in id_lists) - 1
    n = 0
    while n < limit and all(ids[n] == id_lists[0][n] for ids in id_lists):
        n += 1
    return n


CONSTRAINED_BEAMS = 4  # paths kept by length-normalised constrained decoding (`scoring="beam"`)
ConstrainedScoring = Literal["greedy", "beam", "pmi"]
SCORINGS = ("greedy", "beam", "pmi")
EMPTY_NOTE = Note(note_id="", title="", content="")  # the note-free prompt of `scoring="pmi"` (calibration.py)


@dataclass
class NoteLLMConfig:
    """The NoteLLM model: which backbone, the embedding head, and the prompt."""

    backbone: str = "smollm2-135m"
    """Packaged backbone name (`smollm2-135m`, `gemma3-270m`) or a local Hugging Face causal-LM directory."""
    emb_dim: int = 128
    """Note embedding size d after the projection (paper: 128; official code: 64)."""
    tau_init: float = 3.0
    """Initial value of the learnable tau; the contrastive logits are scaled by exp(tau)."""
    init_seed: int = 0
    """Seed for the projection's initial weights (independent of the global RNG)."""
    attn_implementation: str = "sdpa"
    """Attention kernel passed to transformers (`sdpa` or `eager`)."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """Note Compression Prompt settings."""

    def __post_init__(self) -> None:
        if not self.backbone:
            raise ValueError("backbone must name a packaged backbone or a local directory")
        if self.emb_dim < 1:
            raise ValueError(f"emb_dim must be >= 1, got {self.emb_dim}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")


@dataclass
class NoteLLMOutput:
    """What `NoteLLM.forward` returns.

    Attributes:
        embeddings: (2B, d) L2-normalised note embeddings (float32).
        generation_loss: scalar token-mean CE over supervised tokens, or None if not requested.
        n_label_tokens: number of supervised tokens in the batch (weights the loss when accumulating).
    """

    embeddings: torch.Tensor
    generation_loss: torch.Tensor | None
    n_label_tokens: int


def init_new_rows(model: nn.Module, new_ids: list[int], n_old: int) -> None:
    """Resize the vocabulary to cover `new_ids` and set their rows to the mean of rows [0, n_old)."""
    if not new_ids:
        return
    rows = model.get_input_embeddings().weight.shape[0]
    if max(new_ids) >= rows:
        model.resize_token_embeddings(max(new_ids) + 1, mean_resizing=False)
    index = torch.tensor(new_ids)
    with torch.no_grad():
        inp = model.get_input_embeddings().weight  # (V, H)
        inp[index] = inp[:n_old].mean(dim=0).to(inp.dtype)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != inp.data_ptr():  # untied head: see module docstring
            out.weight[index] = out.weight[:n_old].mean(dim=0).to(out.weight.dtype)


class NoteLLM(nn.Module):
    """The backbone causal LM with the [EMB] token, the projection `proj` and the learnable `tau`.

    Build with `NoteLLM.from_backbone(cfg)` (fresh) or `NoteLLM.from_pretrained(path)` (saved).
    """

    def __init__(self, backbone: nn.Module, tokenizer, cfg: NoteLLMConfig, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.prompt_builder = NotePromptBuilder(tokenizer, cfg.prompt)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.init_seed)
            self.proj = nn.Linear(hidden_size, cfg.emb_dim, bias=False)  # hidden -> d
        self.tau = nn.Parameter(torch.tensor(float(cfg.tau_init)))
        self.frozen_cache = None  # a FrozenLayerCache while only the top layers train (model/frozen_cache.py)

    # --- construction -----------------------------------------------------------------------------------------
    @classmethod
    def from_backbone(cls, cfg: NoteLLMConfig, dtype: torch.dtype = torch.float32) -> NoteLLM:
        """Load the backbone and tokenizer, add [EMB] (mean-initialised), build a fresh projection and tau."""
        path = resolve_backbone(cfg.backbone)
        tokenizer = load_tokenizer(path)
        model = load_causal_lm(path, dtype=dtype, attn_implementation=cfg.attn_implementation)
        n_old = len(tokenizer)
        added = prepare_tokenizer(tokenizer, cfg.prompt)
        init_new_rows(model, [tokenizer.convert_tokens_to_ids(tok) for tok in added], n_old)
        model.config.pad_token_id = tokenizer.pad_token_id
        return cls(model, tokenizer, cfg, hidden_size=model.config.get_text_config().hidden_size)

    @property
    def causal_lm(self) -> nn.Module:
        """The HF `*ForCausalLM` (unwrapped from a peft model; LoRA layers stay active inside it)."""
        backbone = self.backbone
        return backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp(tau): the scale applied to cosine similarities in the contrastive loss."""
        return self.tau.exp()

    @property
    def device(self) -> torch.device:
        return self.proj.weight.device

    @property
    def emb_dim(self) -> int:
        return self.proj.out_features

    # --- forward ------------------------------------------------------------------------------------------------
    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        decoder = self.causal_lm.get_decoder()
        if self.frozen_cache is not None:
            return self.frozen_cache.hidden(decoder, input_ids, attention_mask)
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state  # (N, T, H), after the final norm

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        # The head runs in float32 even under bf16 autocast: it is tiny and the embedding is the product.
        with torch.autocast(pooled.device.type, enabled=False):
            return F.normalize(self.proj(pooled.to(self.proj.weight.dtype)), dim=-1)  # (N, d)

    def _lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        lm = self.causal_lm
        logits = lm.get_output_embeddings()(hidden)  # (n, V)
        softcap = getattr(lm.config.get_text_config(), "final_logit_softcapping", None)
        if softcap:  # Gemma-style final logit soft-capping, as the HF forward applies it
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, d), L2-normalised, pooled at `positions` (N,) of right-padded inputs (N, T)."""
        hidden = self._hidden(input_ids, attention_mask)  # (N, T, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self._project(hidden[rows, positions])  # (N, d)

    def forward(self, batch: Batch, need_generation_loss: bool = True) -> NoteLLMOutput:
        """Embeddings of all 2B notes and the generation (CSFT) loss, from one pass of the backbone."""
        hidden = self._hidden(batch.input_ids, batch.attention_mask)  # (2B, T, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        embeddings = self._project(hidden[rows, batch.emb_pos])  # (2B, d)
        if not need_generation_loss:
            return NoteLLMOutput(embeddings, None, 0)
        next_labels = batch.labels[:, 1:]  # (2B, T-1): the label predicted at each position
        supervised = next_labels != IGNORE_INDEX  # (2B, T-1)
        n_labels = int(supervised.sum())
        if n_labels == 0:  # keeps the graph connected so every rank runs the same backward
            return NoteLLMOutput(embeddings, hidden.sum() * 0.0, 0)
        logits = self._lm_logits(hidden[:, :-1][supervised])  # (n_labels, V)
        loss = F.cross_entropy(logits.float(), next_labels[supervised])
        return NoteLLMOutput(embeddings, loss, n_labels)

    # --- inference ------------------------------------------------------------------------------------------------
    def hold_weights_in(self, dtype: torch.dtype) -> NoteLLM:
        """Cast the backbone's weights to `dtype` for inference (bf16 where it is computed natively: no autocast
        casts per call); `proj` and `tau` stay float32. Returns self."""
        self.causal_lm.to(dtype)
        return self

    @contextlib.contextmanager
    def _inference(self, autocast: bool):
        was_training = self.training
        self.eval()
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        try:
            with torch.inference_mode(), amp:
                yield
        finally:
            self.train(was_training)

    def encode_shared_prefix(self, id_lists: list[list[int]], prefix_len: int) -> torch.Tensor:
        """Embeddings (N, d) of inputs that all start with the same `prefix_len` tokens: the prefix runs once (batch
        1) and its key/value cache is repeated for every row, so the batch computes only the differing suffixes.
        Same result as `encode` up to float rounding (tested: cosine ≥ 0.9999). Inference only."""
        decoder = self.causal_lm.get_decoder()
        prefix = torch.tensor([id_lists[0][:prefix_len]], device=self.device)  # (1, P)
        cache = decoder(input_ids=prefix, use_cache=True).cache
        cache.batch_repeat_interleave(len(id_lists))
        suffix_ids, suffix_mask, last = collate_for_embedding([ids[prefix_len:] for ids in id_lists],
                                                              self.prompt_builder.pad_id)  # (N, S), (N, S), (N,)
        mask = torch.cat([torch.ones(len(id_lists), prefix_len, dtype=torch.long), suffix_mask], dim=1)  # (N, P+S)
        positions = torch.arange(prefix_len, prefix_len + suffix_ids.shape[1], device=self.device)[None]  # (1, S)
        hidden = decoder(input_ids=suffix_ids.to(self.device), attention_mask=mask.to(self.device), cache=cache,
                         position_ids=positions, use_cache=True).last_hidden_state  # (N, S, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self._project(hidden[rows, last.to(self.device)])  # (N, d)

    def embed_ids(
        self, id_lists: list[list[int]], batch_size: int = 32, progress: bool = False, autocast: bool = False,
        share_prefix: bool = True,
    ) -> np.ndarray:
        """Embed pre-tokenised inputs (each pooled at its last token); longest first, returned in input order.

        With `share_prefix`, a prompt prefix common to a whole batch (the instruction before the title: ~28 tokens
        of the English template) is computed once per batch instead of once per row (`encode_shared_prefix`)."""
        out = np.zeros((len(id_lists), self.emb_dim), dtype=np.float32)
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        with self._inference(autocast):
            for start in tqdm(range(0, len(order), batch_size), desc="embed", disable=not progress, unit="batch"):
                idx = order[start : start + batch_size]
                batch = [id_lists[i] for i in idx]
                shared = common_prefix_length(batch) if share_prefix and len(batch) > 1 else 0
                if shared >= MIN_SHARED_PREFIX:
                    vectors = self.encode_shared_prefix(batch, shared)
                else:
                    input_ids, mask, last = collate_for_embedding(batch, self.prompt_builder.pad_id)
                    vectors = self.encode(input_ids.to(self.device), mask.to(self.device), last.to(self.device))
                out[idx] = vectors.float().cpu().numpy()  # (b, d)
        return out

    def embed(
        self, notes: list[Note] | Note, batch_size: int = 32, progress: bool = False, autocast: bool = False
    ) -> np.ndarray:
        """Note embeddings (N, d) float32, L2-normalised, from the category-prompt prefix (docs/method.md §3).

        Args:
            notes: Notes (or one note, giving shape (1, d)).
            batch_size: Notes per forward pass; notes are sorted by length so padding stays small.
            progress: Show a tqdm bar.
            autocast: Run under bf16 autocast (CPU or CUDA); faster on CPUs with bf16 units, slightly less exact.
        """
        notes = [notes] if isinstance(notes, Note) else list(notes)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids = [self.prompt_builder.embedding_ids(note) for note in notes]
        return self.embed_ids(ids, batch_size=batch_size, progress=progress, autocast=autocast)

    def _generate(
        self,
        id_lists: list[list[int]],
        max_new_tokens: int,
        batch_size: int,
        constraint: ListConstraint | None = None,
        progress: bool = False,
        scoring: ConstrainedScoring = "greedy",
        prior_ids: list[int] | None = None,
        prior_weight: float = 1.0,
    ) -> list[list[int]]:
        """Decoding with left padding; returns new tokens up to and with EOS.

        `scoring="greedy"`: greedy with repetition penalty 1.2 (the paper's script). `"beam"` (for constrained
        decoding): a beam of `CONSTRAINED_BEAMS` paths through the automaton ranked by the sequence log-probability
        divided by its length (transformers' beam search, `length_penalty=1`), without the repetition penalty: the
        penalty divides the logits of every token already in the prompt, i.e. of the note's own words, which pushes
        a closed-set decoder away from the note's tags towards generic ones. `"pmi"`: greedy on
        log p(token | note, prefix) − `prior_weight`·log p(token | empty note, prefix), the empty note's prompt being
        `prior_ids` (calibration.py), without the repetition penalty.
        """
        from transformers import GenerationConfig, LogitsProcessorList

        from notellm.model.calibration import PriorCalibration

        builder = self.prompt_builder
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
        if scoring == "pmi" and not prior_ids:
            raise ValueError("scoring='pmi' needs the empty note's prompt (prior_ids)")
        beam = scoring == "beam"
        gen_cfg = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=CONSTRAINED_BEAMS if beam else 1,
            length_penalty=1.0,
            repetition_penalty=REPETITION_PENALTY if scoring == "greedy" else 1.0,
            eos_token_id=builder.eos_id,
            pad_token_id=builder.pad_id,
        )
        results: list[list[int]] = [[] for _ in id_lists]
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        with self._inference(autocast=False):
            for start in tqdm(range(0, len(order), batch_size), desc="generate", disable=not progress, unit="batch"):
                idx = order[start : start + batch_size]
                width = max(len(id_lists[i]) for i in idx)
                input_ids = torch.full((len(idx), width), builder.pad_id, dtype=torch.long)  # (b, L) left padded
                mask = torch.zeros((len(idx), width), dtype=torch.long)  # (b, L)
                for row, i in enumerate(idx):
                    input_ids[row, width - len(id_lists[i]) :] = torch.tensor(id_lists[i])
                    mask[row, width - len(id_lists[i]) :] = 1
                kwargs = {"prefix_allowed_tokens_fn": constraint.prefix_fn(width)} if constraint is not None else {}
                if scoring == "pmi":
                    kwargs["logits_processor"] = LogitsProcessorList(
                        [PriorCalibration(self.causal_lm, prior_ids, width, prior_weight)])
                out = self.causal_lm.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=gen_cfg,
                    **kwargs,
                )  # (b, L + new)
                for row, i in enumerate(idx):
                    new = out[row, width:].tolist()
                    results[i] = new[: new.index(builder.eos_id) + 1] if builder.eos_id in new else new
        return results

    def _decode(self, ids: list[int]) -> str:
        ids = [t for t in ids if t not in (self.prompt_builder.emb_id, self.prompt_builder.pad_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate_hashtags(
        self,
        notes: list[Note] | Note,
        k: int = 5,
        max_new_tokens: int = 48,
        constrained: bool = False,
        vocabulary: list[str] | None = None,
        batch_size: int = 16,
        progress: bool = False,
        scoring: ConstrainedScoring = "greedy",
        prior_weight: float = 1.0,
    ) -> list[list[str]]:
        """Generate up to `k` hashtags per note from title + content (the code's test prompt, j = k).

        Args:
            constrained: Restrict decoding to `vocabulary`: every hashtag is one of them, none twice (constrained.py).
                If `max_new_tokens` runs out first, the hashtags completed so far are returned.
            vocabulary: The known hashtags (e.g. every tag of the training notes); required when `constrained`.
            scoring: Constrained decoding only: "greedy" (token by token), "beam" (length-normalised sequence
                log-probability over a small beam) or "pmi" (greedy, calibrated against an empty note: `_generate`).
            prior_weight: λ of `scoring="pmi"`.
        """
        notes = [notes] if isinstance(notes, Note) else list(notes)
        ids = [self.prompt_builder.generation_ids(note, "hashtag", k) for note in notes]
        if not constrained:
            outputs = self._generate(ids, max_new_tokens, batch_size, progress=progress)
            return [self.prompt_builder.parse_hashtags(self._decode(out), k) for out in outputs]
        if not vocabulary:
            raise ValueError("constrained hashtag decoding needs the vocabulary of known hashtags")
        constraint = self.hashtag_constraint(vocabulary, k)
        outputs = self._generate(ids, max_new_tokens, batch_size, constraint=constraint, progress=progress,
                                 scoring=scoring, prior_weight=prior_weight,
                                 prior_ids=self.prompt_builder.generation_ids(EMPTY_NOTE, "hashtag", k))
        return [constraint.result(out)[0] for out in outputs]

    def generate_category(
        self,
        notes: list[Note] | Note,
        max_new_tokens: int = 24,
        constrained: bool = False,
        categories: list[str] | None = None,
        batch_size: int = 16,
        progress: bool = False,
        scoring: ConstrainedScoring = "greedy",
        prior_weight: float = 1.0,
    ) -> list[str]:
        """Generate each note's category in schema form ("l1/l2").

        Args:
            constrained: Restrict decoding to `categories` with a token trie; the output is always one of them
                (`max_new_tokens` is raised to the longest category if needed).
            categories: The closed category set (schema strings); required when `constrained`.
            scoring: Constrained decoding only: "greedy", "beam" or "pmi" (as `generate_hashtags`).
            prior_weight: λ of `scoring="pmi"`.
        """
        notes = [notes] if isinstance(notes, Note) else list(notes)
        ids = [self.prompt_builder.generation_ids(note, "category") for note in notes]
        if not constrained:
            outputs = self._generate(ids, max_new_tokens, batch_size, progress=progress)
            return [self.prompt_builder.parse_category(self._decode(out)) for out in outputs]
        if not categories:
            raise ValueError("constrained category decoding needs the list of categories")
        constraint = self.category_constraint(categories)
        budget = max(max_new_tokens, constraint.max_item_len + constraint.end_len)
        outputs = self._generate(ids, budget, batch_size, constraint=constraint, progress=progress, scoring=scoring,
                                 prior_weight=prior_weight,
                                 prior_ids=self.prompt_builder.generation_ids(EMPTY_NOTE, "category"))
        results = []
        for out in outputs:
            items, finished = constraint.result(out)
            if not finished:  # cannot happen: the budget fits the longest category; say so rather than guess
                raise RuntimeError(f"constrained decoding produced a sequence outside the category set: {out}")
            results.append(items[0])
        return results

    def category_constraint(self, categories: list[str]) -> ListConstraint:
        """Decoding automaton over `categories`, spelled exactly as the category training targets."""
        builder = self.prompt_builder
        items = list(dict.fromkeys(categories))
        return ListConstraint(items, [builder.output_category_ids(c) for c in items], None,
                              builder.output_end_ids(), k=1, pad_id=builder.pad_id)

    def hashtag_constraint(self, vocabulary: list[str], k: int) -> ListConstraint:
        """Decoding automaton for up to `k` distinct hashtags of `vocabulary` (blank tags are ignored)."""
        builder = self.prompt_builder
        items = list(dict.fromkeys(tag.strip() for tag in vocabulary if tag.strip()))
        return ListConstraint(items, [builder.output_item_ids(t, first=True) for t in items],
                              [builder.output_item_ids(t, first=False) for t in items],
                              builder.output_end_ids(), k=k, pad_id=builder.pad_id)

    def generate(self, note: Note, task: Task = "category", **kwargs) -> str | list[str]:
        """Single-note convenience: a category string or a hashtag list."""
        if task == "category":
            return self.generate_category([note], **kwargs)[0]
        return self.generate_hashtags([note], **kwargs)[0]

    # --- save / load ------------------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """What `notellm.json` records."""
        from notellm import __version__

        builder = self.prompt_builder
        tok = self.tokenizer
        return {
            "format": "notellm",
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "backbone": self.cfg.backbone,
            "config": to_dict(self.cfg),
            "emb_dim": self.emb_dim,
            "hidden_size": self.proj.in_features,
            "template": dataclasses.asdict(self.cfg.prompt.template),
            "special_tokens": {
                "emb": {"token": self.cfg.prompt.emb_token, "id": builder.emb_id},
                "pad": {"token": tok.pad_token, "id": builder.pad_id},
                "eos": {"token": tok.eos_token, "id": builder.eos_id},
                "bos": {"token": tok.bos_token, "id": tok.bos_token_id},
            },
            "vocab_size": len(tok),
            "dtype": str(next(self.causal_lm.parameters()).dtype).removeprefix("torch."),
        }

    def save_pretrained(self, path: str | Path, merge_lora: bool = True) -> Path:
        """Write `backbone/`, `notellm_head.safetensors` and `notellm.json` under `path` (safetensors only).

        A peft (LoRA) backbone is merged into plain weights when `merge_lora` (a merged copy; this model keeps its
        adapters); otherwise the base weights go to `backbone/` and the adapter to `adapter/`.
        """
        with writing_folder(path) as tmp:  # atomic: a crash mid-save keeps the previous model (atomicdir.py)
            self._write_pretrained(tmp, merge_lora)
        return Path(path)

    def _write_pretrained(self, path: Path, merge_lora: bool) -> None:
        from safetensors.torch import save_file

        backbone = self.backbone
        meta = self.metadata()
        if hasattr(backbone, "merge_and_unload"):  # a peft model
            if merge_lora:
                copy.deepcopy(backbone).merge_and_unload().save_pretrained(
                    path / BACKBONE_DIR, safe_serialization=True
                )
            else:
                backbone.save_pretrained(path / ADAPTER_DIR, safe_serialization=True)
                copy.deepcopy(backbone).unload().save_pretrained(path / BACKBONE_DIR, safe_serialization=True)
            meta["lora"] = "merged" if merge_lora else ADAPTER_DIR
        else:
            backbone.save_pretrained(path / BACKBONE_DIR, safe_serialization=True)
            meta["lora"] = None
        self.tokenizer.save_pretrained(path / BACKBONE_DIR)
        head = {
            "proj.weight": self.proj.weight.detach().float().cpu().contiguous(),
            "tau": self.tau.detach().float().cpu().reshape(1),
        }
        save_file(head, str(path / HEAD_FILE))
        (path / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> NoteLLM:
        """Load a folder written by `save_pretrained` (safetensors only, offline)."""
        from safetensors.torch import load_file

        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{path} is not a saved NoteLLM: {META_FILE} is missing")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON: {exc}") from exc
        if meta.get("format") != "notellm" or meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{meta_path}: unsupported format {meta.get('format')!r} v{meta.get('format_version')}")
        cfg = from_dict(NoteLLMConfig, meta["config"])
        tokenizer = load_tokenizer(path / BACKBONE_DIR)
        model = load_causal_lm(path / BACKBONE_DIR, dtype=dtype, attn_implementation=cfg.attn_implementation)
        if meta.get("lora") == ADAPTER_DIR:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, path / ADAPTER_DIR, is_trainable=False)
        emb = meta["special_tokens"]["emb"]
        if tokenizer.convert_tokens_to_ids(emb["token"]) != emb["id"]:
            raise ValueError(
                f"{path}: tokenizer maps {emb['token']!r} to "
                f"{tokenizer.convert_tokens_to_ids(emb['token'])}, notellm.json records {emb['id']}"
            )
        note_llm = cls(model, tokenizer, cfg, hidden_size=int(meta["hidden_size"]))
        head = load_file(str(path / HEAD_FILE))
        with torch.no_grad():
            note_llm.proj.weight.copy_(head["proj.weight"])
            note_llm.tau.copy_(head["tau"].reshape(()))
        return note_llm.to(device)
