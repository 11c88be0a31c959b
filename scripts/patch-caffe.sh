#!/usr/bin/env bash
# The edits Debian 11's Caffe source needs on Debian 12. Each is a small, checked sed, so a reader can
# review them here and a changed source makes the build stop instead of silently skipping a fix.
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
