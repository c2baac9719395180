#!/usr/bin/env bash
# tracking-http.sh — requests/s and p99 latency of Tern's tracking endpoints under wrk,
# beside nginx serving a static 43-byte GIF (access log on), same machine, one run.
# Loopback only.
#
# A run is ROUNDS rounds, each of nginx, then Tern's opens, then Tern's clicks, with both
# servers up throughout (the one not measured sits idle). On a shared 2-core machine each
# server's own p99 moves from one run to the next by more than the difference between the
# two (nginx's between 3.6 and 6.2 ms across runs here); interleaving the rounds puts both
# under the same drift, and the goals are judged on the median of the per-round ratios.
#
#   wrk --> nginx 127.0.0.1:$NGINX_PORT/o/x.gif          (static file, combined access log)
#   wrk --> tern  127.0.0.1:$HTTP_PORT/o/TOKEN            (200 image/gif, records an `open`)
#   wrk --> tern  127.0.0.1:$HTTP_PORT/c/TOKEN            (302 to the link, records a `click`)
#
# Tokens are real: one tracked HTML message (tracking.track: all, delivery disabled) is
# submitted to Tern over SMTP, and the /o/ and /c/ URLs are read from its stored copy.
# After each Tern run the events in the store are counted against the requests wrk
# completed (every request must be recorded). Tern's CPU seconds and RSS are read from
# /proc over its runs.
#
# Goal (issue): tern >= 50% of nginx's req/s, every request recorded, p99 <= nginx's p99
# (both judged on the median of the rounds' ratios).
#
# Usage (as root, to apt-get install wrk and nginx if missing):  Benchmarks/tracking-http.sh
# Environment (defaults in brackets):
#   DURATION [30]  seconds per measured run     CONNECTIONS [64]  THREADS [2]
#   ROUNDS [3]     rounds of (nginx, opens, clicks)
#   WARMUP [3]     seconds of unmeasured load before each measured run (0: none)
#   NGINX_PORT [18080]  TERN_PORT [12687] (submission; +1 TLS, +2 MX, +3 HTTP)
#   SKIP_NGINX=1   measure Tern only (no ratios)
#   FLOOR=1        also measure Tern's GET /healthz (a route that records nothing): the
#                  HTTP stack's own cost, for comparison
#   SKIP_BUILD=1   use the existing release build
#   TERN_SCRATCH_PATH  build in this SwiftPM scratch path instead of .build
#                  (e.g. .build-release, not to contend with another build's lock)
#   TERN_<KEY>     other TERN_ variables reach Tern as its configuration, e.g.
#                  TERN_HTTP_EVENT_LOOPS=2 (default: half of the cores)
#   KEEP_WORK=1    keep the temp dir (configs, logs, wrk outputs, the store) and print it
#   PERF=1         also `perf record -g` Tern during the first round's /o/ run (PERF_RUN=click:
#                  its /c/ run; report in the temp dir; implies KEEP_WORK=1; PERF_FREQ [999])
#   PACE_MS=N      each connection waits N ms between a response and its next request
#                  (wrk's Lua `delay`), so that both servers get about the same request rate
#                  below either one's limit and their latencies compare at equal load;
#                  the req/s ratio then says nothing and the goal line does not apply
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
DURATION=${DURATION:-30} ROUNDS=${ROUNDS:-3} CONNECTIONS=${CONNECTIONS:-64} THREADS=${THREADS:-2} WARMUP=${WARMUP:-3}
NGINX_PORT=${NGINX_PORT:-18080} TERN_PORT=${TERN_PORT:-12687}
HTTP_PORT=$((TERN_PORT + 3))
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
export PATH="$PATH:/usr/sbin:/sbin"
[ "${PERF:-0}" = 1 ] && KEEP_WORK=1

