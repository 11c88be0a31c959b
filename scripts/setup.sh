#!/usr/bin/env bash
# One-command setup on Debian 12 / Ubuntu: build packages, Caffe from Debian's source package
# (cached under ~/.cache/caffe-harness, keyed by version + options), then .venv with pycaffe and harness.
#
#   scripts/setup.sh            CPU build (default)
#   CAFFE_CUDA=1 scripts/setup.sh   CUDA build (needs nvcc; see docs/gpu.md)
#
# Settings (environment): PYTHON (interpreter for .venv, default python3), CAFFE_CACHE (cache root),
# CAFFE_MIRRORS (space-separated Debian mirrors tried in order), VENV (default .venv), JOBS.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n==> %s\n' "$*"; current_step="$*"; }
current_step=start
fail() {
  printf '\nsetup failed during: %s\n%s\n' "$current_step" "$*" >&2
  exit 1
}
trap 'rc=$?; [ $rc -eq 0 ] || printf "\nsetup failed during: %s (exit %s). Read the output above; re-running is safe: nothing half-built is kept.\n" "$current_step" "$rc" >&2' EXIT

CAFFE_VERSION=1.0.0+git20180821.99bd997-8
ORIG_TARBALL=caffe_1.0.0+git20180821.99bd997.orig.tar.gz
ORIG_SHA256=e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c
DEBIAN_TARBALL=caffe_1.0.0+git20180821.99bd997-8.debian.tar.xz
DEBIAN_SHA256=07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21
CAFFE_MIRRORS=${CAFFE_MIRRORS:-"http://deb.debian.org/debian http://archive.debian.org/debian"}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$here/.venv}
JOBS=${JOBS:-$(nproc)}
CAFFE_CUDA=${CAFFE_CUDA:-0}
CACHE_ROOT=${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caffe-harness}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  fail "Installing Debian packages needs root: run as root, install sudo, or install them yourself: $*"; fi; }

