"""NoteLLM training losses: GCL (symmetric in-batch InfoNCE) and the GCL + CSFT mix (paper §4, docs/method.md §4).

Losses take embeddings and already-computed scalars, never the model, and return named components for logging.

Choices:
- GCL follows the paper and the official code: all 2B notes of a batch act as queries, every other note (from
  either side) is a negative, only self-similarity is masked, the scale is e^τ with τ learnable.
- Multi-process: embeddings are gathered WITH gradients (`torch.distributed.nn.functional.all_gather`; the official
  code gathers without gradient, so remote rows there are constants). Each rank scores its own 2b rows against all
  2B_global columns and averages over its own rows. Gradient scale: the all-gather backward SUMS the gradient every
  rank's loss sends to a shard, so rank r's parameters get ∂(Σ_s L_s)/∂θ through its own rows; DDP then divides
  the summed gradients by the world size W, giving ∂((1/W) Σ_s L_s)/∂θ. With equal local batches,
  (1/W) Σ_s L_s is exactly the mean over all 2B_global rows, i.e. the single-process loss on the concatenated batch,
  so the gradient is EQUAL to the one-process gradient (no rescaling needed; tests/train/test_distributed.py).
- CSFT is the backbone's causal-LM cross-entropy, a token mean over the supervised output tokens of the (local)
  batch, as in the official code (the paper writes a per-sequence mean; docs/method.md §7). Under DDP each rank's
  token mean is averaged, which equals the global token mean only when ranks supervise equally many tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class LossOutput:
    """The training loss and its components (detached copies are what gets logged)."""

    loss: Tensor  # scalar, what is back-propagated
    gcl: Tensor | None  # scalar GCL (InfoNCE) term, None when GCL is off
    csft: Tensor | None  # scalar CSFT (generation) term, None when it is not computed

    def log_dict(self) -> dict[str, float]:
        out = {"loss": float(self.loss.detach())}
        if self.gcl is not None:
            out["gcl"] = float(self.gcl.detach())
        if self.csft is not None:
            out["csft"] = float(self.csft.detach())
        return out


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def gather_with_grad(local: Tensor) -> tuple[Tensor, int]:
    """All-gather `local` (n, d) from every rank keeping the autograd graph; returns (W·n, d) and this rank's offset.

    Every rank must pass the same n (the sampler guarantees equal per-rank batches).
    """
    rank, world = _world()
    if world == 1:
        return local, 0
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public differentiable gather
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(local.contiguous())  # W × (n, d), each differentiable
    return torch.cat(parts, dim=0), rank * local.shape[0]


def gcl_loss(embeddings: Tensor, logit_scale: Tensor, gather: bool = True) -> Tensor:
    """Symmetric in-batch InfoNCE over the 2b local notes against all gathered notes (paper Eq. for L_cl).

    L_cl = −(1/2B) Σ_i log[ exp(s(n_i, n_i⁺)·e^τ) / Σ_{j≠i} exp(s(n_i, n_j)·e^τ) ]

    Args:
        embeddings: (2b, d) L2-normalised note embeddings of this rank; rows k and k+b are partners.
        logit_scale: scalar e^τ (the model's `logit_scale`; gradients flow into τ).
        gather: gather the other ranks' embeddings as extra negatives when a process group is running.

    Returns:
        Scalar mean loss over this rank's 2b rows.
    """
    two_b, _ = embeddings.shape
    if two_b % 2 or two_b < 2:
        raise ValueError(f"gcl_loss needs an even number (≥2) of rows [A_1..A_b, B_1..B_b], got {two_b}")
    b = two_b // 2
    local = embeddings.float()  # the softmax at scale ~20 wants fp32, whatever precision the model ran in
    columns, offset = gather_with_grad(local) if gather else (local, 0)  # (2B_global, d); ours start at offset
    sim = local @ columns.T  # (2b, 2B_global) cosine similarities (inputs are unit vectors)
    logits = sim * logit_scale.float()  # × e^τ
    rows = torch.arange(two_b, device=local.device)
    self_cols = offset + rows  # (2b,) where each row meets itself
    logits = logits.masked_fill(F.one_hot(self_cols, columns.shape[0]).bool(), float("-inf"))
    targets = offset + (rows + b) % two_b  # (2b,) partner of local row k is local row k+b mod 2b
    return F.cross_entropy(logits, targets)


def notellm_loss(
    embeddings: Tensor | None,
    logit_scale: Tensor | None,
    generation_loss: Tensor | None,
    alpha: float = 0.01,
    use_gcl: bool = True,
    gather: bool = True,
) -> LossOutput:
    """Combine GCL and CSFT as L = (L_gcl + α·L_csft)/(1 + α) (paper §4.3).

    Ablations (paper Tables 4–6): `use_gcl=False` trains CSFT only (L = L_csft); `alpha=0` trains GCL only
    (`generation_loss` may then be None, skipping the LM head).

    Args:
        embeddings: (2b, d) normalised embeddings (needed when `use_gcl`).
        logit_scale: scalar e^τ (needed when `use_gcl`).
        generation_loss: scalar token-mean CE over output tokens + EOS (needed when `alpha > 0` or GCL is off).
        alpha: CSFT weight α ≥ 0.
        use_gcl: include the contrastive term.
        gather: gather negatives across processes (see `gcl_loss`).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be ≥ 0, got {alpha}")
    if not use_gcl:
        if generation_loss is None:
            raise ValueError("GCL is off, so the CSFT generation_loss is required")
        return LossOutput(loss=generation_loss, gcl=None, csft=generation_loss)
    if embeddings is None or logit_scale is None:
        raise ValueError("GCL needs embeddings and logit_scale")
    gcl = gcl_loss(embeddings, logit_scale, gather=gather)
    if alpha == 0 or generation_loss is None:
        if alpha > 0:
            raise ValueError(f"alpha={alpha} > 0 needs the CSFT generation_loss")
        return LossOutput(loss=gcl, gcl=gcl, csft=generation_loss)
    loss = (gcl + alpha * generation_loss.float()) / (1.0 + alpha)
    return LossOutput(loss=loss, gcl=gcl, csft=generation_loss)
