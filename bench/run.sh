#!/usr/bin/env bash
# `make bench`: every benchmark, each against a baseline measured in the
# same run; reports under bench/reports/, one summary table at the end.
# Kept out of `make test`: numbers on a shared machine are for ratios only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/provision.sh
source scripts/env.sh
mkdir -p bench/reports
cargo run --profile bench -p pushmail-integration-tests --example bus_bench -- bench/reports/bus.md
cargo run --profile bench -p pushmail-integration-tests --example binding_bench -- bench/reports/binding.md
# The session bench runs the real binary in its own process (its RSS is the measurement).
cargo build --profile bench -p pushmail-session --bin pushmail-session
cargo run --profile bench -p pushmail-integration-tests --example session_bench -- bench/reports/session.md
cargo run --profile bench -p pushmail-integration-tests --example imap_bench -- bench/reports/imap.md
cargo run --profile bench -p pushmail-integration-tests --example smtp_bench -- bench/reports/smtp.md
cargo run --profile bench -p pushmail-integration-tests --example dispatch_bench -- bench/reports/dispatch.md
cargo run --profile bench -p pushmail-integration-tests --example dispatch_bench -- bench/reports/dispatch_kafka.md kafka
cargo run --profile bench -p pushmail-integration-tests --example transcode_bench -- bench/reports/transcode.md
{
  echo "# Benchmark summary ($(date -u +%Y-%m-%d))"
  echo
  echo "| report | |"
  echo "|---|---|"
  for report in bench/reports/*.md; do
    [[ "$(basename "$report")" == summary.md ]] && continue
    echo "| $(head -n1 "$report" | sed 's/^# //') | [$(basename "$report")]($(basename "$report")) |"
  done
  for report in bus binding session imap smtp dispatch dispatch_kafka transcode; do
    echo
    echo "## $(head -n1 "bench/reports/$report.md" | sed 's/^# //')"
    tail -n +3 "bench/reports/$report.md"
  done
} > bench/reports/summary.md
cat bench/reports/summary.md
