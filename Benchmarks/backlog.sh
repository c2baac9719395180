#!/usr/bin/env bash
# backlog.sh — end-to-end delivery throughput of Tern with an empty queue, then with a
# large deferred backlog already queued (BACKLOG recipients, default 1,000,000): the cost
# per message must not grow with the queue, and new mail must not wait behind the backlog.
# Loopback only.
#
#   smtp-source --> tern serve 127.0.0.1:$TERN_PORT --> smtp-sink 127.0.0.1:$SINK_PORT
#                   backlog: *@backlog.test --> route 127.0.0.1:$DEAD_PORT (nothing listens)
#
# Each phase starts a fresh `tern serve` on a fresh data folder. For the backlog phase the
# store is created by Tern (`tern credential add`, which applies the migrations), then
# BACKLOG deferred recipients (BACKLOG_RCPTS per message, attempts 1-3, events `outbound`
# and `deferred` each) are inserted in bulk with sqlite3 before `tern serve` starts. Their
# next attempt times are spread over the next BACKLOG_SPREAD seconds (a trickle comes due
# during the run and is tried against the dead port); BACKLOG_DUE of them are due already
# (over the past hour), the case where retries compete with new mail for every claim.
#
# Per phase: end-to-end msg/s (timed until the sink has COUNT messages), accepted msg/s,
# tern's CPU seconds over the load (utime+stime from /proc, and per message), its peak RSS
# (VmHWM), its start-up time, and the time of the store's claim (the two share queries of
# SQLiteStore.claimDueRecipients, replayed with Python's sqlite3 on the same libsqlite3:
# SELECT only, and SELECT + lease UPDATEs rolled back) — with the backlog as queued, and as if
# all of it were due.
#
# Usage: Benchmarks/backlog.sh
# Environment (defaults in brackets):
#   TERN_BIN        use this tern binary (e.g. .build/debug/tern); otherwise build release
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path instead of .build
#   SKIP_BUILD=1    use the existing release build
#   TERN_BENCH_DIR  [../shared/bench relative to the repo]  where smtp-load.sh is
#   COUNT [20000]  SESSIONS [20]  SIZE [5000]  RUNS [1]  (runs per phase; median reported)
#   BACKLOG [1000000]  BACKLOG_RCPTS [10] recipients per backlog message
#   BACKLOG_SIZE [1000] bytes of each backlog message
#   BACKLOG_SPREAD [14400] seconds over which the backlog's next attempts are spread
#   BACKLOG_DUE [0] backlog recipients already due when tern starts
#   CLAIM_LIMIT [1000] recipients per measured claim   CLAIM_RUNS [50] repetitions (median)
#   TERN_PORT [12587] (and the next three)  SINK_PORT [2526]  DEAD_PORT [2527]
#   KEEP=1          keep the work folder (data, logs) and print its path
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
BENCH=${TERN_BENCH_DIR:-$REPO/../shared/bench}
COUNT=${COUNT:-20000} SESSIONS=${SESSIONS:-20} SIZE=${SIZE:-5000} RUNS=${RUNS:-1}
BACKLOG=${BACKLOG:-1000000} BACKLOG_RCPTS=${BACKLOG_RCPTS:-10} BACKLOG_SIZE=${BACKLOG_SIZE:-1000}
BACKLOG_SPREAD=${BACKLOG_SPREAD:-14400} BACKLOG_DUE=${BACKLOG_DUE:-0}
CLAIM_LIMIT=${CLAIM_LIMIT:-1000} CLAIM_RUNS=${CLAIM_RUNS:-50}
TERN_PORT=${TERN_PORT:-12587} SINK_PORT=${SINK_PORT:-2526} DEAD_PORT=${DEAD_PORT:-2527}
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[backlog] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for v in COUNT SESSIONS SIZE RUNS BACKLOG BACKLOG_RCPTS BACKLOG_SIZE BACKLOG_SPREAD BACKLOG_DUE CLAIM_LIMIT CLAIM_RUNS \
         TERN_PORT SINK_PORT DEAD_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[ "$BACKLOG_RCPTS" -ge 1 ] && [ "$BACKLOG_SPREAD" -ge 1 ] && [ "$CLAIM_LIMIT" -ge 1 ] && [ "$CLAIM_RUNS" -ge 1 ] \
  || die "BACKLOG_RCPTS, BACKLOG_SPREAD, CLAIM_LIMIT and CLAIM_RUNS must be at least 1"
