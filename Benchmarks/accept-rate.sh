#!/usr/bin/env bash
# accept-rate.sh — accepted messages per second: Tern (release build) vs a stock
# Postfix relay, same load, same machine, one run. Loopback only.
#
#   smtp-source --> tern serve 127.0.0.1:$TERN_PORT   (IP credential for 127.0.0.0/8)
#   smtp-source --> Postfix    127.0.0.1:2525 --> smtp-sink 127.0.0.1:2526
#
# Both relay everything to the same smtp-sink, so accepted and end-to-end rates compare.
# Tern's RSS is sampled every second over its runs (start / peak / end).
#
# Usage (as root, for the Postfix half):  Benchmarks/accept-rate.sh
# Environment (defaults in brackets):
#   TERN_BENCH_DIR  [../shared/bench relative to the repo]  where smtp-load.sh / postfix-baseline.sh are
#   COUNT [20000]  SESSIONS [20]  SIZE [5000]  RUNS [3]
#   TERN_PORT [12587]  SINK_PORT [2526]
#   SKIP_POSTFIX=1  measure Tern only
#   TERN_DELIVERY=false  Tern only accepts (queues) mail, as before delivery existed; its runs
#                   then end when smtp-source is done (-S 2), and only the accepted rate counts
#   SKIP_BUILD=1    use the existing release build
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path instead of .build (e.g. not to
#                   contend with another build's lock)
#   TERN_DKIM=rsa|dual  sign every message: example.com (smtp-source's From domain) gets an
#                   RSA-2048 key (dual: and an Ed25519 one) with `tern domain add` [off]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
BENCH=${TERN_BENCH_DIR:-$REPO/../shared/bench}
COUNT=${COUNT:-20000} SESSIONS=${SESSIONS:-20} SIZE=${SIZE:-5000} RUNS=${RUNS:-3}
TERN_PORT=${TERN_PORT:-12587} SINK_PORT=${SINK_PORT:-2526}
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[accept-rate] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$BENCH/smtp-load.sh" ] || [ -f "$BENCH/smtp-load.sh" ] || die "smtp-load.sh not found in $BENCH (set TERN_BENCH_DIR)"
[ -x /usr/sbin/smtp-source ] || die "smtp-source missing: apt-get install postfix (or run $BENCH/postfix-baseline.sh install)"

. "$REPO/Benchmarks/common.sh"
require_free_ports "$TERN_PORT" $((TERN_PORT + 1)) $((TERN_PORT + 2)) $((TERN_PORT + 3)) "$SINK_PORT"

# ---------------------------------------------------------------- build + start Tern
release_tern_binary

WORK=$(mktemp -d /tmp/tern-bench.XXXXXX)
TERN_PID="" SAMPLER_PID=""
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  stop_tern
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$WORK/tern.yaml" <<YAML
data_dir: "$WORK/data"
hostname: bench.test
smtp:
  submission:
    listen: "127.0.0.1:$TERN_PORT"
    tls_listen: "127.0.0.1:$((TERN_PORT + 1))"
  mx:
    listen: "127.0.0.1:$((TERN_PORT + 2))"
  limits:
    max_connections_per_ip: 200
http:
  listen: "127.0.0.1:$((TERN_PORT + 3))"
  public_url: "http://127.0.0.1:$((TERN_PORT + 3))"
delivery:
  enabled: ${TERN_DELIVERY:-true}
  routes:
    "*": "127.0.0.1:$SINK_PORT"
  retry_schedule: [1]
YAML

# The IP credential first: a running server re-reads credentials only every few seconds.
"$BIN" credential add bench --network 127.0.0.0/8 --config "$WORK/tern.yaml" >/dev/null \
  || die "credential add failed"
case "${TERN_DKIM:-off}" in
  off) ;;
  rsa) "$BIN" domain add example.com --config "$WORK/tern.yaml" >/dev/null || die "domain add failed" ;;
  dual) "$BIN" domain add example.com --ed25519 --config "$WORK/tern.yaml" >/dev/null || die "domain add failed" ;;
  *) die "TERN_DKIM must be off, rsa or dual" ;;
