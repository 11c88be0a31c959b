#!/usr/bin/env bash
# The GPU path of caffe-harness, proven in one go on a machine with an NVIDIA GPU, from the CUDA bundle
# (`make bundle-cuda`) and a checkout of this repository, with nothing installed: about 5 minutes, at most 8.
#
#   scripts/gpu-selftest.sh BUNDLE [RESULT.md]
#
# BUNDLE is the tarball (dist/caffe-harness-cuda.tar.xz) or a folder it was unpacked into. Steps, each with a
# time limit so that the whole stays within 8 minutes:
#   1. unpack the bundle into a fresh folder
#   2. `harness doctor --gpu 0`: the build, the tiny net on the CPU and on GPU 0
#   3. the `gpu`-marked tests (tests/test_gpu.py, ...), with the bundle's Python and pytest
#   4. `harness check prototxt/` on the CPU, then `harness check prototxt/ --gpu 0`: every zoo net against its
#      expected.yaml on both, then the two verdicts compared net by net (scripts/gpu-selftest-compare.py) and the
#      GPU runs' cross-checks of Caffe's own debug lines summed (0 mismatched wanted)
#   5. bench/overhead --gpu 0 on LeNet and GoogLeNet: plain `caffe train -gpu 0` against `harness train --gpu 0`
# Everything goes into one Markdown file (default selftest-<host>-<UTC time>.md in the current folder), which
# is printed at the end. Exit status 0 when every step passed. docs/gpu.md shows what to expect.
# Settings: GPU (default 0), JOBS (nets at once in the checks; default: cores / 2, at most 8), ROUNDS (bench, 3).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '4,6p' "$0" >&2; exit 2; }
bundle_arg=$1
result=${2:-$PWD/selftest-$(hostname -s 2>/dev/null || echo host)-$(date -u +%Y%m%dT%H%M%SZ).md}
GPU=${GPU:-0}
cores=$(nproc)
JOBS=${JOBS:-$(( cores / 2 > 8 ? 8 : (cores / 2 > 0 ? cores / 2 : 1) ))}
ROUNDS=${ROUNDS:-3}
started=$(date +%s)
deadline=$(( started + 470 ))          # 7 min 50 s: the last step gets what is left
failed=()

work=$(mktemp -d "${TMPDIR:-/tmp}/caffe-harness-selftest.XXXXXX")
out=$work/out
mkdir -p "$out"

