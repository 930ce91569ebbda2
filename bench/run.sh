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
{
  echo "# Benchmark summary ($(date -u +%Y-%m-%d))"
  echo
  echo "| report | |"
  echo "|---|---|"
  for report in bench/reports/*.md; do
    [[ "$(basename "$report")" == summary.md ]] && continue
    echo "| $(head -n1 "$report" | sed 's/^# //') | [$(basename "$report")]($(basename "$report")) |"
  done
  echo
  tail -n +3 bench/reports/bus.md
} > bench/reports/summary.md
cat bench/reports/summary.md