esac
start_tern "$WORK/tern.yaml" "$TERN_PORT" "$WORK/tern.log"
log "tern pid $TERN_PID on 127.0.0.1:$TERN_PORT, data_dir $WORK/data"

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
( while kill -0 "$TERN_PID" 2>/dev/null; do echo "$(date +%s) $(rss_kb "$TERN_PID")"; sleep 1; done ) > "$WORK/rss.txt" &
SAMPLER_PID=$!

summary_rate() { sed -n 's/.*median accepted=\([0-9.]*\) msg\/s.*/\1/p' "$1" | tail -1; }
summary_e2e() { sed -n 's/.*median end-to-end=\([0-9.]*\) msg\/s.*/\1/p' "$1" | tail -1; }

log "load: Tern (count=$COUNT sessions=$SESSIONS size=$SIZE runs=$RUNS)"
STALL=30
[ "${TERN_DELIVERY:-true}" = false ] && STALL=2
bash "$BENCH/smtp-load.sh" -n "$COUNT" -c "$SESSIONS" -l "$SIZE" -r "$RUNS" -T 600 -S "$STALL" \
  "127.0.0.1:$TERN_PORT" "$SINK_PORT" | tee "$WORK/tern.out" >&2 || true
TERN_RATE=$(summary_rate "$WORK/tern.out")
TERN_E2E=$(summary_e2e "$WORK/tern.out")
sleep 1
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
read -r RSS_START RSS_PEAK RSS_END < <(awk 'NR==1{s=$2} {if($2>p)p=$2; e=$2} END{printf "%d %d %d\n", s/1024, p/1024, e/1024}' "$WORK/rss.txt")
STORED=$(sqlite3 "file:$WORK/data/tern.sqlite?mode=ro" 'SELECT count(*) FROM messages' 2>/dev/null || echo "?")
kill -TERM "$TERN_PID"; wait "$TERN_PID" 2>/dev/null || true; TERN_PID=""

# ---------------------------------------------------------------- Postfix baseline
PF_RATE="" PF_E2E=""
if [ "${SKIP_POSTFIX:-0}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "the Postfix baseline needs root (or SKIP_POSTFIX=1)"
  log "load: Postfix (stock, loopback relay to smtp-sink)"
  bash "$BENCH/postfix-baseline.sh" setup
  bash "$BENCH/smtp-load.sh" -n "$COUNT" -c "$SESSIONS" -l "$SIZE" -r "$RUNS" -p 'postsuper -d ALL' \
    127.0.0.1:2525 "$SINK_PORT" | tee "$WORK/postfix.out" >&2 || true
  bash "$BENCH/postfix-baseline.sh" purge || true
  bash "$BENCH/postfix-baseline.sh" stop
  PF_RATE=$(summary_rate "$WORK/postfix.out")
  PF_E2E=$(summary_e2e "$WORK/postfix.out")
fi

echo
echo "msg/s (median of $RUNS, $COUNT x ${SIZE}B, $SESSIONS sessions, $(nproc) cores), accepted / end to end at smtp-sink:"
echo "  tern:    ${TERN_RATE:-?} / ${TERN_E2E:-?}   (stored messages: $STORED; RSS MiB start/peak/end: $RSS_START/$RSS_PEAK/$RSS_END)"
if [ -n "$PF_RATE" ]; then
  echo "  postfix: ${PF_RATE} / ${PF_E2E:-?}"
  awk -v t="${TERN_RATE:-0}" -v p="$PF_RATE" -v te="${TERN_E2E:-0}" -v pe="${PF_E2E:-0}" 'BEGIN{
    if (p > 0) printf "  ratio tern/postfix accepted: %.2f\n", t/p
    if (pe > 0) printf "  ratio tern/postfix end to end: %.2f\n", te/pe }'
fi
