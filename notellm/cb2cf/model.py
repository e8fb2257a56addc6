"""CB2CF: a twin (Siamese) network mapping content features into a collaborative-filtering similarity space.

One tower, shared by both items of a pair: [text features ; optional image features] → LayerNorm → MLP → d →
L2-normalise → augment. The augmented vector z = [u, 1] / √2 makes ⟨z_a, z_b⟩ = (1 + cos(u_a, u_b)) / 2 ∈ [0, 1],
which is used directly as the pair probability in binary cross-entropy (docs/method.md §9).

`embed` returns the unit vectors u (d) by default: that is what cosine retrieval wants and what SSD takes (SSD adds
its own constant dimension); `augmented=True` gives z (d + 1).
Saved as one folder: `model.safetensors` + `config.json` (the config and the input dimensions).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class CB2CFConfig:
    """Architecture and training of CB2CF."""

    hidden: int = 512
    """Width of the MLP hidden layer."""
    dim: int = 64
    """Output dimension d (before the extra dimension)."""
    dropout: float = 0.1
    """Dropout after the hidden activation."""
    negatives: int = 4
    """Random negatives per positive pair (1:k)."""
    epochs: int = 20
    """Passes over the positive pairs."""
    batch_size: int = 256
    """Positive pairs per step (each brings `negatives` negatives)."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    min_users: int = 3
    """ItemCF exposure threshold (distinct users per item) for training pairs."""
    top_k: int = 10
    """ItemCF neighbours kept per item."""
    similarity: str = "cosine"
    """ItemCF similarity: cosine or count."""
    seed: int = 0
    """Seed for initialisation, shuffling and negatives."""
    num_threads: int = 1
    """torch CPU threads while training (restored afterwards). The tower is small: one thread avoids the
    oversubscription collapse seen on shared machines (20x slower with 2 threads at load 10); 0 = leave as is."""

    def __post_init__(self) -> None:
        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads}")
        for name in ("hidden", "dim", "negatives", "epochs", "batch_size", "min_users", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.similarity not in ("cosine", "count"):
            raise ValueError(f"similarity must be 'cosine' or 'count', got {self.similarity!r}")


class CB2CF(nn.Module):
    """The shared tower. `text_dim` (+ `image_dim` when image features are used) inputs, `cfg.dim` outputs."""

    def __init__(self, text_dim: int, cfg: CB2CFConfig, image_dim: int = 0) -> None:
        super().__init__()
        self.text_dim, self.image_dim, self.cfg = text_dim, image_dim, cfg
        in_dim = text_dim + image_dim
        self.tower = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.dim),
        )

    def forward(self, text: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_dim) [+ (B, image_dim)] -> augmented z (B, d + 1), ⟨z_a, z_b⟩ = (1 + cos) / 2."""
        if (image is None) != (self.image_dim == 0):
            raise ValueError(
                f"this CB2CF was built with image_dim={self.image_dim}; "
                f"{'pass' if self.image_dim else 'do not pass'} image features"
            )
        x = text if image is None else torch.cat([text, image], dim=1)  # (B, in)
        u = nn.functional.normalize(self.tower(x), dim=1)  # (B, d)
        ones = torch.ones(u.shape[0], 1, dtype=u.dtype, device=u.device)
        return torch.cat([u, ones], dim=1) / math.sqrt(2.0)  # (B, d + 1)

    @torch.no_grad()
    def embed(
        self, text: np.ndarray, image: np.ndarray | None = None, *, augmented: bool = False, batch_size: int = 4096
    ) -> np.ndarray:
        """Embed feature rows: unit vectors u (N, d), or z (N, d + 1) with `augmented=True`."""
        _check_features(text, self.text_dim, "text features")
        if image is not None:
            _check_features(image, self.image_dim, "image features")
            if len(image) != len(text):
                raise ValueError(f"image features have {len(image)} rows, text features {len(text)}")
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(text), batch_size):
            t = torch.as_tensor(np.asarray(text[start : start + batch_size], dtype=np.float32))
            i = None if image is None else torch.as_tensor(np.asarray(image[start : start + batch_size], np.float32))
            z = self(t, i)
            out.append((z if augmented else z[:, :-1] * math.sqrt(2.0)).numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim + int(augmented)), np.float32)

    def save(self, out_dir: str | Path) -> Path:
        """Write model.safetensors + config.json into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(out / WEIGHTS_FILE))
        meta = {"text_dim": self.text_dim, "image_dim": self.image_dim, "config": asdict(self.cfg)}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: str | Path) -> CB2CF:
        """Read a folder written by `save`; clear errors name the missing or malformed file."""
        d = Path(model_dir)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(
                    f"{d / name} not found: not a CB2CF folder (train one with `notellm cb2cf train`)"
                )
        try:
            meta = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
            model = cls(int(meta["text_dim"]), CB2CFConfig(**meta["config"]), int(meta.get("image_dim", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{d / CONFIG_FILE}: malformed CB2CF config: {exc}") from exc
        model.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
        model.eval()
        return model


def _check_features(x: np.ndarray, dim: int, what: str) -> None:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must be (N, {dim}), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} row {int(np.argwhere(~np.isfinite(x))[0][0])} holds NaN or inf")