log() { printf '[tracking-http] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ "${SKIP_NGINX:-0}" = 1 ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${need[*]}: run as root to apt-get install them"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # The Debian package may try to start the system nginx on port 80; no init runs it here,
  # and ours uses its own config, prefix and port.
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
[ "${PERF:-0}" = 1 ] && { command -v perf >/dev/null 2>&1 || die "PERF=1 needs perf"; }

. "$REPO/Benchmarks/common.sh"
ports=("$TERN_PORT" $((TERN_PORT + 1)) $((TERN_PORT + 2)) "$HTTP_PORT")
[ "${SKIP_NGINX:-0}" = 1 ] || ports+=("$NGINX_PORT")
require_free_ports "${ports[@]}"
wait_port() { # port pid what
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited"
    sleep 0.1
  done
  die "$3 is not listening on $1"
}

# ---------------------------------------------------------------- build
release_tern_binary

WORK=$(mktemp -d /tmp/tern-tracking-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers may run as an unprivileged user
TERN_PID="" NGINX_PID="" SAMPLER_PID="" PERF_PID=""
stop_pid() { # pid signal
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  stop_pid "$PERF_PID" INT
  stop_pid "$NGINX_PID" QUIT
  stop_pid "$TERN_PID" TERM
  if [ "${KEEP_WORK:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk_run NAME URL: a warm-up, then the measured run into $WORK/NAME.wrk
wrk_run() {
  if [ "$WARMUP" -gt 0 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$2" >"$WORK/$1.warmup" 2>&1 || die "wrk warm-up failed: $(cat "$WORK/$1.warmup")"
    sleep 1
  fi
  "${BEFORE_RUN:-true}" "$1"
  local pace=()
  if [ -n "${PACE_MS:-}" ]; then
    printf 'function delay()\n  return %d\nend\n' "$PACE_MS" >"$WORK/pace.lua"
    pace=(-s "$WORK/pace.lua")
  fi
  log "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency ${pace[*]} $2"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${pace[@]}" "$2" >"$WORK/$1.wrk" 2>&1 || die "wrk failed: $(cat "$WORK/$1.wrk")"
  "${AFTER_RUN:-true}" "$1"
  sed 's/^/    /' "$WORK/$1.wrk" >&2
}
# Numbers from a wrk output: requests/s, p99 in ms, completed requests, errors.
wrk_rps() { awk '/^Requests\/sec:/{print $2}' "$1"; }
wrk_requests() { awk '/ requests in /{print $1}' "$1"; }
wrk_p99_ms() {
  awk '$1=="99%"{v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v);
    f = (u=="us") ? 0.001 : (u=="ms") ? 1 : (u=="s") ? 1000 : (u=="m") ? 60000 : -1; printf "%.2f", v*f}' "$1"
}
wrk_errors() {
  awk '/Socket errors:/{gsub(/,/,""); e+=$4+$6+$8+$10} /Non-2xx or 3xx responses:/{n+=$5}
    END{printf "%d socket, %d non-2xx/3xx", e, n}' "$1"
}

# ---------------------------------------------------------------- nginx
if [ "${SKIP_NGINX:-0}" != 1 ]; then
  NG="$WORK/nginx"
  mkdir -p "$NG/html/o" "$NG/tmp"
  chmod -R 755 "$NG"
  printf 'GIF89a\001\000\001\000\200\000\000\377\377\377\000\000\000!\371\004\001\000\000\000\000,\000\000\000\000\001\000\001\000\000\002\002D\001\000;' >"$NG/html/o/x.gif"
  [ "$(stat -c %s "$NG/html/o/x.gif")" = 43 ] || die "the GIF is not 43 bytes"
  chmod 644 "$NG/html/o/x.gif"
  cat >"$NG/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 1024; }
http {
    types { image/gif gif; }
    default_type application/octet-stream;
    access_log $NG/access.log combined;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $NG/html;
        location / { }
    }
}
CONF
  nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" >"$NG/stdout.log" 2>&1 &
  NGINX_PID=$!
  wait_port "$NGINX_PORT" "$NGINX_PID" "nginx ($(tail -3 "$NG/error.log" "$NG/stdout.log" 2>/dev/null))"
  size=$(python3 -c "import urllib.request,sys; print(len(urllib.request.urlopen(sys.argv[1]).read()))" \
    "http://127.0.0.1:$NGINX_PORT/o/x.gif") || die "nginx does not serve the GIF: $(tail -3 "$NG/error.log")"
  [ "$size" = 43 ] || die "nginx served $size bytes"
  log "nginx $(nginx -v 2>&1 | sed 's/.*\///') pid $NGINX_PID on 127.0.0.1:$NGINX_PORT ($(pgrep -c -P "$NGINX_PID") workers)"
  nginx_cpu() { # clock ticks of the master and its workers
    local t=0 p
    for p in "$NGINX_PID" $(pgrep -P "$NGINX_PID"); do
      t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
  }
  # Per run NAME (nginx1, nginx2, ...): CPU ticks before and after, and the access log's lines.
  nginx_before() { : >"$NG/access.log"; declare -g "T0_$1=$(nginx_cpu)"; }
  nginx_after() {
    declare -g "T1_$1=$(nginx_cpu)"
    sleep 0.5
    declare -g "LOGGED_$1=$(wc -l <"$NG/access.log")"
  }
fi

# ---------------------------------------------------------------- Tern
cat >"$WORK/tern.yaml" <<YAML
data_dir: "$WORK/data"
hostname: bench.test
smtp:
  submission:
    listen: "127.0.0.1:$TERN_PORT"
    tls_listen: "127.0.0.1:$((TERN_PORT + 1))"
  mx:
    listen: "127.0.0.1:$((TERN_PORT + 2))"
http:
  listen: "127.0.0.1:$HTTP_PORT"
  public_url: "http://127.0.0.1:$HTTP_PORT"
delivery:
  enabled: false
tracking:
  track: all
YAML
"$BIN" credential add bench --network 127.0.0.0/8 --config "$WORK/tern.yaml" >/dev/null || die "credential add failed"
"$BIN" serve --config "$WORK/tern.yaml" >"$WORK/tern.log" 2>&1 &
TERN_PID=$!
wait_port "$TERN_PORT" "$TERN_PID" "tern ($(tail -5 "$WORK/tern.log"))"
wait_port "$HTTP_PORT" "$TERN_PID" "tern ($(tail -5 "$WORK/tern.log"))"
log "tern pid $TERN_PID: submission 127.0.0.1:$TERN_PORT, http 127.0.0.1:$HTTP_PORT, data_dir $WORK/data"

# One tracked HTML message, submitted over SMTP; its /o/ and /c/ URLs from the stored copy.
python3 - "$TERN_PORT" <<'PY' || die "submitting the message failed: $(tail -5 "$WORK/tern.log")"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "bench@bench.test"; m["To"] = "reader@example.com"; m["Subject"] = "tracking benchmark"
m.set_content("Hello, see https://example.com/landing")
m.add_alternative('<html><body><p>Hello, see <a href="https://example.com/landing">the page</a>.</p></body></html>', subtype="html")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.send_message(m)
PY
DB="$WORK/data/tern.sqlite"
read_urls() {
  python3 - "$DB" "$HTTP_PORT" <<'PY'
import email, re, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = db.execute("select content from messages").fetchall()
if not rows: sys.exit(1)
msg = email.message_from_bytes(bytes(rows[0][0]) if not isinstance(rows[0][0], str) else rows[0][0].encode())
text = "".join(p.get_payload(decode=True).decode("utf-8", "replace") for p in msg.walk() if p.get_content_type() == "text/html")
base = re.escape(f"http://127.0.0.1:{sys.argv[2]}")
o = re.search(base + r"/o/[A-Za-z0-9_-]+", text); c = re.search(base + r"/c/[A-Za-z0-9_-]+", text)
if not (o and c): sys.exit(2)
print(o.group(0), c.group(0))
PY
}
OPEN_URL="" CLICK_URL=""
for _ in $(seq 1 100); do
  if urls=$(read_urls 2>/dev/null); then read -r OPEN_URL CLICK_URL <<<"$urls"; break; fi
  sleep 0.1
done
[ -n "$OPEN_URL" ] || die "no /o/ and /c/ URLs in the stored message (is tracking on?)"
log "open URL $OPEN_URL"
log "click URL $CLICK_URL"
curl_check() { python3 - "$1" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10); c.request("GET", u.path)
r = c.getresponse(); body = r.read()
print(r.status, r.getheader("Content-Type"), len(body), r.getheader("Location"))
PY
}
read -r st ct n _ < <(curl_check "$OPEN_URL"); [ "$st $ct $n" = "200 image/gif 43" ] || die "GET /o/: $st $ct $n"
read -r st _ _ loc < <(curl_check "$CLICK_URL"); [ "$st $loc" = "302 https://example.com/landing" ] || die "GET /c/: $st $loc"

events() { sqlite3 "file:$DB?mode=ro" "select count(*) from events where type='$1'"; }
event_type() { echo "${1%%[0-9]*}"; } # open2 -> open
tern_ticks() { awk '{print $14 + $15}' "/proc/$TERN_PID/stat"; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$TERN_PID/status" 2>/dev/null || echo 0; }
RSS_START=$(( $(rss_kb) / 1024 ))
( while kill -0 "$TERN_PID" 2>/dev/null; do rss_kb; sleep 0.5; done ) >"$WORK/rss.txt" &
SAMPLER_PID=$!

# Events before the measured run NAME (open1, click1, ...; the checks and the warm-up are
# recorded too: wait for their batch), then after it: the difference is what the run recorded.
tern_before() {
  sleep 1
  declare -g "EV0_$1=$(events "$(event_type "$1")")" "T0_$1=$(tern_ticks)"
  if [ "${PERF:-0}" = 1 ] && [ "$1" = "${PERF_RUN:-open}1" ]; then
    perf record -g -F "${PERF_FREQ:-999}" -p "$TERN_PID" -o "$WORK/perf.data" >"$WORK/perf.log" 2>&1 &
    PERF_PID=$!
    sleep 0.5
  fi
}
tern_after() {
  declare -g "T1_$1=$(tern_ticks)"
  if [ -n "$PERF_PID" ]; then stop_pid "$PERF_PID" INT; PERF_PID=""; fi
  # The last batch (100 ms) and its transaction; then until the count holds still for a
  # second (up to 15 s), so that a writer still catching up is not taken for lost events.
  sleep 1.5
  local count last=-1 waited=0 type
  type=$(event_type "$1")
  count=$(events "$type")
  while [ "$count" != "$last" ] && [ "$waited" -lt 15 ]; do
    last=$count; sleep 1; waited=$((waited + 1)); count=$(events "$type")
  done
  [ "$waited" -gt 1 ] && log "$1: events still being stored ${waited}s after the run"
  declare -g "EV1_$1=$count"
}
floor_before() { sleep 1; declare -g "T0_$1=$(tern_ticks)"; }
floor_after() { declare -g "T1_$1=$(tern_ticks)"; }
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS"
  [ "${SKIP_NGINX:-0}" = 1 ] || BEFORE_RUN=nginx_before AFTER_RUN=nginx_after wrk_run "nginx$r" "http://127.0.0.1:$NGINX_PORT/o/x.gif"
  BEFORE_RUN=tern_before AFTER_RUN=tern_after wrk_run "open$r" "$OPEN_URL"
  BEFORE_RUN=tern_before AFTER_RUN=tern_after wrk_run "click$r" "$CLICK_URL"
  [ "${FLOOR:-0}" = 1 ] && BEFORE_RUN=floor_before AFTER_RUN=floor_after wrk_run "floor$r" "http://127.0.0.1:$HTTP_PORT/healthz"
done

kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
RSS_PEAK=$(awk '{if ($1 > p) p = $1} END{printf "%d", p/1024}' "$WORK/rss.txt")
RSS_HWM=$(awk '/^VmHWM:/{printf "%d", $2/1024}' "/proc/$TERN_PID/status")
PENDING_ERRORS=$(grep -c -i "error" "$WORK/tern.log" || true)
stop_pid "$TERN_PID" TERM; TERN_PID=""
stop_pid "$NGINX_PID" QUIT; NGINX_PID=""
if [ "${PERF:-0}" = 1 ]; then
  perf report -i "$WORK/perf.data" --no-children --stdio --percent-limit 1 >"$WORK/perf.report" 2>/dev/null || true
  perf report -i "$WORK/perf.data" --children --stdio --percent-limit 2 -g none >"$WORK/perf.children" 2>/dev/null || true
  log "perf: $WORK/perf.data, $WORK/perf.report, $WORK/perf.children"
fi

# ---------------------------------------------------------------- summary
HZ=$(getconf CLK_TCK)
cpu() { awk -v t="$(( $(eval echo "\$T1_$1") - $(eval echo "\$T0_$1") ))" -v hz="$HZ" 'BEGIN{printf "%.1f", t/hz}'; }
echo
echo "tracking HTTP: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (warm-up ${WARMUP}s), $ROUNDS round(s), $(nproc) cores, loopback"
printf '  %-5s %-22s %12s %10s %12s %10s  %s\n' round target "req/s" "p99 ms" requests "CPU s" errors
row() { # round name file cpu
  printf '  %-5s %-22s %12s %10s %12s %10s  %s\n' "$1" "$2" "$(wrk_rps "$3")" "$(wrk_p99_ms "$3")" "$(wrk_requests "$3")" "$4" "$(wrk_errors "$3")"
}
for r in $(seq 1 "$ROUNDS"); do
  [ "${SKIP_NGINX:-0}" = 1 ] || row "$r" "nginx /o/x.gif" "$WORK/nginx$r.wrk" "$(cpu "nginx$r")"
  row "$r" "tern GET /o/TOKEN" "$WORK/open$r.wrk" "$(cpu "open$r")"
  row "$r" "tern GET /c/TOKEN" "$WORK/click$r.wrk" "$(cpu "click$r")"
  [ "${FLOOR:-0}" = 1 ] && row "$r" "tern GET /healthz" "$WORK/floor$r.wrk" "$(cpu "floor$r")"
done
if [ "${SKIP_NGINX:-0}" != 1 ]; then
  # One line per round: the four ratios; then their medians, on which the goal is judged.
  for r in $(seq 1 "$ROUNDS"); do
    echo "$r $(wrk_rps "$WORK/nginx$r.wrk") $(wrk_p99_ms "$WORK/nginx$r.wrk") $(wrk_rps "$WORK/open$r.wrk") $(wrk_p99_ms "$WORK/open$r.wrk") $(wrk_rps "$WORK/click$r.wrk") $(wrk_p99_ms "$WORK/click$r.wrk")"
  done | awk -v pace="${PACE_MS:-}" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { n++; ro[n] = $4 / $2; rc[n] = $6 / $2; po[n] = $5 / $3; pc[n] = $7 / $3
      printf "  round %d ratio tern/nginx:  req/s open %.2f  click %.2f   p99 open %.2f  click %.2f\n", $1, ro[n], rc[n], po[n], pc[n] }
    END {
      mro = median(ro, n); mrc = median(rc, n); mpo = median(po, n); mpc = median(pc, n)
      printf "  median of %d round(s):      req/s open %.2f  click %.2f   p99 open %.2f  click %.2f\n", n, mro, mrc, mpo, mpc
      printf "  goals: req/s ratio >= 0.50, p99 ratio <= 1.00\n"
      if (pace != "") printf "  paced (%s ms between requests): latencies at about equal load; the goal is for unpaced runs\n", pace
      else printf "  goal met (medians): open %s  click %s\n", (mro >= 0.5 && mpo <= 1) ? "yes" : "NO", (mrc >= 0.5 && mpc <= 1) ? "yes" : "NO" }'
  for r in $(seq 1 "$ROUNDS"); do
    echo "  round $r nginx access log lines: $(eval echo "\$LOGGED_nginx$r") (wrk completed $(wrk_requests "$WORK/nginx$r.wrk"))"
  done
fi
check() { # run name
  local req ev
  req=$(wrk_requests "$WORK/$1.wrk")
  ev=$(( $(eval echo "\$EV1_$1") - $(eval echo "\$EV0_$1") ))
  printf '  %-6s events recorded during the run: %d, wrk completed: %d, difference %+d%s\n' "$1" "$ev" "$req" $((ev - req)) \
    "$( [ $((ev - req)) -ge 0 ] && [ $((ev - req)) -le "$CONNECTIONS" ] && echo " (ok: <= $CONNECTIONS in flight when wrk stopped)" || echo " (MISMATCH)")"
}
echo "event count check (store vs wrk):"
for r in $(seq 1 "$ROUNDS"); do
  check "open$r"
  check "click$r"
done
echo "tern RSS MiB: start $RSS_START, peak sampled $RSS_PEAK, VmHWM $RSS_HWM; log lines mentioning errors: $PENDING_ERRORS"
