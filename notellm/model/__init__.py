"""The NoteLLM model: backbones, the Note Compression Prompt, collation and the model itself.

- `backbone.py`    resolve_backbone / create_tiny_backbone: names or paths -> local HF dirs (GGUF converted, cached)
- `prompts.py`     PromptConfig, NotePromptBuilder: notes -> token ids for embedding, training, generation
- `collate.py`     Batch, PairCollator, collate_for_embedding
- `constrained.py` ListConstraint: constrained decoding of categories and hashtags over a closed vocabulary
- `notellm.py`     NoteLLMConfig, NoteLLM: forward (embeddings + CSFT loss), embed, generate_*, save/load

Import from the sub-modules (`from notellm.model.notellm import NoteLLM`); this package imports nothing heavy.
"""
