"""Export a trained NoteLLM's embedding path for fast inference, and run the exported model.

    onnx.py     export_onnx(): the ONNX graph (fp32, or dynamic int8), checked against PyTorch before it is written
    runtime.py  OnnxEncoder: the `Encoder` (retrieval/encode.py) that runs an exported folder on ONNX Runtime

Only the embedding path is exported. Generation (hashtags, categories) needs the LM head and constrained decoding
and stays in PyTorch (`NoteLLM.generate_*`).
"""

from __future__ import annotations

from notellm.export.onnx import ExportCheckError, OnnxExportConfig, export_onnx
from notellm.export.runtime import OnnxEncoder, is_onnx_export

__all__ = ["ExportCheckError", "OnnxEncoder", "OnnxExportConfig", "export_onnx", "is_onnx_export"]