[ "$BACKLOG_DUE" -le "$BACKLOG" ] || die "BACKLOG_DUE ($BACKLOG_DUE) is more than BACKLOG ($BACKLOG)"
[ -f "$BENCH/smtp-load.sh" ] || die "smtp-load.sh not found in $BENCH (set TERN_BENCH_DIR)"
[ -x /usr/sbin/smtp-source ] || die "smtp-source missing: apt-get install postfix"
command -v sqlite3 >/dev/null || die "sqlite3 missing: apt-get install sqlite3"
command -v python3 >/dev/null || die "python3 missing (it times the claim queries)"

. "$REPO/Benchmarks/common.sh"
require_free_ports "$TERN_PORT" $((TERN_PORT + 1)) $((TERN_PORT + 2)) $((TERN_PORT + 3)) "$SINK_PORT" "$DEAD_PORT"

# ---------------------------------------------------------------- the binary
if [ -n "${TERN_BIN:-}" ]; then
  BIN=$TERN_BIN
  [ -x "$BIN" ] || die "no tern binary at $BIN"
else
  release_tern_binary
fi

WORK=$(mktemp -d /tmp/tern-backlog.XXXXXX)
TERN_PID=""
stop_tern() {
  [ -n "$TERN_PID" ] || return 0
  if kill -0 "$TERN_PID" 2>/dev/null; then
    kill -TERM "$TERN_PID"
    for _ in $(seq 1 100); do kill -0 "$TERN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$TERN_PID" 2>/dev/null || true
  fi
  wait "$TERN_PID" 2>/dev/null || true
  TERN_PID=""
}
cleanup() {
  stop_tern
  if [ "${KEEP:-0}" = 1 ]; then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
# utime+stime of a process, in seconds.
cpu_s() { awk -v tck="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14+$15)/tck}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_mib() { awk '/^VmHWM:/{printf "%d\n", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- one phase
# configure DIR: tern.yaml, and the store with its migrations (via `tern credential add`).
configure() {
  local dir=$1
  mkdir -p "$dir"
  cat > "$dir/tern.yaml" <<YAML
data_dir: "$dir/data"
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
  routes:
    "*": "127.0.0.1:$SINK_PORT"
    "backlog.test": "127.0.0.1:$DEAD_PORT"
YAML
  "$BIN" credential add bench --network 127.0.0.0/8 --config "$dir/tern.yaml" >/dev/null || die "credential add failed"
  [ -f "$dir/data/tern.sqlite" ] || die "no store at $dir/data/tern.sqlite"
}

# insert_backlog DB: BACKLOG deferred recipients to backlog.test, with random ids as intake
# assigns them, an `outbound` and a `deferred` event each. Prints the seconds it took.
insert_backlog() {
  local db=$1 now t0 messages past_ms=3600000
  now=$(now_ms)
  messages=$(( (BACKLOG + BACKLOG_RCPTS - 1) / BACKLOG_RCPTS ))
  t0=$(date +%s.%N)
  sqlite3 "$db" >/dev/null <<SQL
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
CREATE TEMP TABLE backlog_messages (n INTEGER PRIMARY KEY, id INTEGER NOT NULL);
WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < $messages)
INSERT INTO backlog_messages SELECT n, (random() & 9223372036854775806) + 1 FROM s;
INSERT INTO messages (id, message_id_header, mail_from, size, content, credential, client_ip,
                      received_at, eight_bit_mime, smtp_utf8)
SELECT id, '<backlog.' || n || '@bench.test>', 'sender@bench.test', $BACKLOG_SIZE,
       CAST(substr('Subject: backlog ' || n || char(13, 10, 13, 10) || printf('%.*c', $BACKLOG_SIZE, 'x'),
                   1, $BACKLOG_SIZE) AS BLOB),
       'bench', '127.0.0.1', $now - $past_ms, 0, 0
FROM backlog_messages;
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < $BACKLOG)
INSERT INTO recipients (id, message_id, position, address, state, next_attempt_at, attempts)
SELECT (random() & 9223372036854775806) + 1, m.id, s.i % $BACKLOG_RCPTS, 'rcpt' || s.i || '@backlog.test', 'queued',
       CASE WHEN s.i < $BACKLOG_DUE THEN $now - $past_ms + s.i * $past_ms / $BACKLOG_DUE
            ELSE $now + (s.i - $BACKLOG_DUE) * ${BACKLOG_SPREAD}000 / ($BACKLOG - $BACKLOG_DUE) END,
       1 + s.i % 3
FROM s JOIN backlog_messages m ON m.n = s.i / $BACKLOG_RCPTS;
INSERT INTO events (type, message_id, recipient_id, at, details)
SELECT 'outbound', message_id, id, $now - $past_ms, NULL FROM recipients;
INSERT INTO events (type, message_id, recipient_id, at, details)
SELECT 'deferred', message_id, id, $now - $past_ms / 2,
       '{"attempted":"true","text":"connect to 127.0.0.1:$DEAD_PORT: connection refused"}' FROM recipients;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", b-a}'
}

