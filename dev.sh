#!/usr/bin/env bash
# One entry point for a fresh machine:
#   ./dev.sh up     bring up JupyterHub + the pool service with the demo configuration
#   ./dev.sh test   run the test suite (extra arguments go to pytest)
# Each sets up what it needs first; a second run only checks and is fast.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.gpupool-installed"

log() { printf '[dev.sh] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # Installs Debian packages only when a command is missing.
  local missing=()
  while [ $# -gt 0 ]; do
    local cmd=$1 pkg=$2; shift 2
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

inputs_hash() {
  # The extension is rebuilt when its sources change, not only its manifests.
  cat pyproject.toml extensions/*/pyproject.toml extensions/*/package.json \
    $(find extensions/*/src extensions/*/style -type f 2>/dev/null | sort) 2>/dev/null | sha256sum | cut -d' ' -f1
}

bootstrap() {
  command -v node >/dev/null || apt_install node nodejs npm npm
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment in .venv"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(inputs_hash)" ]; then
    log "installing Python packages (first run: a minute or two)"
    "$VENV/bin/pip" install -q -U pip
    "$VENV/bin/pip" install -q -e '.[test]'
    for ext in extensions/*/; do
      if [ -f "$ext/pyproject.toml" ]; then
        log "building and installing the JupyterLab extension in $ext"
        "$VENV/bin/pip" install -q -e "$ext"
      fi
    done
    inputs_hash > "$STAMP"
  fi
  for ext in extensions/*/; do
    [ -f "$ext/package.json" ] || continue
    # An editable reinstall may keep an earlier build: rebuild when a source is newer than it.
    built=$(ls "$ext"*/labextension/package.json 2>/dev/null | head -1)
    if [ -z "$built" ] || [ -n "$(find "$ext/src" "$ext/style" -type f -newer "$built" 2>/dev/null | head -1)" ]; then
      log "rebuilding the labextension in $ext (its sources are newer than the build)"
      (cd "$ext" && PATH="$VENV/bin:$PATH" jlpm build:prod >/dev/null)
      built=$(ls "$ext"*/labextension/package.json 2>/dev/null | head -1)
    fi
    # pip copies the build into the environment: JupyterLab must load this build, not an older copy.
    name=$("$VENV/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' "$ext/package.json")
    if [ -n "$built" ] && ! cmp -s "$built" "$VENV/share/jupyter/labextensions/$name/package.json"; then
      log "installing the current labextension build of $ext"
      "$VENV/bin/jupyter" labextension develop --overwrite "$ext" >/dev/null 2>&1
    fi
  done
  if [ ! -x "$VENV/bin/configurable-http-proxy" ]; then
    log "installing configurable-http-proxy (npm)"
    npm install -g --silent --prefix "$VENV" configurable-http-proxy >/dev/null 2>&1
  fi
}

bootstrap_test_tools() {
  # The browser tests drive Debian's chromium; the store tests run a real PostgreSQL.
  apt_install /usr/bin/chromium chromium /usr/lib/postgresql/15/bin/postgres postgresql
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    bootstrap
    export PATH="$VENV/bin:$PATH"
    exec "$VENV/bin/python" -m demo "$@"
    ;;
  test)
    bootstrap
    bootstrap_test_tools
    export PATH="$VENV/bin:$PATH"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh up | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
