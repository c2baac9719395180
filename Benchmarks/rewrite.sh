#!/usr/bin/env bash
# rewrite.sh — what the tracking rewrite costs at intake: TrackingRewriter (parse, rewrite links,
# insert the open pixel, fill the unsubscribe placeholder, edit header fields) on a 5 KB and a
# 200 KB HTML newsletter, release build. Prints µs per message and µs per KB of HTML.
#
# Usage: Benchmarks/rewrite.sh [rounds]      (default 5 rounds; the median is printed)
# Environment:
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path instead of .build (e.g. not to
#                      contend with another build's lock)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

SCRATCH=()
[ -n "${TERN_SCRATCH_PATH:-}" ] && SCRATCH=(--scratch-path "$TERN_SCRATCH_PATH")
printf '[rewrite] swift run -c release --package-path Benchmarks RewriteBenchmark %s\n' "${SCRATCH[*]}" >&2
swift run -c release --package-path Benchmarks "${SCRATCH[@]}" RewriteBenchmark "${1:-5}"
