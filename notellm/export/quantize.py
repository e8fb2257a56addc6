"""Quantising an exported fp32 graph: which weights become 8- (or 4-) bit integers, and how.

Two ONNX Runtime methods, each a `QuantScheme` (named presets in `SCHEMES`):

- `dynamic` (`quantize_dynamic`): weights int8 (per tensor or per output channel), activations quantised to uint8
  per tensor at run time, `MatMulInteger` kernels. One scale for a whole activation matrix is what hurts an LLM:
  a few hidden channels carry values 100x the rest (the SwiGLU output feeding `down_proj` above all), so the other
  channels keep a handful of levels. `exclude` keeps such nodes in fp32.
- `weight_only` (`MatMulNBitsQuantizer`): weights in blocks of `block_size` along the input dimension, each block
  with its own scale; `accuracy_level=4` computes in int8 with activations quantised per block as well (MLAS), so
  an outlier channel costs precision only in its own block.

On AVX2 CPUs without VNNI, the u8 x s8 kernels add pairs of products in int16 and can saturate; `reduce_range`
(7-bit weights) is ONNX Runtime's documented remedy for those machines.

Nodes are addressed by the weight they multiply: `export_onnx` names every weighted MatMul/Gemm after its parameter
(`backbone_model_layers_3_mlp_down_proj`, `proj`), so `exclude` patterns (fnmatch) read like module paths.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

WEIGHTED_OPS = ("MatMul", "Gemm")


@dataclass(frozen=True)
class QuantScheme:
    """How an fp32 graph is quantised (see the module docstring for the two methods)."""

    method: Literal["dynamic", "weight_only"] = "dynamic"
    per_channel: bool = False
    """dynamic: one weight scale per output channel instead of one per matrix."""
    reduce_range: bool = False
    """dynamic: 7-bit weights, which avoids int16 saturation in the u8 x s8 kernels of AVX2 CPUs without VNNI."""
    op_types: tuple[str, ...] = ("MatMul",)
    """dynamic: operator types to quantise (ONNX Runtime's own default also quantises Gather and Transpose)."""
    exclude: tuple[str, ...] = ()
    """fnmatch patterns over weighted node names (e.g. `*mlp_down_proj`); matching nodes stay fp32."""
    bits: int = 8
    """weight_only: 8 or 4 bits per weight."""
    block_size: int = 32
    """weight_only: weights per scale along the input dimension (a power of two >= 16)."""
    accuracy_level: int = 4
    """weight_only: MatMulNBits compute type: 4 = int8 (activations quantised per block), 0 = fp32."""

    def __post_init__(self) -> None:
        if self.method not in ("dynamic", "weight_only"):
            raise ValueError(f"method must be 'dynamic' or 'weight_only', got {self.method!r}")
        if self.bits not in (4, 8):
            raise ValueError(f"bits must be 4 or 8, got {self.bits}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two >= 16, got {self.block_size}")
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            raise ValueError(f"accuracy_level must be 0-4, got {self.accuracy_level}")
        if self.method == "weight_only" and self.op_types != ("MatMul",):
            raise ValueError("weight_only quantises MatMul only")

    @property
    def precision(self) -> str:
        return "int4" if self.method == "weight_only" and self.bits == 4 else "int8"


SCHEMES: dict[str, QuantScheme] = {
    # ONNX Runtime's defaults (what `notellm export --quantize int8` did before schemes): per-tensor 8-bit weights,
    # MatMul + Gather (the token embeddings) + Transpose
    "dynamic-per-tensor": QuantScheme(op_types=("MatMul", "Gather", "Transpose")),
    "dynamic-pc": QuantScheme(per_channel=True, reduce_range=True),
    "dynamic-pc-nodown": QuantScheme(per_channel=True, reduce_range=True, exclude=("*mlp_down_proj",)),
    "weight-only-int8": QuantScheme(method="weight_only", bits=8, block_size=32, accuracy_level=4),
    "weight-only-int4": QuantScheme(method="weight_only", bits=4, block_size=32, accuracy_level=4),
}
DEFAULT_SCHEME = "dynamic-pc"


def scheme_named(name: str) -> QuantScheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown quantisation scheme {name!r}; choose from {', '.join(SCHEMES)}")
    return SCHEMES[name]


def scheme_name(scheme: QuantScheme) -> str:
    """The preset's name, or `custom` for a scheme that is none of them."""
    return next((name for name, preset in SCHEMES.items() if preset == scheme), "custom")


def weighted_nodes(graph) -> list[str]:
    """Names of the MatMul/Gemm nodes whose second input is a weight (an initializer) — what quantisation touches."""
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type in WEIGHTED_OPS and len(n.input) > 1 and n.input[1] in weights]


def excluded_nodes(names: list[str], patterns: tuple[str, ...]) -> list[str]:
    """Names matched by any pattern; a pattern that matches nothing is an error (a typo would silently do nothing)."""
    hits = []
    for pattern in patterns:
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise ValueError(f"exclude pattern {pattern!r} matches no weighted node (names look like: {shown}); "
                             "re-export the fp32 model with this version if its nodes are not named after weights")
        hits += [n for n in matched if n not in hits]
    return hits


def quantize_graph(src: str | Path, dst: str | Path, scheme: QuantScheme) -> dict:
    """Quantise the fp32 graph `src` into `dst`; returns what was quantised and what was kept fp32."""
    import onnx

    model = onnx.load(str(src))
    names = weighted_nodes(model.graph)
    keep = excluded_nodes(names, scheme.exclude)
    if scheme.method == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=scheme.per_channel,
                         reduce_range=scheme.reduce_range, op_types_to_quantize=list(scheme.op_types),
                         nodes_to_exclude=keep)
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(model, bits=scheme.bits, block_size=scheme.block_size, is_symmetric=True,
                                         accuracy_level=scheme.accuracy_level, nodes_to_exclude=keep,
                                         op_types_to_quantize=("MatMul",))
        quantizer.process()
        quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    return {"weighted_nodes": len(names), "kept_fp32": keep}