# claim_times DB AT_MS: median ms of the store's claim at AT_MS (CLAIM_LIMIT, shared as the
# store shares it): "select_ms select+lease_ms new_rows retry_rows".
claim_times() {
  python3 - "$1" "$2" "$CLAIM_LIMIT" "$CLAIM_RUNS" <<'PY'
import sqlite3, statistics, sys, time
db, at, limit, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = sqlite3.connect(db, isolation_level=None)
# The two share queries of SQLiteStore.claimDueRecipients (Sources/TernStoreSQLite/SQLiteStore+Delivery.swift).
def share(index, attempts):
    return f"""SELECT r.id, r.message_id, r.address, r.attempts, r.next_attempt_at,
                      m.mail_from, m.received_at, m.eight_bit_mime, m.smtp_utf8, m.size
               FROM recipients r INDEXED BY {index} JOIN messages m ON m.id = r.message_id
               WHERE r.state = 'queued' AND {attempts} AND r.next_attempt_at <= ?
                 AND (r.lease_until IS NULL OR r.lease_until <= ?)
               ORDER BY r.next_attempt_at LIMIT ?"""
NEW = share("recipients_new", "r.attempts = 0")
RETRY = share("recipients_retry", "r.attempts > 0")
def claim(lease):
    start = time.perf_counter()
    con.execute("BEGIN IMMEDIATE" if lease else "BEGIN")
    quota = limit - limit // 2
    new = con.execute(NEW, (at, at, quota)).fetchall()
    retry = con.execute(RETRY, (at, at, limit - len(new))).fetchall()
    if len(new) == quota and len(new) + len(retry) < limit:
        new = con.execute(NEW, (at, at, limit - len(retry))).fetchall()
    if lease:
        con.executemany("UPDATE recipients SET lease_node = ?, lease_until = ? WHERE id = ?",
                        [("bench", at + 300000, row[0]) for row in new + retry])
    con.execute("ROLLBACK")
    return (time.perf_counter() - start) * 1000, len(new), len(retry)
claim(False)  # warm the cache, as a running server's would be
select = [claim(False) for _ in range(runs)]
leased = [claim(True) for _ in range(runs)]
print(f"{statistics.median(s[0] for s in select):.3f} {statistics.median(s[0] for s in leased):.3f} "
      f"{select[0][1]} {select[0][2]}")
PY
}

