#!/usr/bin/env bash
# The edits the CUDA build of Caffe needs on top of scripts/patch-caffe.sh (CAFFE_CUDA=1 only, so the CPU
# build's sources and cache key stay as they are). Same style: each edit is a checked sed that stops the
# build when the source no longer has what it replaces.
set -euo pipefail
src=$1
edit() {  # edit FILE PATTERN SED-SCRIPT WHY
  grep -q -- "$2" "$src/$1" || { echo "patch-caffe-cuda: '$2' not found in $1 (source changed?)" >&2; exit 1; }
  sed -i -e "$3" "$src/$1" && echo "  $1: $4"
}
# CUDA 13 removed cudaDeviceProp::clockRate, ::deviceOverlap and ::kernelExecTimeoutEnabled, which
# Caffe::DeviceQuery only prints; the same facts stay available as device attributes (since CUDA 5).
# (The helper goes before the GPU build's DeviceQuery only: the CPU_ONLY one above it is a stub.)
edit src/caffe/common.cpp '^#else  // Normal GPU + CPU Caffe' \
  '/^#else  \/\/ Normal GPU + CPU Caffe/,$ { /^void Caffe::DeviceQuery() {$/i\
static int DeviceAttribute(cudaDeviceAttr attribute, int device) {\
  int value = 0;\
  CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));\
  return value;\
}\

}' 'DeviceAttribute helper for the cudaDeviceProp fields CUDA 13 removed'
edit src/caffe/common.cpp 'prop\.clockRate' 's/prop\.clockRate/DeviceAttribute(cudaDevAttrClockRate, device)/' \
  'clock rate read as a device attribute'
edit src/caffe/common.cpp 'prop\.deviceOverlap' 's/prop\.deviceOverlap/DeviceAttribute(cudaDevAttrGpuOverlap, device)/' \
  'copy/execute overlap read as a device attribute'
edit src/caffe/common.cpp 'prop\.kernelExecTimeoutEnabled' \
  's/prop\.kernelExecTimeoutEnabled/DeviceAttribute(cudaDevAttrKernelExecTimeout, device)/' \
  'kernel timeout read as a device attribute'
