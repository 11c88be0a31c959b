#!/usr/bin/env bash
# One-command setup on Debian 12: Debian build packages, Caffe built from Debian 11's `caffe` source package
# into a cache outside the checkout (~/.cache/caffe-harness, keyed by source version + build options + our
# edits), then .venv with the project, pycaffe on its path and a `caffe` wrapper. Safe to re-run: a warm
# run takes seconds, and a build that did not finish is never trusted.
#
#   scripts/setup.sh                CPU build (default)
#   scripts/setup.sh --caffe-only   packages + cached Caffe only, no .venv (Dockerfile.cpu's cacheable layer)
#   scripts/setup.sh --caffe-prefix the same, its progress on stderr and the build's folder alone on stdout
#                                   (scripts/bundle-cuda.py asks it for the builds it packs)
#   scripts/setup.sh --caffe-source DIR   only adds Blob.debug_stats to the Caffe source tree DIR (your fork),
#                                   which you then rebuild with your own build command (docs/forks.md)
#   CAFFE_CUDA=1 scripts/setup.sh   CUDA build (scripts/cuda-options.sh, docs/gpu.md), cached apart from the CPU one
#   CAFFE_OPENCV=0 scripts/setup.sh Caffe without OpenCV (-DUSE_OPENCV=OFF), cached apart: convert_imageset and
#                                   compute_image_mean then stop with "This tool requires OpenCV" (the CUDA bundle's builds)
#
# Settings (environment): PYTHON (interpreter for .venv, default python3), CAFFE_CACHE (cache root),
# CAFFE_MIRRORS (space-separated Debian mirrors tried in order; default: the ones this machine's apt uses),
# VENV (default .venv), JOBS (default nproc).
# apt's and the compiler's full output goes to log files under $CAFFE_CACHE/logs, pip's to $VENV/pip-install.log.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
caffe_only=0
prefix_only=0
caffe_source=
usage() { echo "usage: scripts/setup.sh [--caffe-only | --caffe-prefix | --caffe-source DIR]" >&2; exit 2; }
case "${1:-}" in
  --caffe-only) caffe_only=1 ;;
  --caffe-prefix) caffe_only=1; prefix_only=1; exec 3>&1 1>&2 ;;   # stdout is for the prefix alone (at the end)
  --caffe-source) caffe_source=${2:-}; [ -n "$caffe_source" ] || usage ;;
  "") ;;
  *) usage ;;
esac

CAFFE_VERSION=1.0.0+git20180821.99bd997-8
ORIG_TARBALL=caffe_1.0.0+git20180821.99bd997.orig.tar.gz
ORIG_SHA256=e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c
DEBIAN_TARBALL=caffe_1.0.0+git20180821.99bd997-8.debian.tar.xz
DEBIAN_SHA256=07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21
# pycaffe is compiled against these numpy headers; a numpy 2 build also runs under the numpy 2 that pip
# installs into .venv, where one built against Debian's numpy 1.24 would not import.
BUILD_NUMPY="numpy>=2,<3"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$here/.venv}
JOBS=${JOBS:-$(nproc)}
CAFFE_CUDA=${CAFFE_CUDA:-0}
CAFFE_OPENCV=${CAFFE_OPENCV:-1}
case "$CAFFE_OPENCV" in
  0) opencv=OFF ;;
  1) opencv=ON ;;
  *) echo "scripts/setup.sh: CAFFE_OPENCV must be 1 (build Caffe with OpenCV, the default) or 0 (without), not '$CAFFE_OPENCV'." >&2
     exit 2 ;;
esac
CACHE_ROOT=${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caffe-harness}
log_dir=$CACHE_ROOT/logs
# Caffe's tools that setup builds beside `caffe` and puts into the cache and $VENV/bin.
CAFFE_TOOLS=(convert_imageset compute_image_mean extract_features upgrade_net_proto_text upgrade_solver_proto_text)