# run_phase NAME BACKLOG_SIZE: fills R_<field>[NAME].
declare -A R_E2E R_ACC R_CPU R_CPU_MSG R_HWM R_START R_CLAIM_NOW R_CLAIM_ALL R_DEFERRALS R_QUEUED R_INSERT R_STORE R_STOP
run_phase() {
  local name=$1 backlog=$2 dir="$WORK/$1" db start_ms claim_now claim_all t0 t1 cpu0 cpu1 e2e acc
  log "phase '$name': backlog $backlog"
  configure "$dir"
  db="$dir/data/tern.sqlite"
  R_INSERT[$name]="-"
  if [ "$backlog" -gt 0 ]; then
    log "inserting $backlog deferred recipients ($(( (backlog + BACKLOG_RCPTS - 1) / BACKLOG_RCPTS )) messages)"
    R_INSERT[$name]=$(insert_backlog "$db")
    log "inserted in ${R_INSERT[$name]} s"
  fi
  R_STORE[$name]=$(du -sm "$dir/data" | awk '{print $1}')
  # Claims measured before tern starts: the queue as it is, and as if every deferred
  # recipient were due (after the end of the spread).
  read -r claim_now <<<"$(claim_times "$db" "$(now_ms)")"
  read -r claim_all <<<"$(claim_times "$db" "$(( $(now_ms) + BACKLOG_SPREAD * 1000 + 3600000 ))")"
  R_CLAIM_NOW[$name]=$claim_now R_CLAIM_ALL[$name]=$claim_all

  start_ms=$(now_ms)
  t0=$(date +%s.%N)
  "$BIN" serve --config "$dir/tern.yaml" >"$dir/tern.log" 2>&1 &
  TERN_PID=$!
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$TERN_PORT") 2>/dev/null && break
    kill -0 "$TERN_PID" 2>/dev/null || die "tern exited: $(tail -5 "$dir/tern.log")"
    sleep 0.05
  done
  free_port "$TERN_PORT" && die "tern did not open 127.0.0.1:$TERN_PORT in 60 s"
  R_START[$name]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  log "tern pid $TERN_PID up in ${R_START[$name]} s; load: count=$COUNT sessions=$SESSIONS size=$SIZE runs=$RUNS"

  # tern's CPU from just before each run's sink starts to just after the sink has them all.
  cpu0=$(cpu_s "$TERN_PID")
  bash "$BENCH/smtp-load.sh" -n "$COUNT" -c "$SESSIONS" -l "$SIZE" -r "$RUNS" -T 1800 -S 60 \
    -p "awk -v tck=\$(getconf CLK_TCK) '{print (\$14+\$15)/tck}' /proc/$TERN_PID/stat >> '$dir/cpu-before'" \
    -w "awk -v tck=\$(getconf CLK_TCK) '{print (\$14+\$15)/tck}' /proc/$TERN_PID/stat >> '$dir/cpu-after'" \
    "127.0.0.1:$TERN_PORT" "$SINK_PORT" | tee "$dir/load.out" >&2 || true
  cpu1=$(cpu_s "$TERN_PID")
  R_E2E[$name]=$(sed -n 's/.*median end-to-end=\([0-9.]*\) msg\/s.*/\1/p' "$dir/load.out" | tail -1)
  R_ACC[$name]=$(sed -n 's/.*median accepted=\([0-9.]*\) msg\/s.*/\1/p' "$dir/load.out" | tail -1)
  # Sum over runs of (after - before); falls back to the whole load.
  R_CPU[$name]=$(paste "$dir/cpu-before" "$dir/cpu-after" 2>/dev/null | awk '{s+=$2-$1} END{if(NR) printf "%.2f", s}')
  [ -n "${R_CPU[$name]}" ] || R_CPU[$name]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.2f", b-a}')
  R_CPU_MSG[$name]=$(awk -v c="${R_CPU[$name]}" -v n="$((COUNT * RUNS))" 'BEGIN{printf "%.3f", 1000*c/n}')
  R_HWM[$name]=$(hwm_mib "$TERN_PID")
  sleep 1  # outcomes are written in batches: let the last one land before counting
  R_DEFERRALS[$name]=$(sqlite3 "file:$db?mode=ro" \
    "SELECT count(*) FROM events WHERE type = 'deferred' AND at >= $start_ms" 2>/dev/null || echo "?")
  R_QUEUED[$name]=$(sqlite3 "file:$db?mode=ro" "SELECT count(*) FROM recipients WHERE state = 'queued'" 2>/dev/null || echo "?")
  t1=$(date +%s.%N)
  stop_tern
  R_STOP[$name]=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  [ -n "${R_E2E[$name]}" ] && [ "${R_E2E[$name]}" != 0 ] || log "phase '$name': not every message reached the sink (see $dir/load.out)"
}

