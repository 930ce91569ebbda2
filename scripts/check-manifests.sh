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
exit $status
