# Sourced by the launchers in bin/ of the caffe-harness CUDA bundle (made by scripts/bundle-cuda.py, which
# copies this file to libexec/environment.sh), with $bundle set to the bundle's folder. Plain POSIX sh.
#
# The CUDA build of libcaffe needs cuBLAS 13 and cuRAND 10 (libcublas.so.13, libcublasLt.so.13,
# libcurand.so.10: 727 MB, too large to carry), so they are looked for on this machine, in this order:
#   1. CAFFE_HARNESS_CUDA_LIBS (folders separated by ':')
#   2. LD_LIBRARY_PATH (a `module load cuda` on a cluster) and the loader's cache (/etc/ld.so.cache)
#   3. CUDA_HOME, CUDA_PATH, /usr/local/cuda*, /opt/cuda (lib64, lib, targets/x86_64-linux/lib)
#   4. NVIDIA's nvidia-cublas / nvidia-curand wheels in the Python environments of python3 / python on PATH,
#      VIRTUAL_ENV, CONDA_PREFIX and ~/.local (site-packages/nvidia/cu13/lib, nvidia/cublas/lib, nvidia/curand/lib)
# With both found, the CUDA build runs (a folder that is not already searched by the loader goes to the
# front of LD_LIBRARY_PATH); otherwise the CPU build carried beside it, so that `harness doctor` and CPU
# training work anywhere. CAFFE_HARNESS_BUILD=cpu chooses the CPU build, =cuda insists on the CUDA one.
#
# The environment is made the bundle's own: PYTHONHOME is unset and PYTHONPATH replaced (a cluster's Python
# modules are built for another Python); CAFFE_HARNESS_PYTHONPATH adds folders of your own to it.

# A launcher run by one of the bundle's own processes (`harness check --caffe-binary` runs bin/caffe) keeps
# what the first launcher set up, and the PYTHONPATH the harness added to it since (a net's Python layers).
case "${CAFFE_HARNESS_BUNDLE_CAFFE:-}" in
  "$bundle/caffe"|"$bundle/caffe-cpu") caffe_build=$CAFFE_HARNESS_BUNDLE_CAFFE; return 0 ;;
esac

cuda_candidates() {   # one folder per line, in the order above (without the loader's cache)
  printf '%s\n' "${CAFFE_HARNESS_CUDA_LIBS:-}" "${LD_LIBRARY_PATH:-}" | tr ':' '\n'
  for root in ${CUDA_HOME:-} ${CUDA_PATH:-} /usr/local/cuda /usr/local/cuda-13* /opt/cuda; do
    printf '%s\n' "$root/lib64" "$root/lib" "$root/targets/x86_64-linux/lib"
  done
  for env in $(for py in python3 python; do command -v "$py"; done | xargs -r -n1 dirname | xargs -r -n1 dirname) \
             ${VIRTUAL_ENV:-} ${CONDA_PREFIX:-} "${HOME:-/nonexistent}/.local" /usr/local /usr; do
    for site in "$env"/lib/python3*/site-packages "$env"/lib/python3*/dist-packages "$env"/lib/python3/dist-packages; do
      printf '%s\n' "$site/nvidia/cu13/lib" "$site/nvidia/cublas/lib" "$site/nvidia/curand/lib"
    done
  done
  [ -z "${CONDA_PREFIX:-}" ] || printf '%s\n' "$CONDA_PREFIX/lib"
}

find_cuda_library() {   # find_cuda_library SONAME: the first candidate folder holding it, or "ld.so.cache"
  for dir in $(cuda_candidates); do
    [ -n "$dir" ] && [ -e "$dir/$1" ] && { (cd "$dir" && pwd -P); return 0; }
  done
  for ldconfig in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    if "$ldconfig" -p 2>/dev/null | grep -q "	$1 (.*x86-64"; then echo ld.so.cache; return 0; fi
  done
  return 1
}

cublas_dir=$(find_cuda_library libcublas.so.13) || cublas_dir=
case "$cublas_dir" in
  ""|ld.so.cache) ;;
  *) [ -e "$cublas_dir/libcublasLt.so.13" ] || cublas_dir= ;;   # libcublas needs it beside itself
esac
curand_dir=$(find_cuda_library libcurand.so.10) || curand_dir=
build=${CAFFE_HARNESS_BUILD:-auto}
if [ "$build" = cpu ] || { [ "$build" = auto ] && { [ -z "$cublas_dir" ] || [ -z "$curand_dir" ]; }; }; then
  caffe_build=$bundle/caffe-cpu
  if [ "$build" = cpu ]; then
    CAFFE_HARNESS_BUNDLE="$bundle, CPU build of Caffe (CAFFE_HARNESS_BUILD=cpu)"
  else
    CAFFE_HARNESS_BUNDLE="$bundle, CPU build of Caffe, since cuBLAS 13 / cuRAND 10 were not found ($bundle/README.md: where they are looked for)"
  fi
else
  if [ -z "$cublas_dir" ] || [ -z "$curand_dir" ]; then
    echo "caffe-harness bundle: CAFFE_HARNESS_BUILD=cuda, but cuBLAS 13 / cuRAND 10 were not found (see $bundle/README.md)." >&2
    exit 2
  fi
  caffe_build=$bundle/caffe
  for dir in "$cublas_dir" "$curand_dir"; do
    case ":${LD_LIBRARY_PATH:-}:" in
      *":$dir:"*) ;;
      *) [ "$dir" = ld.so.cache ] || LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ;;
    esac
  done
  export LD_LIBRARY_PATH
  CAFFE_HARNESS_BUNDLE="$bundle, CUDA build of Caffe; cuBLAS from $cublas_dir, cuRAND from $curand_dir"
fi
unset PYTHONHOME
PYTHONPATH=$caffe_build/python${CAFFE_HARNESS_PYTHONPATH:+:$CAFFE_HARNESS_PYTHONPATH}
PYTHONNOUSERSITE=1                                   # ~/.local's packages belong to another Python
HARNESS_DIGITS_CSV=$bundle/share/digits.csv.gz       # the zoo's digits data without scikit-learn (prototxt/digits.py)
CAFFE_HARNESS_BUNDLE_CAFFE=$caffe_build
export PYTHONPATH PYTHONNOUSERSITE HARNESS_DIGITS_CSV CAFFE_HARNESS_BUNDLE CAFFE_HARNESS_BUNDLE_CAFFE
