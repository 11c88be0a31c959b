#!/usr/bin/env bash
# The edits Debian 11's Caffe source needs on Debian 12, and caffe-harness's additions to it. Each edit is a
# small, checked sed, so a reader can review them here and a changed source makes the build stop instead of
# silently skipping a fix; the added files are whole files under scripts/caffe-additions/ (same layout as
# Caffe's tree). scripts/setup.sh puts all of it into the build's cache key.
set -euo pipefail
src=$1
additions=$(cd "$(dirname "$0")/caffe-additions" && pwd)
edit() {  # edit FILE PATTERN SED-SCRIPT WHY
  local file=$src/$1
  grep -q -- "$2" "$file" || { echo "patch-caffe: '$2' not found in $1 (source changed?)" >&2; exit 1; }
  sed -i -e "$3" "$file"
  echo "  $1: $4"
}
# protobuf >= 3.21: CodedInputStream::SetTotalBytesLimit takes one argument.
edit src/caffe/util/io.cpp 'SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)' \
  's/SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)/SetTotalBytesLimit(kProtoReadBytesLimit)/' \
  'SetTotalBytesLimit takes one argument in protobuf 3.21'

# OpenCV (for convert_imageset, compute_image_mean and encoded images) from Debian's core, imgproc and
# imgcodecs packages alone: Caffe reads and resizes images but never opens a window, and Debian ships
# OpenCV's CMake config (and highgui) only with libopencv-dev, which brings ~140 packages (Qt, VTK, MPI).
edit cmake/Dependencies.cmake 'find_package(OpenCV QUIET COMPONENTS core highgui imgproc imgcodecs)' \
  '/find_package(OpenCV QUIET COMPONENTS core highgui imgproc imgcodecs)/,/^  endif()/c\
  find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)\
  foreach(module core imgproc imgcodecs)\
    find_library(OpenCV_${module}_LIBRARY opencv_${module} REQUIRED)\
    list(APPEND OpenCV_LIBS ${OpenCV_${module}_LIBRARY})\
  endforeach()' \
  'OpenCV core, imgproc and imgcodecs found without OpenCVConfig.cmake'
for file in src/caffe/util/io.cpp src/caffe/layers/window_data_layer.cpp; do
  edit "$file" 'opencv2/highgui/highgui_c.h' '/opencv2\/highgui\/highgui_c.h/d' 'no highgui C header'
  edit "$file" 'opencv2/highgui/highgui.hpp' 's|opencv2/highgui/highgui.hpp|opencv2/imgcodecs.hpp|' \
    'cv::imread/imdecode from imgcodecs, not highgui'
done

# Blob.debug_stats(diff=False, sumsq=False) for pycaffe: the statistics debug_info prints, computed by
# Caffe's own calls (caffe-additions/include/caffe/util/debug_stats.hpp), so the harness's numbers equal the
# log's exactly. The new files must not exist yet: a source that has them is not the one this was written for.
(cd "$additions" && find . -type f) | while read -r file; do
  [ ! -e "$src/$file" ] || { echo "patch-caffe: $file already exists in the source (source changed?)" >&2; exit 1; }
  install -D -m 644 "$additions/$file" "$src/$file"
  echo "  ${file#./}: added"
done
edit python/caffe/_caffe.cpp '#include "caffe/sgd_solvers.hpp"' \
  's|#include "caffe/sgd_solvers.hpp"|&\n#include "caffe/util/debug_stats.hpp"|' 'includes debug_stats.hpp'
edit python/caffe/_caffe.cpp '^bp::object Blob_Reshape(' '/^bp::object Blob_Reshape(/i\
// caffe-harness: Blob.debug_stats(diff=False, sumsq=False) -> (asum, mean_abs, sumsq, finite_asum,\
// max_abs, zeros, nonfinite), the fields of caffe/util/debug_stats.hpp in that order.\
bp::tuple Blob_DebugStats(const Blob<Dtype>& blob, bool diff, bool with_sumsq) {\
  const BlobDebugStats s = blob_debug_stats(blob, diff, with_sumsq);\
  return bp::make_tuple(s.asum, s.mean_abs, s.sumsq, s.elements.finite_asum, s.elements.max_abs,\
                        s.elements.zeros, s.elements.nonfinite);\
}\
' 'Blob_DebugStats'
edit python/caffe/_caffe.cpp '\.def("reshape", *bp::raw_function(&Blob_Reshape))' \
  's|\(\.def("reshape", *bp::raw_function(&Blob_Reshape))\)|\1\n    .def("debug_stats", \&Blob_DebugStats, (bp::arg("diff") = false, bp::arg("sumsq") = false))|' \
  'Blob.debug_stats bound'
