#!/usr/bin/env bash
# `make bench`: every benchmark, each against a baseline measured in the
# same run; reports under bench/reports/, one summary table at the end.
# Kept out of `make test`: numbers on a shared machine are for ratios only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/provision.sh
source scripts/env.sh
mkdir -p bench/reports
# Every report this run writes is stamped with the run and the commit; a
# report the run did not rewrite is refused, so the summary never stitches
# runs (or commits) together.
run_id="$(date -u +%Y%m%dT%H%M%SZ)-$$"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit="$commit-dirty"; fi
started="$(mktemp)"
stamp() {
  local report="bench/reports/$1.md"
  if [[ ! "$report" -nt "$started" ]]; then
    echo "bench: $report was not written by this run ($run_id)" >&2
    exit 1
  fi
  printf '\nRun `%s`, commit `%s`.\n' "$run_id" "$commit" >> "$report"
}
cargo run --profile bench -p pushmail-integration-tests --example bus_bench -- bench/reports/bus.md
stamp bus
cargo run --profile bench -p pushmail-integration-tests --example binding_bench -- bench/reports/binding.md
stamp binding
# The session bench runs the real binary in its own process (its RSS is the
# measurement), built as it ships (the Dockerfile builds --release: with
# LTO, a heartbeat costs measurably less CPU than in the bench profile).
cargo build --release -p pushmail-session --bin pushmail-session
cargo run --profile bench -p pushmail-integration-tests --example session_bench -- bench/reports/session.md
stamp session
cargo run --profile bench -p pushmail-integration-tests --example imap_bench -- bench/reports/imap.md
stamp imap
cargo run --profile bench -p pushmail-integration-tests --example smtp_bench -- bench/reports/smtp.md
stamp smtp
cargo run --profile bench -p pushmail-integration-tests --example dispatch_bench -- bench/reports/dispatch.md
stamp dispatch
cargo run --profile bench -p pushmail-integration-tests --example dispatch_bench -- bench/reports/dispatch_kafka.md kafka
stamp dispatch_kafka
cargo run --profile bench -p pushmail-integration-tests --example transcode_bench -- bench/reports/transcode.md
stamp transcode
# Hostile files against the service as it runs (its own process, its
# converter workers' RSS read from /proc).
cargo build --profile bench -p pushmail-transcode --bin pushmail-transcode
cargo run --profile bench -p pushmail-integration-tests --example transcode_attack_bench -- bench/reports/transcode_attacks.md
stamp transcode_attacks
# The mailbox service against Dovecot and Postfix, with imaplib and swaks
# as the same-run baselines.
cargo run --profile bench -p pushmail-integration-tests --example mailbox_bench -- bench/reports/mailbox.md
stamp mailbox
# A stock mail app's first Sync through the ActiveSync front door, with
# imaplib as the same-run baseline.
cargo run --profile bench -p pushmail-integration-tests --example activesync_bench -- bench/reports/activesync.md
stamp activesync
# Held Pings in the front door's own process (its RSS is the measurement),
# with a bare axum server holding the same requests as the same-run floor.
cargo build --profile bench -p pushmail-activesync --bin pushmail-activesync
cargo run --profile bench -p pushmail-integration-tests --example eas_hold_bench -- bench/reports/activesync_holds.md
stamp activesync_holds

# End to end: the load generator, standalone (SQLite bus, memory bus) then over Kafka on a fresh
# in-memory tansu of its own (the shared one slows as it fills).
cargo build --profile bench -p pushmail --bin pushmail --features loadgen
kafka_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
kafka_dir=$(mktemp -d)
(cd "$kafka_dir" && exec "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine memory://tansu/ >tansu.log 2>&1) &
kafka_pid=$!
trap 'kill "$kafka_pid" 2>/dev/null || true; rm -rf "$kafka_dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break; sleep 0.1; done
# Standalone runs once per bus of BENCH_BUSES: the durable SQLite bus first
# (measured against the goals), then the memory bus as its same-run baseline;
# then Kafka, then (--eas) the first bus again with the phones as held
# ActiveSync Pings, timed against its WebSocket run.
PUSHMAIL_STANDALONE__TELEMETRY__LOG_LEVEL=error "${CARGO_TARGET_DIR:-target}/release/pushmail" loadgen \
  --buses "${BENCH_BUSES:-sqlite,memory}" --kafka "127.0.0.1:$kafka_port" --eas --report bench/reports/e2e.md
stamp e2e

# One table: every report's first table, the report named in front.
{
  echo "# Benchmark summary ($(date -u +%Y-%m-%d))"
  echo
  echo "Run \`$run_id\`, commit \`$commit\`: every report below was written by this run."
  echo "Each row compares this run with a baseline measured in the same run on this machine; the reports say how."
  echo
  echo "| report | metric | this run | baseline (same run) | baseline value | ratio | goal |"
  echo "|---|---|---|---|---|---|---|"
  for report in bus binding session imap smtp dispatch dispatch_kafka transcode transcode_attacks mailbox activesync activesync_holds e2e; do
    awk -v link="[$report]($report.md)" '
      /^\| metric \|/ { in_table = 1; next }
      in_table && /^\|---/ { next }
      in_table && /^\|/ { print "| " link " " $0; next }
      in_table { exit }
    ' "bench/reports/$report.md"
  done
} > bench/reports/summary.md
cat bench/reports/summary.md
rm -f "$started"
# A goal not met fails `make bench` (the reports are written first).
if grep -q 'NOT met' bench/reports/summary.md; then
  echo "bench: goals not met:" >&2
  grep 'NOT met' bench/reports/summary.md >&2
  exit 1
fi
