# CUDA build options for scripts/setup.sh, sourced by it when CAFFE_CUDA=1 (not a script to run alone): finds
# the CUDA toolkit, takes cuBLAS and cuRAND from it or else from PyPI's nvidia-* wheels (installed once into
# the cache), and appends the CUDA CMake options to caffe_options. It sets for setup.sh: flavour (part of the
# cache folder's name), key_extra (more cache-key lines), extra_rpath (library folders outside the cache
# prefix that libcaffe needs at run time) and patch_cuda (the CUDA-only source edits).
#
# Settings (environment):
#   CUDA_HOME       toolkit root; default: the toolkit of the nvcc on PATH, else /usr/local/cuda
#   CUDA_ARCH_BIN   GPU architectures to compile for (default "80 86 89 90": A100, RTX 30xx/A10, L4/RTX 40xx,
#                   H100/H200). Caffe's own default list (sm_20 .. sm_61) is rejected by current nvcc.
#   CUDA_ARCH_PTX   PTX kept for GPUs newer than the list, compiled by the driver at first use (default 90)
#   CUDA_PIP_LIBS   the wheels used when the toolkit lacks cuBLAS/cuRAND (default for CUDA 13 below)
# cuDNN and NCCL stay off: Caffe calls cudnnGetConvolutionForwardAlgorithm, removed in cuDNN 8, and the
# harness trains on one GPU.

step "CUDA toolkit"
if [ -n "${CUDA_HOME:-}" ]; then
  nvcc=$CUDA_HOME/bin/nvcc
elif command -v nvcc >/dev/null; then
  nvcc=$(command -v nvcc)
else
  nvcc=/usr/local/cuda/bin/nvcc
fi
[ -x "$nvcc" ] || fail "CAFFE_CUDA=1 needs the CUDA toolkit's nvcc, not found at $nvcc. Install a CUDA toolkit
(or use an nvidia/cuda *-devel image), set CUDA_HOME to its root, or unset CAFFE_CUDA for the CPU build."
# nvcc may be a wrapper script; its dry run names the real toolkit root (TOP).
cuda_root=$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
cuda_root=$(cd "${cuda_root:-$(dirname "$nvcc")/..}" && pwd -P)
cuda_version=$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
[ -n "$cuda_version" ] || fail "Could not read the CUDA version from '$nvcc --version'."
cuda_major=${cuda_version%%.*}
echo "nvcc $cuda_version, toolkit $cuda_root"

CUDA_ARCH_BIN=${CUDA_ARCH_BIN:-"80 86 89 90"}
CUDA_ARCH_PTX=${CUDA_ARCH_PTX:-90}
# Check the list here, where the message can say what this nvcc supports, not 2 minutes into the compile.
known_codes=" $("$nvcc" --list-gpu-code | tr '\n' ' ') "
for arch in $CUDA_ARCH_BIN $CUDA_ARCH_PTX; do
  case "$known_codes" in
    *" sm_$arch "*) ;;
    *) fail "nvcc $cuda_version cannot compile for sm_$arch (from CUDA_ARCH_BIN='$CUDA_ARCH_BIN' CUDA_ARCH_PTX='$CUDA_ARCH_PTX').
It supports: $(echo $known_codes); set CUDA_ARCH_BIN / CUDA_ARCH_PTX to numbers from that list." ;;
  esac
done

# A toolkit folder that has FILE, searching where toolkit packages and the runfile put them.
toolkit_dir_with() {
  local dir
  for dir in "$cuda_root"/lib64 "$cuda_root"/lib "$cuda_root"/targets/*/lib "$cuda_root"/include \
             "$cuda_root"/targets/*/include; do
    [ -e "$dir/$1" ] && { echo "$dir"; return 0; }
  done
  return 1
}
# ARGS as a CMake list (;-separated), each once: the wheels may share one folder.
unique_list() { printf '%s\n' "$@" | awk 'NF && !seen[$0]++' | paste -sd';'; }
include_dirs=()
rpath_dirs=("$(toolkit_dir_with libcudart.so || echo "$cuda_root/lib64")")
key_extra=("cuda=$cuda_version")
if toolkit_dir_with libcublas.so >/dev/null && toolkit_dir_with libcurand.so >/dev/null \
   && toolkit_dir_with cublas_v2.h >/dev/null && toolkit_dir_with curand.h >/dev/null; then
  echo "cuBLAS and cuRAND from the toolkit"
  key_extra+=("blas=toolkit")
