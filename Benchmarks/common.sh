# common.sh — sourced by the benchmark scripts (which define log and die first).

# The port is free on 127.0.0.1 (nothing accepts a connection on it).
free_port() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Dies unless every given port is free.
require_free_ports() {
  local p
  for p in "$@"; do free_port "$p" || die "port $p is in use"; done
}

# Sets BIN to the release build of PRODUCT, building it first unless SKIP_BUILD=1. The
# SwiftPM scratch path is TERN_SCRATCH_PATH, else DEFAULT_SCRATCH when given, else .build.
#   release_binary PRODUCT [DEFAULT_SCRATCH]
release_binary() {
  local product=$1 path=${TERN_SCRATCH_PATH:-${2:-}} scratch=()
  [ -n "$path" ] && scratch=(--scratch-path "$path")
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "swift build -c release --product $product ${scratch[*]}"
    swift build -c release --product "$product" "${scratch[@]}" >&2
  fi
  BIN="$(swift build -c release --show-bin-path "${scratch[@]}")/$product"
  [ -x "$BIN" ] || die "no release binary at $BIN"
}

# Sets BIN to the release `tern` (see release_binary).
release_tern_binary() { release_binary tern; }

# Sets BIN to the release build of PRODUCT of the benchmark package (Benchmarks/Package.swift),
# building it first unless SKIP_BUILD=1, in TERN_SCRATCH_PATH when set, else Benchmarks/.build.
#   release_benchmark_binary PRODUCT
release_benchmark_binary() {
  local product=$1 scratch=()
  [ -n "${TERN_SCRATCH_PATH:-}" ] && scratch=(--scratch-path "$TERN_SCRATCH_PATH")
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "swift build -c release --package-path Benchmarks --product $product ${scratch[*]}"
    swift build -c release --package-path Benchmarks --product "$product" "${scratch[@]}" >&2
  fi
  BIN="$(swift build -c release --package-path Benchmarks --show-bin-path "${scratch[@]}")/$product"
  [ -x "$BIN" ] || die "no release binary at $BIN"
}

# Starts `$BIN serve --config CONFIG` (log in LOG), sets TERN_PID and waits until PORT accepts;
# dies with the log's tail if tern exits first.
start_tern() {
  local config=$1 port=$2 logfile=$3
  "$BIN" serve --config "$config" >"$logfile" 2>&1 &
  TERN_PID=$!
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$TERN_PID" 2>/dev/null || die "tern exited: $(tail -5 "$logfile")"
    sleep 0.1
  done
  die "tern did not listen on 127.0.0.1:$port"
}

# Stops TERN_PID (SIGTERM, then SIGKILL after 10 s) if it still runs, and clears it.
stop_tern() {
  if [ -n "${TERN_PID:-}" ] && kill -0 "$TERN_PID" 2>/dev/null; then
    kill -TERM "$TERN_PID"; for _ in $(seq 1 100); do kill -0 "$TERN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$TERN_PID" 2>/dev/null || true
  fi
  TERN_PID=""
}