run_phase empty 0
run_phase backlog "$BACKLOG"

# ---------------------------------------------------------------- report
field() { echo "$1" | awk -v i="$2" '{print $i}'; }
row() { printf '  %-52s %16s %16s\n' "$1" "$2" "$3"; }
echo
echo "Tern delivery with a deferred backlog: $COUNT x ${SIZE}B over $SESSIONS sessions, $RUNS run(s) per phase, $(nproc) cores"
echo "  binary: $BIN"
echo "  backlog: $BACKLOG recipients ($BACKLOG_RCPTS per message, ${BACKLOG_SIZE}B) to backlog.test -> dead 127.0.0.1:$DEAD_PORT,"
echo "           next attempts over the next ${BACKLOG_SPREAD}s, $BACKLOG_DUE due at start; inserted in ${R_INSERT[backlog]}s"
echo
row "" "empty queue" "backlog $BACKLOG"
row "end-to-end msg/s (at smtp-sink)" "${R_E2E[empty]:-?}" "${R_E2E[backlog]:-?}"
row "accepted msg/s" "${R_ACC[empty]:-?}" "${R_ACC[backlog]:-?}"
row "tern CPU s over the load" "${R_CPU[empty]}" "${R_CPU[backlog]}"
row "tern CPU ms per message" "${R_CPU_MSG[empty]}" "${R_CPU_MSG[backlog]}"
row "tern peak RSS MiB (VmHWM)" "${R_HWM[empty]}" "${R_HWM[backlog]}"
row "tern start-up s (to SMTP listening) / stop s" "${R_START[empty]} / ${R_STOP[empty]}" "${R_START[backlog]} / ${R_STOP[backlog]}"
row "store MiB before start" "${R_STORE[empty]}" "${R_STORE[backlog]}"
row "claim of $CLAIM_LIMIT before start, queue as is: SELECT ms" "$(field "${R_CLAIM_NOW[empty]}" 1)" "$(field "${R_CLAIM_NOW[backlog]}" 1)"
row "  SELECT + lease UPDATEs ms (rows new/retry)" \
  "$(field "${R_CLAIM_NOW[empty]}" 2) ($(field "${R_CLAIM_NOW[empty]}" 3)/$(field "${R_CLAIM_NOW[empty]}" 4))" \
  "$(field "${R_CLAIM_NOW[backlog]}" 2) ($(field "${R_CLAIM_NOW[backlog]}" 3)/$(field "${R_CLAIM_NOW[backlog]}" 4))"
row "claim of $CLAIM_LIMIT, as if all backlog due: SELECT ms" "$(field "${R_CLAIM_ALL[empty]}" 1)" "$(field "${R_CLAIM_ALL[backlog]}" 1)"
row "  SELECT + lease UPDATEs ms (rows new/retry)" \
  "$(field "${R_CLAIM_ALL[empty]}" 2) ($(field "${R_CLAIM_ALL[empty]}" 3)/$(field "${R_CLAIM_ALL[empty]}" 4))" \
  "$(field "${R_CLAIM_ALL[backlog]}" 2) ($(field "${R_CLAIM_ALL[backlog]}" 3)/$(field "${R_CLAIM_ALL[backlog]}" 4))"
row "backlog deferrals stored during the phase" "${R_DEFERRALS[empty]}" "${R_DEFERRALS[backlog]}"
row "recipients still queued at the end" "${R_QUEUED[empty]}" "${R_QUEUED[backlog]}"
awk -v e="${R_E2E[empty]:-0}" -v b="${R_E2E[backlog]:-0}" -v ce="${R_CPU_MSG[empty]}" -v cb="${R_CPU_MSG[backlog]}" 'BEGIN{
  if (e > 0) printf "  ratio backlog/empty end-to-end msg/s: %.2f\n", b/e
  if (ce > 0) printf "  ratio backlog/empty CPU per message:   %.2f\n", cb/ce }'