# ---------------------------------------------------------------------------------------------
step "checking Debian build packages"
packages=(build-essential cmake git dpkg-dev ca-certificates debian-archive-keyring
  python3 python3-dev python3-venv
  libboost-python-dev libboost-filesystem-dev libboost-system-dev libboost-thread-dev
  libgoogle-glog-dev libgflags-dev libprotobuf-dev protobuf-compiler libhdf5-dev
  libopenblas-dev liblmdb-dev libsnappy-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq || fail "apt-get update failed: check the network and /etc/apt/sources.list*."
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get install failed for: ${missing[*]}"
else
  echo "all present"
fi

pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
  || fail "No Python interpreter '$PYTHON': set PYTHON=/path/to/python3."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "Python >= 3.11 is needed ($PYTHON is $pyver)."

# ---------------------------------------------------------------------------------------------
# The cache key covers everything that changes the binaries: source version, our edits, options.
build_opts="cuda=$CAFFE_CUDA python=$pyver"
if [ "$CAFFE_CUDA" = 1 ]; then
  . "$here/scripts/cuda-options.sh"   # sets cuda_cmake_args and extends build_opts
fi
key=$(printf '%s\n' "$CAFFE_VERSION" "$build_opts" | cat - "$here/scripts/patch-caffe.sh" | sha256sum | cut -c1-12)
prefix="$CACHE_ROOT/caffe-${CAFFE_VERSION%%+*}-$([ "$CAFFE_CUDA" = 1 ] && echo cuda || echo cpu)-py$pyver-$key"

if [ -f "$prefix/.complete" ]; then
  step "Caffe build found in cache: $prefix"
else
  rm -rf "$prefix"   # an unfinished build from an earlier run is never trusted
  work=$(mktemp -d "${TMPDIR:-/tmp}/caffe-harness-build.XXXXXX")
  step "fetching Caffe source package $CAFFE_VERSION (Debian 11 'bullseye', verified by apt)"
  mkdir -p "$work/apt/lists/partial" "$work/src"
  fetched=
  tried=()
  for mirror in $CAFFE_MIRRORS; do
    tried+=("$mirror")
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" > "$work/apt/sources.list"
    aptopts=(-o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$work/apt/lists" -o Debug::NoLocking=1)
    if apt-get "${aptopts[@]}" -qq update && (cd "$work/src" && apt-get "${aptopts[@]}" -qq source --download-only "caffe=$CAFFE_VERSION"); then
      fetched=$mirror; break
    fi
    echo "  $mirror did not serve it; trying the next mirror"
  done
  [ -n "$fetched" ] || fail "Could not download Caffe's source package from: ${tried[*]}. Check the network, or set CAFFE_MIRRORS to a Debian mirror that still carries bullseye."
  (cd "$work/src" && printf '%s  %s\n%s  %s\n' "$ORIG_SHA256" "$ORIG_TARBALL" "$DEBIAN_SHA256" "$DEBIAN_TARBALL" | sha256sum -c --quiet) \
    || fail "Checksums of the downloaded source do not match the pinned ones (scripts/setup.sh)."
  (cd "$work/src" && dpkg-source --no-check -x "caffe_$CAFFE_VERSION.dsc" caffe >/dev/null) || fail "dpkg-source could not unpack the source."

  step "applying the fixes for Debian 12 (scripts/patch-caffe.sh)"
  bash "$here/scripts/patch-caffe.sh" "$work/src/caffe"

  step "building Caffe ($build_opts) with $JOBS jobs into $prefix"
  cmake_args=(-DCPU_ONLY=ON -DUSE_OPENCV=OFF -DUSE_LEVELDB=OFF -DUSE_LMDB=ON -DBUILD_python=ON
    -DBUILD_python_layer=ON -Dpython_version="$pyver" -DPYTHON_EXECUTABLE="$(command -v "$PYTHON")"
    -DBLAS=Open -DBUILD_docs=OFF -DBUILD_matlab=OFF -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_INSTALL_PREFIX="$prefix"
    # Link straight against the cache location, so the build folder can be thrown away.
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH="$prefix/lib")
  [ "$CAFFE_CUDA" = 1 ] && cmake_args+=("${cuda_cmake_args[@]}")
  mkdir -p "$work/build"
  (cd "$work/build" && cmake "${cmake_args[@]}" ../src/caffe > cmake.log 2>&1) \
    || { tail -40 "$work/build/cmake.log" >&2; fail "CMake configuration failed (full log: $work/build/cmake.log)."; }
  (cd "$work/build" && make -j"$JOBS" caffe pycaffe caffe.bin > make.log 2>&1) \
    || { grep -m20 -B2 -A5 'error' "$work/build/make.log" >&2 || tail -40 "$work/build/make.log" >&2;
         fail "Compiling Caffe failed (full log: $work/build/make.log)."; }
  step "installing Caffe into the cache"
  install_into() {
    mkdir -p "$prefix/bin" "$prefix/lib" "$prefix/python"
    cp -a "$work/build/lib/"libcaffe*.so* "$prefix/lib/"
    cp -a "$work/build/tools/caffe" "$prefix/bin/caffe"
    cp -a "$work/src/caffe/python/caffe" "$prefix/python/"
    rm -f "$prefix/python/caffe/_caffe.so"   # the source tree holds a symlink into the build folder
    cp "$work/build/lib/_caffe.so" "$prefix/python/caffe/_caffe.so"
    printf 'version=%s\noptions=%s\nmirror=%s\nbuilt=%s\n' "$CAFFE_VERSION" "$build_opts" "$fetched" "$(date -u +%FT%TZ)" > "$prefix/BUILD_INFO"
  }
  install_into
  touch "$prefix/.complete"
  rm -rf "$work"
fi

# ---------------------------------------------------------------------------------------------
step "creating $VENV and installing caffe-harness"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "Could not create $VENV (Debian: apt-get install python3-venv)."
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q -e "$here[dev]" || fail "pip could not install the project into $VENV."
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$prefix/python" > "$site/caffe-harness-pycaffe.pth"
cat > "$VENV/bin/caffe" <<WRAP
#!/bin/sh
# The caffe tool from the harness's cached build; Python layers need the venv and pycaffe on the path.
export PYTHONPATH="$site:$prefix/python:\${PYTHONPATH:-}"
exec "$prefix/bin/caffe" "\$@"
WRAP
chmod +x "$VENV/bin/caffe"
"$VENV/bin/python" -c 'import caffe' || fail "pycaffe does not import from $VENV (see the error above)."
step "done: $VENV/bin/harness and $VENV/bin/caffe use Caffe from $prefix"
