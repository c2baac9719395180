#!/usr/bin/env bash
# reports.sh — how fast ReportParser reads bounces and complaints: every fixture in
# Tests/MailReportsTests/Fixtures (DSNs, ARF reports, plain-text bounces, auto-replies) parsed
# many times in a release build. Prints reports per second overall (the median of several rounds)
# and the slowest fixtures.
#
# Usage: Benchmarks/reports.sh [rounds]      (default 5 rounds)
# Environment:
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path (default: the benchmark package's own,
#                      Benchmarks/.build; ReportBenchmark needs just MailMessage and MailReports)
#   SKIP_BUILD=1       use the binary already built there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '[reports] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
. Benchmarks/common.sh
release_benchmark_binary ReportBenchmark
"$BIN" "${1:-5}" Tests/MailReportsTests/Fixtures
