#!/usr/bin/env bash
# caffe-harness's addition to a Caffe source tree: Blob.debug_stats(diff=False, sumsq=False) for pycaffe, the
# statistics debug_info prints computed by Caffe's own calls (caffe-additions/include/caffe/util/debug_stats.hpp),
# so that the harness's numbers equal the log's exactly. scripts/setup.sh applies it to the Debian source it
# builds, and `scripts/setup.sh --caffe-source DIR` to a user's own tree (a fork), which the user then rebuilds.
#
# Generic on purpose: it needs only what BVLC's pycaffe has had since 2015 and the forks of it keep (the lines
# it anchors on are checked), adds whole files under scripts/caffe-additions/ (same layout as Caffe's tree)
# and makes three edits to python/caffe/_caffe.cpp. It is idempotent: its earlier edits are taken out before
# they are made again, and a file whose content would not change is not written, so a second run changes
# nothing (and a rebuild recompiles nothing). Everything is checked before the first file is written: a tree it
# does not fit is refused, naming the file, and left as it was.
set -euo pipefail
src=${1:?usage: patch-caffe-stats.sh CAFFE_SOURCE_DIR}
additions=$(cd "$(dirname "$0")/caffe-additions" && pwd)
pycaffe=python/caffe/_caffe.cpp
ours="Added by caffe-harness"   # the first line of every added file says so
fail() { printf 'patch-caffe-stats: %s\n' "$*" >&2; exit 1; }
unpatched="the harness then takes its statistics with numpy and compares them with a tolerance"

[ -d "$src" ] || fail "$src: no such folder."
# What the additions call: Blob's asum/sumsq of data and diff (BVLC, 2014), SyncedMemory's head (2014).
require() {  # require FILE PATTERN WHAT
  [ -f "$src/$1" ] || fail "$src is not a Caffe source tree: it has no $1."
  grep -q -- "$2" "$src/$1" || fail "$src/$1 has no $3, which Blob.debug_stats calls: this Caffe is older" \
    "than BVLC's of 2015 or changed it, and the patch does not apply."
}
require include/caffe/blob.hpp 'sumsq_diff() const' 'Blob::sumsq_diff()'
require include/caffe/syncedmem.hpp 'HEAD_AT_GPU' 'SyncedMemory::head() with HEAD_AT_GPU'
[ -f "$src/$pycaffe" ] || fail "$src is not a Caffe source tree with pycaffe: it has no $pycaffe."

# Each added file: absent, already ours (the same or an earlier version), or the tree's own, which is refused.
new_files=()
while read -r file; do
  target=$src/$file
  if [ -e "$target" ] && ! cmp -s "$additions/$file" "$target"; then
    head -n 1 "$target" | grep -q "$ours" || fail "$target exists and is not caffe-harness's: this tree has" \
      "its own $file, which the patch would replace. Rename it in the tree, or leave the tree unpatched ($unpatched)."
  fi
  cmp -s "$additions/$file" "$target" || new_files+=("$file")
done < <(cd "$additions" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)

# _caffe.cpp without any earlier version of the edits below (the include, the function from its comment to its
# closing brace and the blank line after it, the binding), then with them: in a temporary file until all apply.
patched=$(mktemp)
trap 'rm -f "$patched"' EXIT
sed -e '\|^#include "caffe/util/debug_stats.hpp"$|d' \
    -e '\|^// caffe-harness: Blob.debug_stats|,\|^}$|{ \|^}$|N; d; }' \
    -e '\|^    \.def("debug_stats", |d' "$src/$pycaffe" >"$patched"
edit() {  # edit PATTERN SED-SCRIPT WHAT
  [ "$(grep -c -- "$1" "$patched")" = 1 ] || fail "the patch does not apply to $src/$pycaffe: it needs" \
    "exactly one line matching '$1' (where $3 goes), as BVLC's pycaffe has. Make the edits of" \
    "scripts/patch-caffe-stats.sh there by hand, or leave the tree unpatched ($unpatched)."
  sed -i -e "$2" "$patched"
}
edit '^#include "caffe/caffe.hpp"$' 's|^#include "caffe/caffe.hpp"$|&\n#include "caffe/util/debug_stats.hpp"|' \
  'the #include of caffe/util/debug_stats.hpp'
edit '^bp::object Blob_Reshape(' '/^bp::object Blob_Reshape(/i\
// caffe-harness: Blob.debug_stats(diff=False, sumsq=False) -> (asum, mean_abs, sumsq, finite_asum,\
// max_abs, zeros, nonfinite), the fields of caffe/util/debug_stats.hpp in that order.\
bp::tuple Blob_DebugStats(const Blob<Dtype>& blob, bool diff, bool with_sumsq) {\
  const BlobDebugStats s = blob_debug_stats(blob, diff, with_sumsq);\
  return bp::make_tuple(s.asum, s.mean_abs, s.sumsq, s.elements.finite_asum, s.elements.max_abs,\
                        s.elements.zeros, s.elements.nonfinite);\
}\
' 'the function Blob_DebugStats'
edit '\.def("reshape", *bp::raw_function(&Blob_Reshape))' \
  's|\(\.def("reshape", *bp::raw_function(&Blob_Reshape))\)|\1\n    .def("debug_stats", \&Blob_DebugStats, (bp::arg("diff") = false, bp::arg("sumsq") = false))|' \
  'the binding of Blob.debug_stats'

for file in "${new_files[@]}"; do
  how=added
  [ ! -e "$src/$file" ] || how="replaced (an earlier version of caffe-harness's)"
  install -D -m 644 "$additions/$file" "$src/$file"
  echo "  $file: $how"
done
if cmp -s "$patched" "$src/$pycaffe"; then
  echo "  $pycaffe: Blob.debug_stats already bound"
else
  cat "$patched" >"$src/$pycaffe"   # in place: the file keeps its mode, owner and links
  echo "  $pycaffe: includes debug_stats.hpp, Blob_DebugStats, Blob.debug_stats bound"
fi
[ ${#new_files[@]} -gt 0 ] || echo "  the files of scripts/caffe-additions/: already there"
