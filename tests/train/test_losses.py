"""GCL / combined loss against hand arithmetic and a naive loop.

Run: PYTHONPATH=. python -m pytest tests/train/test_losses.py -q -p no:cacheprovider
"""

from __future__ import annotations

import math

import pytest
import torch

from notellm.train.losses import gcl_loss, notellm_loss


def _hand_batch() -> torch.Tensor:
    # B=2 pairs, d=2, rows [A1, A2, B1, B2]; partners A1<->B1, A2<->B2
    return torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]])


def test_gcl_hand_computed():
    """Cosines: A1·A2=0, A1·B1=.6, A1·B2=.8, A2·B1=.8, A2·B2=-.6, B1·B2=0; scale e^τ=1 (τ=0).

    row A1 (target B1): -0.6 + log(e^0 + e^.6 + e^.8) = 1.0189247
    row A2 (target B2): +0.6 + log(e^0 + e^.8 + e^-.6) = 1.9282289
    rows B1, B2 mirror A1, A2 (same logit sets)       → mean = (1.0189247 + 1.9282289)/2 = 1.4735768
    """
    loss = gcl_loss(_hand_batch(), torch.tensor(1.0))
    a = -0.6 + math.log(1 + math.exp(0.6) + math.exp(0.8))
    b = 0.6 + math.log(1 + math.exp(0.8) + math.exp(-0.6))
    assert loss.item() == pytest.approx((a + b) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(1.4735768, abs=1e-6)


def _naive_gcl(emb: torch.Tensor, scale: float) -> float:
    n = emb.shape[0]
    b = n // 2
    total = 0.0
    for i in range(n):
        partner = (i + b) % n
        denom = 0.0
        for j in range(n):
            if j != i:
                cos = float(emb[i] @ emb[j])
                denom += math.exp(cos * scale)
        total += -(float(emb[i] @ emb[partner]) * scale - math.log(denom))
    return total / n


@pytest.mark.parametrize("b,d", [(1, 3), (3, 4), (8, 16)])
def test_gcl_matches_naive_loop(b, d):
    emb = torch.nn.functional.normalize(torch.randn(2 * b, d, dtype=torch.float64), dim=-1)
    scale = math.exp(3.0)
    got = gcl_loss(emb, torch.tensor(scale, dtype=torch.float64)).item()
    assert got == pytest.approx(_naive_gcl(emb, scale), rel=1e-5)


def test_gcl_prefers_aligned_partners_and_trains_tau():
    """A planted batch where partners are identical scores lower than a shuffled one; τ receives a gradient."""
    base = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    aligned = torch.cat([base, base])  # partners identical
    shuffled = torch.cat([base, base[[1, 2, 3, 0]]])
    tau = torch.tensor(3.0, requires_grad=True)
    good = gcl_loss(aligned, tau.exp())
    assert good < gcl_loss(shuffled, tau.exp())
    good.backward()
    assert tau.grad is not None and tau.grad.item() < 0  # sharpening helps when partners are already right


def test_gcl_rejects_odd_batch():
    with pytest.raises(ValueError, match="even number"):
        gcl_loss(torch.randn(3, 2), torch.tensor(1.0))


def test_combined_formula_and_ablations():
    emb = _hand_batch()
    scale = torch.tensor(1.0)
    gen = torch.tensor(2.5)
    out = notellm_loss(emb, scale, gen, alpha=0.01)
    # (1.4735768 + 0.01 * 2.5) / 1.01 = 1.4837394
    assert out.loss.item() == pytest.approx((1.4735768 + 0.025) / 1.01, abs=1e-6)
    assert out.gcl.item() == pytest.approx(1.4735768, abs=1e-6) and out.csft.item() == 2.5
    assert set(out.log_dict()) == {"loss", "gcl", "csft"}
    # alpha = 0: pure GCL (w/o CSFT), no generation loss needed
    only_gcl = notellm_loss(emb, scale, None, alpha=0.0)
    assert only_gcl.loss.item() == pytest.approx(1.4735768, abs=1e-6) and only_gcl.csft is None
    # GCL off: pure CSFT
    only_csft = notellm_loss(None, None, gen, alpha=0.01, use_gcl=False)
    assert only_csft.loss.item() == 2.5 and only_csft.gcl is None
    with pytest.raises(ValueError, match="generation_loss"):
        notellm_loss(emb, scale, None, alpha=0.01)
    with pytest.raises(ValueError, match="alpha"):
        notellm_loss(emb, scale, gen, alpha=-1)
