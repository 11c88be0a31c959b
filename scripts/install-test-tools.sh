#!/usr/bin/env bash
# Tools the tests need beyond .venv: Debian's chromium, for rendering report.html headless
# (tests/test_html_report.py). Quiet and idempotent; without root or apt it says why and exits non-zero,
# and the test that needs chromium then skips with that reason.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-tools: chromium is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: chromium is missing and there is no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine: update only when the install fails.
apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
command -v chromium >/dev/null
