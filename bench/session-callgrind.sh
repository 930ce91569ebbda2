#!/usr/bin/env bash
# Instructions and L1 cache misses per heartbeat of `pushmail-session` and
# of the session bench's plain TCP floor, counted by callgrind's cache
# simulation (deterministic, unlike CPU time on a shared machine): idle
# devices from one client process heartbeat every 60 s; counters are
# zeroed once all are connected and read one interval later (one heartbeat
# per device). Slow under valgrind, so not part of `make bench`.
# Usage: bench/session-callgrind.sh [devices]   (default 15000)
# SESSION_DIRECTORY=redis measures the session with the Redis directory
# (production) instead of the memory one (standalone); Redis must run.
# With CALLGRIND_KEEP=<dir> the raw profiles are kept there, for
# `callgrind_annotate --inclusive=yes <dir>/pushmail-session.*.1`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
devices=${1:-15000}
command -v valgrind >/dev/null || apt-get install -y valgrind
# The session as it ships (the Dockerfile builds --release).
cargo build --release -p pushmail-session --bin pushmail-session
cargo build --profile bench -p pushmail-integration-tests --example session_bench
bin=${CARGO_TARGET_DIR:-target}/release
bench=$bin/examples/session_bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# measure <label> <ws|tcp> <device address> <server command...>
measure() {
  local label=$1 kind=$2 addr=$3
  shift 3
  valgrind --tool=callgrind --cache-sim=yes --trace-children=yes --callgrind-out-file="$work/$label.%p" "$@" >"$work/$label.log" 2>&1 &
  local server=$!
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null && break; sleep 0.2; done
  "$bench" client "$kind" "$addr" 127.0.0.2 "$devices" >"$work/$label.client" 2>&1 &
  local client=$!
  for _ in $(seq 1200); do grep -q ready "$work/$label.client" && break; sleep 0.5; done
  grep -q ready "$work/$label.client" || { echo "$label: clients never connected" >&2; exit 1; }
  callgrind_control -z "$server" >/dev/null
  sleep 60
  callgrind_control -d "$server" >/dev/null
  sleep 2
  kill "$client" "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP" && cp "$work/$label".* "$CALLGRIND_KEEP/"; fi
  # summary: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  awk -v n="$devices" -v label="$label" '/^summary:/ {
    printf "| %s | %.0f | %.0f | %.0f | %.0f |\n", label, $2 / n, $5 / n, $6 / n, $7 / n }' "$work/$label".*.1
}

echo "| per heartbeat, $devices devices | instructions | L1i misses | L1d read misses | L1d write misses |"
echo "|---|---|---|---|---|"
floor=127.0.0.1:$(port)
measure floor tcp "$floor" "$bench" floor "$floor"
devices_addr=127.0.0.1:$(port)
measure pushmail-session ws "$devices_addr" env -i \
  PUSHMAIL_SESSION__DEVICES__ADDR="$devices_addr" \
  PUSHMAIL_SESSION__DEVICES__ADVERTISE="http://127.0.0.1:$(port)" \
  PUSHMAIL_SESSION__SERVER__GRPC_ADDR="127.0.0.1:$(port)" \
  PUSHMAIL_SESSION__SERVER__ADMIN_ADDR="127.0.0.1:$(port)" \
  PUSHMAIL_SESSION__DIRECTORY__KIND="${SESSION_DIRECTORY:-memory}" PUSHMAIL_SESSION__BUS__KIND=memory \
  PUSHMAIL_SESSION__DIRECTORY__REDIS__KEY_PREFIX="pushmail-callgrind-$$:" \
  PUSHMAIL_SESSION__OUTBOX__REDIS__KEY_PREFIX="pushmail-callgrind-$$:" \
  PUSHMAIL_SESSION__OUTBOX__REDIS__ALLOW_VOLATILE=true \
  PUSHMAIL_SESSION__TOKENS__PUBLIC_KEY="$("$bench" public-key)" \
  PUSHMAIL_SESSION__SECURITY__SERVICE_KEYS="$("$bench" service-keys)" \
  PUSHMAIL_SESSION__SECURITY__CREDENTIAL="$("$bench" session-credential)" \
  PUSHMAIL_SESSION__TELEMETRY__LOG_LEVEL=warn \
  "$bin/pushmail-session"
