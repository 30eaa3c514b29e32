#!/usr/bin/env bash
# The full benchmark suite (batch 32) on one CUDA GPU, in well under 8 minutes.
# Installs nothing: the caller makes torch (and, if wanted, einconv and tndsl's
# dependencies) importable; a variant whose package is missing is reported as skipped.
# Writes results.json, results.md and ratio.png into ${OUT:-bench/out-gpu}.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m bench.run --device cuda --size full --repeat "${REPEAT:-50}" --budget 15 \
    --out "${OUT:-bench/out-gpu}" "$@"
