#!/usr/bin/env bash
# Every member crate takes its dependencies from [workspace.dependencies],
# so one version (and one feature baseline) of each is chosen in one place.
# A member may add features (`x = { workspace = true, features = [...] }`),
# never a version or a path of its own. Fuzz crates are workspaces of
# their own (nightly, cargo-fuzz) and are not members.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
for manifest in services/*/Cargo.toml proto/Cargo.toml integration-tests/Cargo.toml; do
  offenders=$(awk '
    /^\[/ { deps = ($0 ~ /^\[(dev-|build-)?dependencies\]$/) ; next }
    deps && /^[A-Za-z0-9_-]+ *=/ && !/workspace *= *true/ { print FILENAME ": " $0 }
  ' "$manifest")
  if [[ -n "$offenders" ]]; then
    echo "$offenders"
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "check-manifests: declare these in the root Cargo.toml's [workspace.dependencies] and use \`.workspace = true\`" >&2
fi
# Lean binaries: services without events do not build librdkafka, and the
# gateway parses no mail (what each links is what `cargo tree` resolves for
# that package alone, as the Dockerfile builds them).
lean() {
  local package=$1; shift
  local tree
  tree=$(cargo tree --locked --offline -p "$package" -e normal --prefix none 2>/dev/null || cargo tree -p "$package" -e normal --prefix none)
  for crate in "$@"; do
    if grep -q "^$crate v" <<<"$tree"; then
      echo "check-manifests: $package depends on $crate ($(cargo tree -p "$package" -e normal -i "$crate" --prefix none | sed -n 2p))" >&2
      status=1
    fi
  done
}
lean pushmail-gateway rdkafka mail-parser plotters
lean pushmail-transcode rdkafka plotters
lean pushmail-mailbox plotters
lean pushmail-activesync rdkafka mail-parser plotters
# The shipped standalone carries no plotting stack (the load generator is a feature).
lean pushmail plotters hdrhistogram
exit $status
