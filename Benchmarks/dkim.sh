#!/usr/bin/env bash
# dkim.sh — what DKIM signing costs: DKIMBenchmark in a release build signs a 5 KB and a 1 MB
# message with RSA-2048 and Ed25519 and prints the median µs per signature, the cost of the
# signature alone, and the body hashing rate in MB/s.
#
# Usage: Benchmarks/dkim.sh [rounds]      (default 7 rounds)
# Environment:
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path (default: the benchmark package's own,
#                      Benchmarks/.build; building DKIMBenchmark needs just DKIM and swift-crypto)
#   SKIP_BUILD=1       use the binary already built there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '[dkim] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
. Benchmarks/common.sh
release_benchmark_binary DKIMBenchmark
"$BIN" "${1:-7}"
