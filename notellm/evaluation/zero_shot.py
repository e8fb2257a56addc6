"""Zero-shot LLM baselines of docs/method.md §5.4: the raw backbone's last-token state, with or without a prompt.

- `LastTokenEncoder(prompt=None)`: "LLaMA 2 zero-shot": the note text alone, last-token hidden state.
- `LastTokenEncoder(prompt=PROMPT_EOL)`: "PromptEOL zero-shot": `This sentence: "X" means in one word: "`, the
  last token (the opening quote) is the embedding, as PromptEOL defines it.

The hidden state is the last layer after the final norm (`AutoModel`'s `last_hidden_state`), right padding, the
position of each row's last real token. `precision="auto"` (notellm/precision.py) holds the weights in bf16 where
the hardware computes bf16 natively (~5x faster than fp32 there, slightly different numbers) and in fp32 elsewhere.
The text is title + content truncated to `max_tokens` tokens.
"""

from __future__ import annotations

import numpy as np

from notellm.data.schema import Note
from notellm.retrieval.encode import note_text

PROMPT_EOL = 'This sentence: "{text}" means in one word: "'


class LastTokenEncoder:
    """Last-token embedding from an unmodified causal LM (local HF directory or notellm backbone name)."""

    def __init__(
        self,
        backbone: str,
        prompt: str | None = None,
        name: str | None = None,
        max_tokens: int = 128,
        batch_size: int = 16,
        precision: str = "auto",
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        from notellm.model.backbone import resolve_backbone
        from notellm.precision import resolve_precision

        path = resolve_backbone(backbone)
        self.name = name or ("PromptEOL zero-shot" if prompt else "LLM zero-shot")
        self.precision = resolve_precision(precision, "cpu", what=self.name)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True, dtype=self.precision.dtype).eval()
        self.prompt, self.max_tokens, self.batch_size = prompt, max_tokens, batch_size
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def _ids(self, note: Note) -> list[int]:
        text_ids = self.tokenizer(note_text(note), add_special_tokens=False)["input_ids"][: self.max_tokens]
        if self.prompt is None:
            return text_ids or [self.pad_id]
        head, tail = self.prompt.split("{text}")
        text = self.tokenizer.decode(text_ids)
        return self.tokenizer(head + text + tail, add_special_tokens=False)["input_ids"]

    def encode(self, notes: list[Note]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(notes), self.batch_size):
            seqs = [self._ids(n) for n in notes[start : start + self.batch_size]]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)  # (b, T) right padded
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            last = mask.sum(dim=1) - 1  # (b,) position of the last real token
            with torch.inference_mode():
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (b, T, h)
            out.append(hidden[torch.arange(len(seqs)), last].float().numpy())  # (b, h)
        return np.concatenate(out)
