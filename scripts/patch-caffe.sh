#!/usr/bin/env bash
# The edits Debian 11's Caffe source needs on Debian 12 (caffe-harness's addition to it, Blob.debug_stats, is
# scripts/patch-caffe-stats.sh, which also patches a user's own tree). Each edit is a small, checked sed, so a
# reader can review them here and a changed source makes the build stop instead of silently skipping a fix.
# scripts/setup.sh puts this file into the build's cache key.
set -euo pipefail
src=$1
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