left() { echo $(( deadline - $(date +%s) )); }
# step NAME CAP COMMAND...: run COMMAND with at most CAP seconds (less when the deadline is nearer), its
# output into $out/NAME.txt; a failure is remembered, never stops the script.
step() {
  local name=$1 cap=$2 limit rc t0
  shift 2
  limit=$(left); [ "$limit" -lt "$cap" ] || limit=$cap
  [ "$limit" -gt 5 ] || { echo "(skipped: the 8 minutes were used up)" >"$out/$name.txt"; failed+=("$name (no time left)"); return 1; }
  echo "==> $name (at most ${limit} s)" >&2
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.txt" 2>&1
  rc=$?
  echo "$(( $(date +%s) - t0 ))" >"$out/$name.seconds"
  case $rc in
    0) ;;
    124|137) echo "(stopped after ${limit} s)" >>"$out/$name.txt"; failed+=("$name (timed out after ${limit} s)") ;;
    *) failed+=("$name (exit $rc)") ;;
  esac
  return $rc
}
section() {   # section TITLE NAME [FILTER]: a heading, the step's time, its output (filtered) in a code block
  local text
  printf '\n## %s\n\n' "$1"
  [ -f "$out/$2.seconds" ] && printf '%s s\n\n' "$(cat "$out/$2.seconds")"
  text=$(if [ $# -ge 3 ]; then "$3" <"$out/$2.txt"; else cat "$out/$2.txt"; fi)
  [ -n "$text" ] || text=$(tail -20 "$out/$2.txt")      # a step that stopped early has no table: its last lines
  printf '```\n%s\n```\n' "$text"
}
check_table() { sed -n '/^net  *expected/,$p'; }          # the table and the last lines of `harness check`
pytest_summary() { grep -E '^(PASSED|FAILED|SKIPPED|ERROR|XFAIL)|passed|failed|skipped|error|^tests/|^\S+\.py' | tail -60; }

# ---- 1. unpack -------------------------------------------------------------------------------------------
if [ -d "$bundle_arg" ]; then
  bundle=$(cd "$bundle_arg" && pwd)
  [ -x "$bundle/bin/harness" ] || bundle=$bundle/caffe-harness-cuda
  echo "(folder given: not unpacked)" >"$out/unpack.txt"
elif command -v xz >/dev/null; then
  step unpack 120 tar -xf "$bundle_arg" -C "$work"
  bundle=$work/caffe-harness-cuda
else    # tar needs xz for .tar.xz; any python3 with its lzma module does it too
  step unpack 120 python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle_arg" "$work"
  bundle=$work/caffe-harness-cuda
fi
[ -x "$bundle/bin/harness" ] || { echo "gpu-selftest: no bin/harness in $bundle: is $bundle_arg the CUDA bundle?" >&2; exit 2; }
cd "$here"

# ---- 2. doctor on the GPU --------------------------------------------------------------------------------
step doctor 90 "$bundle/bin/harness" doctor --gpu "$GPU"

# ---- 3. the gpu-marked tests -----------------------------------------------------------------------------
# Only the files with gpu marks: collecting the others would import what the bundle leaves out (hypothesis, ...).
gpu_tests=$(grep -l 'mark\.gpu' tests/test_*.py | xargs)
step gpu-tests 150 "$bundle/bin/python" -m pytest -m gpu -rA -p no:cacheprovider -o addopts= $gpu_tests

# ---- 4. the zoo on the CPU and on the GPU ----------------------------------------------------------------
# A copy of prototxt/ per device: make_data.py writes into the net folders, and the kept runs land in runs/.
for device in cpu gpu; do
  rm -rf "$work/zoo-$device" && cp -r prototxt "$work/zoo-$device"
done
cd "$work/zoo-cpu" && step zoo-cpu 150 "$bundle/bin/harness" check . --jobs "$JOBS" --keep
cd "$work/zoo-gpu" && step zoo-gpu 180 "$bundle/bin/harness" check . --jobs "$JOBS" --keep --gpu "$GPU"
cd "$here"
kept() { sed -n 's/^run directories kept in //p' "$out/$1.txt"; }
if [ -n "$(kept zoo-cpu)" ] && [ -n "$(kept zoo-gpu)" ]; then
  step zoo-compare 30 "$bundle/bin/python" scripts/gpu-selftest-compare.py \
    "$work/zoo-cpu/$(kept zoo-cpu)" "$work/zoo-gpu/$(kept zoo-gpu)"
else
  echo "(no run directories to compare: see the checks above)" >"$out/zoo-compare.txt"
  failed+=("zoo-compare (no runs)")
fi

# ---- 5. overhead on the GPU ------------------------------------------------------------------------------
nets=$(for net in lenet googlenet; do [ -f "bench/nets/$net.prototxt" ] && echo "$net"; done | paste -sd,)
step overhead 240 "$bundle/bin/python" bench/overhead --gpu "$GPU" --bin "$bundle/bin" --nets "$nets" \
  --rounds "$ROUNDS" --no-parse --long 0 --output "$out/overhead.md"

# ---- the result file -------------------------------------------------------------------------------------
{
  printf '# caffe-harness GPU self-test, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf -- '- host: %s, %s cores, %s\n' "$(hostname -s 2>/dev/null)" "$cores" "$(uname -sr)"
  printf -- '- GPU: %s\n' "$(nvidia-smi -i "$GPU" --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 \
    | head -1 || true)"
  printf -- '- glibc: %s\n' "$(ldd --version 2>&1 | head -1)"
  if [ -f "$bundle_arg" ]; then
    printf -- '- bundle: %s, %s MiB, sha256 %s\n' "$(basename "$bundle_arg")" \
      "$(( $(stat -c %s "$bundle_arg") / 1048576 ))" "$(sha256sum "$bundle_arg" | cut -c1-16)"
  fi
  printf -- '- repository: %s\n' "$(git -C "$here" describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
  printf -- '- total: %s s (limit 480 s)\n' "$(( $(date +%s) - started ))"
  if [ ${#failed[@]} -eq 0 ]; then
    printf -- '- **result: every step passed**\n'
  else
    printf -- '- **result: FAILED: %s**\n' "$(IFS=';'; echo "${failed[*]}")"
  fi
  [ -f "$out/unpack.seconds" ] && printf -- '- unpacking: %s s\n' "$(cat "$out/unpack.seconds")"
  section "harness doctor --gpu $GPU" doctor
  section "The gpu-marked tests ($gpu_tests)" gpu-tests pytest_summary
  section "harness check prototxt/ (CPU)" zoo-cpu check_table
  section "harness check prototxt/ --gpu $GPU" zoo-gpu check_table
  printf '\n## Zoo verdicts, CPU against GPU\n\n'
  cat "$out/zoo-compare.txt"
  printf '\n## Overhead on the GPU (bench/overhead --gpu %s, %s rounds)\n\n' "$GPU" "$ROUNDS"
  [ -f "$out/overhead.seconds" ] && printf '%s s\n\n' "$(cat "$out/overhead.seconds")"
  if [ -f "$out/overhead.md" ]; then
    sed -e '/^<!--/d' "$out/overhead.md"
  else
    printf '```\n%s\n```\n' "$(tail -30 "$out/overhead.txt")"
  fi
} >"$result"
cat "$result"
rm -rf "$work"
[ ${#failed[@]} -eq 0 ]
