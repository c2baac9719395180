#!/usr/bin/env bash
# reports.sh — how fast ReportParser reads bounces and complaints: every fixture in
# Tests/MailReportsTests/Fixtures (DSNs, ARF reports, plain-text bounces, auto-replies) parsed
# many times in a release build. Prints reports per second overall (the median of several rounds)
# and the slowest fixtures.
#
# Usage: Benchmarks/reports.sh [rounds]      (default 5 rounds)
# Environment:
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path (default .build-release: building only
#                      ReportBenchmark needs just MailMessage and MailReports, and a scratch path
#                      of its own does not contend with another build's lock)
#   SKIP_BUILD=1       use the binary already built there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

SCRATCH="${TERN_SCRATCH_PATH:-.build-release}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  printf '[reports] swift build -c release --product ReportBenchmark --scratch-path %s\n' "$SCRATCH" >&2
  swift build -c release --product ReportBenchmark --scratch-path "$SCRATCH" >&2
fi
BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/ReportBenchmark"
[ -x "$BIN" ] || { echo "[reports] no release binary at $BIN" >&2; exit 1; }
"$BIN" "${1:-5}" Tests/MailReportsTests/Fixtures