current_step=start
failed=0
work=
staging=
step() { printf '==> %s\n' "$*"; current_step="$*"; }
fail() {
  printf '\nsetup failed during: %s\n%s\n' "$current_step" "$*" >&2
  failed=1
  exit 1
}
cleanup() {
  local rc=$?
  [ -z "$work" ] || rm -rf "$work"
  [ -z "$staging" ] || rm -rf "$staging"   # an unfinished install never reaches the cache's real path
  if [ "$rc" -ne 0 ] && [ "$failed" = 0 ]; then
    printf '\nsetup failed during: %s (exit %s). Read the output above; re-running is safe: nothing half-built is kept.\n' \
      "$current_step" "$rc" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fork's own tree gets only the statistics patch: it already builds with its owner's command and fixes, which
# no recipe of ours could know, so nothing here installs or builds anything for it.
if [ -n "$caffe_source" ]; then
  step "adding Blob.debug_stats to the Caffe source in $caffe_source (scripts/patch-caffe-stats.sh)"
  bash "$here/scripts/patch-caffe-stats.sh" "$caffe_source" || { failed=1; exit 1; }   # it said why, naming the file
  step "done. Now rebuild pycaffe there with your own build command:"
  cat <<NEXT
  Makefile build:  make all pycaffe   (the Makefile finds the new source files itself)
  CMake build:     cmake .   in your build folder first (CMake lists the source files when it configures),
                   then  make caffe pycaffe   (and the tools you use: caffe.bin, ...)
Then \`harness doctor --caffe $caffe_source\` says "statistics   exact", and \`harness train --caffe\` compares
Caffe's debug lines with the harness's exactly. Running this again changes nothing.
NEXT
  exit 0
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else fail "Installing Debian packages needs root: run as root, install sudo, or run yourself: $*"
  fi
}

# The Debian mirrors this machine's apt already uses: the URIs of entries for a Debian release itself (a
# suite without -updates/-security/..., signed by Debian's archive keyring or by no key named), from deb822
# .sources files and one-line .list files, in order. Nothing on a machine that is not Debian: its mirrors
# carry no Debian source packages. $1: the root folder to read etc/ from (tests/test_setup_mirrors.py).
apt_debian_mirrors() {
  local root=${1:-} os_id file
  os_id=$(. "$root/etc/os-release" 2>/dev/null && echo "${ID:-}")
  [ "$os_id" = debian ] || return 0
  {
    for file in "$root"/etc/apt/sources.list.d/*.sources; do
      [ -f "$file" ] || continue
      # deb822: stanzas of `Field: value` lines separated by blank lines; comment lines start with #.
      awk 'BEGIN { RS = ""; FS = "\n" }
        { uris = suites = signed = ""; enabled = "yes"
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^#/ || index($i, ":") == 0) continue
            key = tolower(substr($i, 1, index($i, ":") - 1)); value = substr($i, index($i, ":") + 1)
            if (key == "uris") uris = value; else if (key == "suites") suites = value
            else if (key == "signed-by") signed = value; else if (key == "enabled") enabled = tolower(value) }
          if (enabled ~ /no/ || (signed != "" && signed !~ /debian-archive-keyring/)) next
          if (!match(" " suites " ", /[ \t][a-z]+[ \t]/)) next
          n = split(uris, list, /[ \t]+/); for (i = 1; i <= n; i++) if (list[i] != "") print list[i] }' "$file"
    done
    for file in "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*.list; do
      [ -f "$file" ] || continue
      # One-line style: `deb [options] URI SUITE COMPONENT...`; "[options] URI" for a plain suite.
      sed -E -n 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+[a-z]+([[:space:]].*)?$/[\3] \4/p' "$file" \
        | awk '$0 !~ /signed-by=/ || $0 ~ /signed-by=[^] ]*debian-archive-keyring/ { print $NF }'
    done
  } | grep -v '^cdrom:' | awk '!seen[$0]++'
}
CAFFE_MIRRORS=${CAFFE_MIRRORS:-$(apt_debian_mirrors | tr '\n' ' ')}

mkdir -p "$log_dir" || fail "Cannot create the cache folder $log_dir: set CAFFE_CACHE to a writable folder."

# ---------------------------------------------------------------------------------------------
step "Debian build packages"
packages=(build-essential cmake git dpkg-dev ca-certificates debian-archive-keyring
  python3 python3-dev python3-venv
  libboost-python-dev libboost-filesystem-dev libboost-system-dev libboost-thread-dev
  libgoogle-glog-dev libgflags-dev libprotobuf-dev protobuf-compiler libhdf5-dev
  libopenblas-dev liblmdb-dev libsnappy-dev)
# OpenCV: convert_imageset, compute_image_mean
[ "$opencv" = OFF ] || packages+=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_log=$log_dir/apt.log
  echo "installing: ${missing[*]}"
  echo "  (apt's output: $apt_log)"
  # Wait for another apt (unattended upgrades, a parallel setup) instead of failing on its lock.
  apt_wait=(-o DPkg::Lock::Timeout=300)
  as_root apt-get "${apt_wait[@]}" -q update >>"$apt_log" 2>&1 \
    || { tail -5 "$apt_log" >&2; fail "apt-get update failed (log: $apt_log): check the network and /etc/apt/sources.list*."; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_wait[@]}" install -y -q --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 \
    || { tail -15 "$apt_log" >&2; fail "apt-get install failed (log: $apt_log) for: ${missing[*]}"; }
else
  echo "all ${#packages[@]} present"
fi

pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
  || fail "No Python interpreter '$PYTHON': set PYTHON=/path/to/python3."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "Python >= 3.11 is needed ($PYTHON is $pyver)."

# ---------------------------------------------------------------------------------------------
# Everything that changes the binaries goes into the cache key: source version, CMake options, the numpy
# pycaffe compiles against, and our source edits and additions (scripts/patch-caffe.sh, scripts/patch-caffe-stats.sh
# and the files it adds, scripts/caffe-additions/);
# for CUDA also key_extra.
caffe_options=(-DCPU_ONLY=ON -DUSE_OPENCV=$opencv -DUSE_LEVELDB=OFF -DUSE_LMDB=ON -DBUILD_python=ON
  -DBUILD_python_layer=ON -Dpython_version="$pyver" -DBLAS=Open -DBUILD_docs=OFF -DBUILD_matlab=OFF
  -DCMAKE_BUILD_TYPE=Release)
flavour=cpu
key_extra=()
extra_rpath=
patch_cuda=
if [ "$CAFFE_CUDA" = 1 ]; then
  . "$here/scripts/cuda-options.sh"   # edits caffe_options; sets flavour, key_extra, extra_rpath, patch_cuda
fi
key=$({ printf '%s\n' "$CAFFE_VERSION" "$BUILD_NUMPY" "${caffe_options[@]}" "${key_extra[@]}" "${CAFFE_TOOLS[@]}"
        cat "$here/scripts/patch-caffe.sh" "$here/scripts/patch-caffe-stats.sh"
        (cd "$here/scripts" && find caffe-additions -type f | LC_ALL=C sort | xargs sha256sum); } | sha256sum | cut -c1-12)
prefix="$CACHE_ROOT/caffe-${CAFFE_VERSION%%+*}-$flavour-py$pyver-$key"

# One build per key at a time: a second setup (another checkout, a parallel CI job) waits, then reuses it.
exec 9>"$CACHE_ROOT/.lock-$key"
flock -n 9 || { echo "waiting for another setup that is building $prefix"; flock 9; }
if [ -f "$prefix/.complete" ]; then
  step "Caffe found in cache: $prefix"
else
  rm -rf "$prefix" "$prefix".partial.*   # leftovers of an interrupted build are never trusted
  work=$(mktemp -d "${TMPDIR:-/tmp}/caffe-harness-build.XXXXXX")
  fetch_log=$log_dir/fetch-$key.log
  build_log=$log_dir/build-$key.log
  : >"$fetch_log"
  : >"$build_log"

  step "fetching Caffe source package $CAFFE_VERSION (Debian 11 'bullseye', verified by apt)"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
  # Private sources, lists and cache: the system's apt configuration and state are never touched.
  aptopts=(-o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" -o Debug::NoLocking=1
           -o APT::Sandbox::User=root)   # root: the private folders are not readable by user _apt
  if [ -z "$CAFFE_MIRRORS" ]; then
    fail "This machine's apt sources name no Debian mirror to fetch Caffe's source package from (not Debian, or
no Debian entry in /etc/apt/sources.list or /etc/apt/sources.list.d/). Set CAFFE_MIRRORS to the URL of a Debian
mirror that still carries bullseye (deb-src), or of Debian's archive once bullseye has left the mirrors."
  fi
  fetched=
  tried=()
  for mirror in $CAFFE_MIRRORS; do
    echo "  trying $mirror"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" >"$work/apt/sources.list"
    rm -rf "$work/apt/lists"/*Sources* "$work/apt/lists"/*Release*
    if apt-get "${aptopts[@]}" -q update >"$work/attempt.log" 2>&1 &&
       (cd "$work/src" && apt-get "${aptopts[@]}" -q source --download-only "caffe=$CAFFE_VERSION" >>"$work/attempt.log" 2>&1); then
      fetched=$mirror
    fi
    cat "$work/attempt.log" >>"$fetch_log"
    [ -n "$fetched" ] && break
    tried+=("$mirror: $(grep -m1 -E '^(E|W): ' "$work/attempt.log" || true)")
  done
  if [ -z "$fetched" ]; then
    fail "Could not download Caffe's source package caffe=$CAFFE_VERSION. Tried:
$(printf '  %s\n' "${tried[@]}")
Full log: $fetch_log. Check the network, or set CAFFE_MIRRORS to a Debian mirror that still carries bullseye
(deb-src), or to Debian's archive once bullseye has left the mirrors."
  fi
  (cd "$work/src" && printf '%s  %s\n%s  %s\n' "$ORIG_SHA256" "$ORIG_TARBALL" "$DEBIAN_SHA256" "$DEBIAN_TARBALL" | sha256sum -c --quiet) \
    || fail "Checksums of the source downloaded from $fetched do not match the ones pinned in scripts/setup.sh."
  (cd "$work/src" && dpkg-source --no-check -x "caffe_$CAFFE_VERSION.dsc" caffe >>"$fetch_log" 2>&1) \
    || fail "dpkg-source could not unpack the source (log: $fetch_log)."

  step "applying the fixes for Debian 12 (scripts/patch-caffe.sh)"
  bash "$here/scripts/patch-caffe.sh" "$work/src/caffe"
  step "adding Blob.debug_stats for the harness's exact statistics (scripts/patch-caffe-stats.sh)"
  bash "$here/scripts/patch-caffe-stats.sh" "$work/src/caffe"
  if [ -n "$patch_cuda" ]; then
    step "applying the fixes for the CUDA build (scripts/patch-caffe-cuda.sh)"
    bash "$patch_cuda" "$work/src/caffe"
  fi

  step "numpy headers for pycaffe ($BUILD_NUMPY, in a throw-away venv)"
  { "$PYTHON" -m venv "$work/pyenv" && "$work/pyenv/bin/python" -m pip install -q "$BUILD_NUMPY"; } >>"$build_log" 2>&1 \
    || { tail -5 "$build_log" >&2; fail "Could not install $BUILD_NUMPY for the build (log: $build_log): check the network / pip's index."; }

  step "building Caffe with $JOBS jobs (about 4 minutes on 2 cores; log: $build_log)"
  mkdir -p "$work/build"
  (cd "$work/build" && cmake "${caffe_options[@]}" -DPYTHON_EXECUTABLE="$work/pyenv/bin/python" \
      -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH="$prefix/lib${extra_rpath:+;$extra_rpath}" \
      ../src/caffe >>"$build_log" 2>&1) \
    || { tail -30 "$build_log" >&2; fail "CMake configuration failed (log: $build_log)."; }
  # (The RPATH points at the cache, so the build folder can be thrown away.)
  (cd "$work/build" && make -j"$JOBS" caffe pycaffe caffe.bin "${CAFFE_TOOLS[@]}" >>"$build_log" 2>&1) \
    || { grep -m20 -B2 -A5 'error' "$build_log" >&2 || tail -40 "$build_log" >&2;
         fail "Compiling Caffe failed (log: $build_log)."; }

  step "installing Caffe into the cache"
  staging=$prefix.partial.$$
  mkdir -p "$staging/bin" "$staging/lib" "$staging/python"
  cp -a "$work/build/lib/"libcaffe*.so* "$staging/lib/"
  cp -a "$work/build/tools/caffe" "${CAFFE_TOOLS[@]/#/$work/build/tools/}" "$staging/bin/"
  cp -a "$work/src/caffe/python/caffe" "$staging/python/"
  rm -f "$staging/python/caffe/_caffe.so"   # the source tree holds a symlink into the build folder
  cp "$work/build/lib/_caffe.so" "$staging/python/caffe/_caffe.so"
  # BUILD_INFO is what `harness doctor` reports: the source, then the options as CMake resolved them.
  {
    printf 'version=%s\nsource=Debian 11 source package caffe, from %s\nbuilt=%s\nnumpy_headers=%s\n' \
      "$CAFFE_VERSION" "$fetched" "$(date -u +%FT%TZ)" "$("$work/pyenv/bin/python" -c 'import numpy; print(numpy.__version__)')"
    sed -n -E 's/^(CPU_ONLY|USE_CUDNN|USE_NCCL|CUDA_VERSION|CUDA_ARCH_BIN|CUDA_ARCH_PTX|BLAS|OpenBLAS_LIB|BUILD_python_layer|USE_LMDB|LMDB_LIBRARIES|USE_LEVELDB|USE_HDF5|HDF5_C_LIBRARY_hdf5|USE_OPENCV|python_version|CMAKE_BUILD_TYPE):[A-Z]+=(.*)$/cmake.\1=\2/p' \
      "$work/build/CMakeCache.txt"
  } >"$staging/BUILD_INFO"
  touch "$staging/.complete"
  mv -T "$staging" "$prefix"
  staging=
fi
exec 9>&-

if [ "$caffe_only" = 1 ]; then
  step "done: Caffe in $prefix (no .venv)"
  [ "$prefix_only" = 0 ] || echo "$prefix" >&3
  exit 0
fi

# ---------------------------------------------------------------------------------------------
step "Python environment $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "Could not create $VENV (Debian: apt-get install python3-venv)."
# pip runs only when pyproject.toml changed: a warm setup needs no network (the editable install follows
# changes to harness/ by itself).
stamp=$VENV/.caffe-harness-installed
want=$(sha256sum <"$here/pyproject.toml" | cut -c1-16)
if [ -x "$VENV/bin/harness" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "project already installed (pyproject.toml unchanged)"
else
  pip_log=$VENV/pip-install.log
  echo "pip install -e .[dev] (log: $pip_log)"
  "$VENV/bin/python" -m pip install -e "$here[dev]" >"$pip_log" 2>&1 \
    || { tail -15 "$pip_log" >&2; fail "pip could not install the project into $VENV (log: $pip_log)."; }
  echo "$want" >"$stamp"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$prefix/python" >"$site/caffe-harness-pycaffe.pth"
for tool in caffe "${CAFFE_TOOLS[@]}"; do
  cat >"$VENV/bin/$tool" <<WRAP
#!/bin/sh
# Caffe's $tool from the harness's cached build; Python layers need the venv and pycaffe on the path.
export PYTHONPATH="$site:$prefix/python:\${PYTHONPATH:-}"
exec "$prefix/bin/$tool" "\$@"
WRAP
  chmod +x "$VENV/bin/$tool"
done
"$VENV/bin/python" -c 'import caffe' || fail "pycaffe does not import from $VENV (see the error above)."
"$VENV/bin/caffe" --version >/dev/null || fail "$VENV/bin/caffe does not run (see the error above)."
step "done: $VENV/bin/harness, caffe and ${CAFFE_TOOLS[*]} use Caffe from $prefix"
