#!/usr/bin/env bash
# Build Dockerfile.cpu and run a command in the image (default: the image's CMD, the test suite).
#   scripts/docker-check.sh [CMD ARGS...]        e.g. scripts/docker-check.sh harness doctor
# With a running Docker engine it uses docker. Without one (this project's machines and CI), it uses
# ../shared/tools/dockerfile-check.sh, which builds with podman on a locally made debian:bookworm-slim.
# Exit status: 0 built and CMD passed; 77 skipped because no container tool can run here; else failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tag=caffe-harness-cpu
skip() { echo "SKIP docker check: $*" >&2; exit 77; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -f "$here/Dockerfile.cpu" -t "$tag" "$here"
  exec docker run --rm "$tag" "$@"
fi

tool=$here/../shared/tools/dockerfile-check.sh
[ -f "$tool" ] || skip "no Docker engine, and no $tool for the podman route. With Docker: docker build -f Dockerfile.cpu -t $tag ."
# The podman route installs podman, runc and debootstrap with apt and writes /var/lib/containers: root only.
[ "$(id -u)" = 0 ] || skip "the podman route needs root (apt-get install podman runc debootstrap)."
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null \
    || skip "could not install podman/runc/debootstrap with apt."
fi
podman info >/dev/null 2>&1 || skip "podman is installed but cannot run here: $(podman info 2>&1 | tail -1)"
# pip inside the build must trust this network's TLS; the system bundle is the ordinary one elsewhere, so
# handing it over is harmless on a normal machine.
if [ -z "${HOST_CA_BUNDLE:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
exec bash "$tool" "$here/Dockerfile.cpu" "$here" -- "$@"