else
  step "cuBLAS and cuRAND from PyPI (the toolkit in $cuda_root has none)"
  case "$cuda_major" in
    # The releases that shipped with CUDA 13.0; the runtime loads them by soname (libcublas.so.13).
    13) CUDA_PIP_LIBS=${CUDA_PIP_LIBS:-"nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35"} ;;
    *) [ -n "${CUDA_PIP_LIBS:-}" ] || fail "The toolkit in $cuda_root has no cuBLAS/cuRAND and there is no default
wheel list for CUDA $cuda_version: install the toolkit's cuBLAS and cuRAND development packages, or set
CUDA_PIP_LIBS (e.g. \"nvidia-cublas-cu$cuda_major nvidia-curand-cu$cuda_major\")." ;;
  esac
  key_extra+=("blas=pip $CUDA_PIP_LIBS")
  # One folder per wheel list, shared by the builds that use it; installed once, so a warm setup needs no network.
  wheels=$CACHE_ROOT/nvidia-wheels-$(printf '%s' "$CUDA_PIP_LIBS" | sha256sum | cut -c1-12)
  if [ ! -f "$wheels/.complete" ]; then
    pip_log=$log_dir/nvidia-wheels.log
    rm -rf "$wheels" "$wheels".partial.*
    # A throw-away venv: the system Python may have no pip (Debian's python3-venv brings one).
    { "$PYTHON" -m venv "$wheels.partial.$$/pyenv" &&
      "$wheels.partial.$$/pyenv/bin/python" -m pip install -q --target "$wheels.partial.$$" $CUDA_PIP_LIBS; } >"$pip_log" 2>&1 \
      || { tail -5 "$pip_log" >&2; rm -rf "$wheels.partial.$$";
           fail "pip could not install $CUDA_PIP_LIBS (log: $pip_log): check the network / pip's index, or install the toolkit's cuBLAS and cuRAND."; }
    rm -rf "$wheels.partial.$$/pyenv"
    # The wheels ship only versioned libraries (libcublas.so.13); CMake and the linker want the plain names.
    for lib in cublas cublasLt curand; do
      so=$(find "$wheels.partial.$$/nvidia" -name "lib$lib.so.[0-9]*" | sort | head -1)
      [ -n "$so" ] || fail "$CUDA_PIP_LIBS brought no lib$lib.so.* (pip's log: $pip_log): set CUDA_PIP_LIBS to wheels that have it."
      ln -s "$(basename "$so")" "$(dirname "$so")/lib$lib.so"
    done
    touch "$wheels.partial.$$/.complete"
    mv -T "$wheels.partial.$$" "$wheels"
  fi
  cublas_so=$(find "$wheels/nvidia" -name libcublas.so)
  curand_so=$(find "$wheels/nvidia" -name libcurand.so)
  include_dirs+=("$(dirname "$(find "$wheels/nvidia" -name cublas_v2.h | head -1)")"
                 "$(dirname "$(find "$wheels/nvidia" -name curand.h | head -1)")")
  wheel_libs=$(unique_list "$(dirname "$cublas_so")" "$(dirname "$curand_so")")
  rpath_dirs+=("$wheel_libs")
  # FindCUDA clears a CUDA_cublas_LIBRARY given on the command line (the toolkit root is "new" on a first
  # run), so let its own search find them: CMAKE_LIBRARY_PATH is where find_library looks after the toolkit.
  caffe_options+=(-DCMAKE_LIBRARY_PATH="$wheel_libs")
fi
# CUDA 13 keeps Thrust/CUB (CCCL) in include/cccl; nvcc finds it by itself, g++ compiling Caffe's .cpp files not.
cccl=$(toolkit_dir_with cccl/thrust || true)
[ -z "$cccl" ] || include_dirs+=("$cccl/cccl")
include_flags=$(unique_list "${include_dirs[@]/#/-I}")
extra_rpath=$(unique_list "${rpath_dirs[@]}")

patch_cuda=$here/scripts/patch-caffe-cuda.sh
key_extra+=("$(cat "$patch_cuda")")
caffe_options=("${caffe_options[@]/-DCPU_ONLY=ON/-DCPU_ONLY=OFF}"
  -DUSE_CUDNN=OFF -DUSE_NCCL=OFF -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root"
  -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$CUDA_ARCH_BIN" -DCUDA_ARCH_PTX="$CUDA_ARCH_PTX")
if [ ${#include_dirs[@]} -gt 0 ]; then
  caffe_options+=(-DCUDA_NVCC_FLAGS="$include_flags" -DCMAKE_CXX_FLAGS="${include_flags//;/ }")
fi
flavour=cuda$cuda_version
