"""One micro-batch forward + backward: the plain path and the gradient-cache path (GradCache, Gao et al. 2021).

GradCache (arXiv 2101.06983) lets the contrastive batch exceed what fits in memory with activations:
  1. embed every sub-batch without a graph                                   → E (2b, d), detached
  2. L_gcl(E, e^τ) on the FULL batch; cache g_E = ∂L/∂E and g_s = ∂L/∂e^τ     (cheap: only (2b, d) tensors)
  3. re-run each sub-batch with a graph and back-propagate the surrogate ⟨E_j, g_E[j]⟩ (+ its CSFT share);
     the last sub-batch also carries g_s·e^τ so τ gets its gradient inside a DDP-tracked backward.
By the chain rule the accumulated gradients equal the plain path's (tested). CSFT is a token mean over the whole
micro-batch, so sub-batch j's generation loss is weighted by n_j / N (its share of supervised tokens).
Written by hand: the reference `grad-cache` package is unmaintained and wraps models/optimisers in ways that do not
compose with accelerate, DDP no_sync and a loss mixing a generation term; the core is ~40 lines.
"""

from __future__ import annotations

import contextlib

import torch

from notellm.model.collate import Batch
from notellm.model.prompts import IGNORE_INDEX
from notellm.train.losses import gcl_loss, notellm_loss


def _rows(batch: Batch, index: torch.Tensor) -> Batch:
    """Rows `index` of a batch, with padding columns beyond the longest kept row trimmed (right padding)."""
    mask = batch.attention_mask[index]
    width = int(mask.sum(dim=1).max())
    return Batch(
        input_ids=batch.input_ids[index, :width],
        attention_mask=mask[:, :width],
        labels=batch.labels[index, :width],
        emb_pos=batch.emb_pos[index],
        tasks=tuple(batch.tasks[i] for i in index.tolist()) if batch.tasks else (),
    )


def sub_batches(batch: Batch, pairs_per_chunk: int) -> list[Batch]:
    """Split a [A_1..A_b, B_1..B_b] batch into chunks [A_s..A_e, B_s..B_e] that keep the partner layout."""
    b = batch.num_pairs
    chunks = []
    for start in range(0, b, pairs_per_chunk):
        end = min(start + pairs_per_chunk, b)
        index = torch.cat([torch.arange(start, end), torch.arange(b + start, b + end)])  # (2c,)
        chunks.append(_rows(batch, index.to(batch.input_ids.device)))
    return chunks


def supervised_tokens(batch: Batch) -> int:
    """Number of tokens the causal-LM loss averages over (labels are shifted by one inside the model)."""
    return int((batch.labels[:, 1:] != IGNORE_INDEX).sum())


def plain_step(model, raw, batch: Batch, gcl: bool, alpha: float, backward) -> dict[str, float]:
    """Forward the whole micro-batch, combine the losses, back-propagate with `backward(loss)`."""
    need_generation = alpha > 0 or not gcl
    out = model(batch, need_generation_loss=need_generation)
    lo = notellm_loss(
        out.embeddings if gcl else None,
        raw.logit_scale if gcl else None,
        out.generation_loss if need_generation else None,
        alpha=alpha,
        use_gcl=gcl,
    )
    backward(lo.loss)
    return lo.log_dict()


def grad_cache_step(
    model, raw, batch: Batch, gcl: bool, alpha: float, backward, pairs_per_chunk: int, no_sync=None
) -> dict[str, float]:
    """Same loss and gradients as `plain_step`, with activations for only `pairs_per_chunk` pairs at a time.

    Args:
        model: the (possibly DDP-wrapped) NoteLLM whose forward takes a Batch.
        raw: the unwrapped NoteLLM (for `logit_scale`).
        backward: e.g. `accelerator.backward`.
        no_sync: context factory `no_sync(model)` that suppresses gradient all-reduce for all but the last chunk.
    """
    chunks = sub_batches(batch, pairs_per_chunk)
    need_generation = alpha > 0 or not gcl
    total_tokens = max(supervised_tokens(batch), 1)
    gen_weight = (alpha / (1.0 + alpha)) if gcl else 1.0
    log: dict[str, float] = {}

    grad_chunks: list[torch.Tensor] = []
    grad_scale = None
    if gcl:
        with torch.no_grad():  # 1. embeddings without activations
            parts = [model(chunk, need_generation_loss=False).embeddings.float() for chunk in chunks]  # (2c_j, d)
        halves = [p.shape[0] // 2 for p in parts]
        side_a = torch.cat([p[:h] for p, h in zip(parts, halves, strict=True)])  # (b, d)
        side_b = torch.cat([p[h:] for p, h in zip(parts, halves, strict=True)])  # (b, d)
        full = torch.cat([side_a, side_b]).requires_grad_(True)  # (2b, d) in the batch layout
        scale = raw.logit_scale.detach().float().requires_grad_(True)  # e^τ as a leaf
        l_gcl = gcl_loss(full, scale)  # 2. the loss on the full batch
        g_full, grad_scale = torch.autograd.grad(l_gcl / (1.0 + alpha) if need_generation else l_gcl, [full, scale])
        log["gcl"] = float(l_gcl.detach())
        offset = 0
        for h in halves:  # 3. per-chunk slices of ∂L/∂E in the chunk's own [A, B] layout
            b_start = len(side_a) + offset
            grad_chunks.append(torch.cat([g_full[offset : offset + h], g_full[b_start : b_start + h]]))  # (2c_j, d)
            offset += h

    csft = 0.0
    for j, chunk in enumerate(chunks):
        last = j == len(chunks) - 1
        context = no_sync(model) if (no_sync is not None and not last) else contextlib.nullcontext()
        with context:
            out = model(chunk, need_generation_loss=need_generation)
            surrogate = out.embeddings.float().new_zeros(())
            if gcl:
                surrogate = surrogate + (out.embeddings.float() * grad_chunks[j]).sum()
            if need_generation:
                share = supervised_tokens(chunk) / total_tokens
                surrogate = surrogate + gen_weight * share * out.generation_loss.float()
                csft += share * float(out.generation_loss.detach())
            if gcl and last:
                surrogate = surrogate + grad_scale * raw.logit_scale.float()  # τ's gradient, chain rule through e^τ
            backward(surrogate)
    if need_generation:
        log["csft"] = csft
    if gcl:
        log["loss"] = (log["gcl"] + alpha * csft) / (1.0 + alpha) if need_generation else log["gcl"]
    else:
        log["loss"] = csft
    return dict(sorted(log.items()))


def training_step(
    model, raw, batch: Batch, gcl: bool, alpha: float, backward, grad_cache_pairs: int = 0, no_sync=None
) -> dict[str, float]:
    """Dispatch to the gradient-cache path when `grad_cache_pairs` splits the batch, else the plain path."""
    if grad_cache_pairs and grad_cache_pairs < batch.num_pairs:
        return grad_cache_step(model, raw, batch, gcl, alpha, backward, grad_cache_pairs, no_sync)
    return plain_step(model, raw, batch, gcl, alpha, backward)
