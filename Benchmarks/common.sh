# common.sh — sourced by the benchmark scripts (which define log and die first).

# The port is free on 127.0.0.1 (nothing accepts a connection on it).
free_port() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Dies unless every given port is free.
require_free_ports() {
  local p
  for p in "$@"; do free_port "$p" || die "port $p is in use"; done
}

# Sets BIN to the release `tern`, building it first unless SKIP_BUILD=1; TERN_SCRATCH_PATH
# builds in that SwiftPM scratch path instead of .build.
release_tern_binary() {
  local scratch=()
  [ -n "${TERN_SCRATCH_PATH:-}" ] && scratch=(--scratch-path "$TERN_SCRATCH_PATH")
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "swift build -c release --product tern ${scratch[*]}"
    swift build -c release --product tern "${scratch[@]}" >&2
  fi
  BIN="$(swift build -c release --show-bin-path "${scratch[@]}")/tern"
  [ -x "$BIN" ] || die "no release binary at $BIN"
}
