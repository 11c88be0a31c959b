// Added by caffe-harness (scripts/patch-caffe-stats.sh); see include/caffe/util/debug_stats.hpp.
#include <stdint.h>
#include <cstring>

#include "caffe/syncedmem.hpp"
#include "caffe/util/debug_stats.hpp"

namespace caffe {

namespace {

const uint32_t kMagnitudeBits = 0x7fffffffu;
const uint32_t kExponentBits = 0x7f800000u;  // all set: inf or NaN

// Four of these run side by side in the loop below: independent double sums let the adds overlap.
struct Lane {
  double sum;
  uint32_t max_bits;  // a non-negative float's bits order like the float
  long long zeros;
  long long nonfinite;
};

inline void Accumulate(const float* x, Lane* lane) {
  uint32_t bits;
  std::memcpy(&bits, x, sizeof(bits));
  const uint32_t magnitude = bits & kMagnitudeBits;
  if (magnitude >= kExponentBits) {
    ++lane->nonfinite;
    return;
  }
  float value;
  std::memcpy(&value, &magnitude, sizeof(value));
  lane->sum += value;
  lane->zeros += magnitude == 0;
  if (magnitude > lane->max_bits) { lane->max_bits = magnitude; }
}

}  // namespace

void caffe_cpu_element_stats(const int n, const float* x, ElementStats* stats) {
  Lane lanes[4] = {};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    Accumulate(x + i, &lanes[0]);
    Accumulate(x + i + 1, &lanes[1]);
    Accumulate(x + i + 2, &lanes[2]);
    Accumulate(x + i + 3, &lanes[3]);
  }
  for (; i < n; ++i) { Accumulate(x + i, &lanes[0]); }
  uint32_t max_bits = 0;
  stats->finite_asum = 0;
  stats->zeros = stats->nonfinite = 0;
  for (int k = 0; k < 4; ++k) {
    stats->finite_asum += lanes[k].sum;
    stats->zeros += lanes[k].zeros;
    stats->nonfinite += lanes[k].nonfinite;
    if (lanes[k].max_bits > max_bits) { max_bits = lanes[k].max_bits; }
  }
  std::memcpy(&stats->max_abs, &max_bits, sizeof(max_bits));
}

BlobDebugStats blob_debug_stats(const Blob<float>& blob, bool diff, bool with_sumsq) {
  BlobDebugStats stats = {};
  const int count = blob.count();
  if (count == 0) { return stats; }  // no memory behind it; asum_data() is 0 too
  // The same calls debug_info makes, so the same BLAS routine sums the same values in the same order.
  stats.asum = diff ? blob.asum_diff() : blob.asum_data();
  stats.mean_abs = stats.asum / count;  // Net::ForwardDebugInfo's expression: float / int
  if (with_sumsq) { stats.sumsq = diff ? blob.sumsq_diff() : blob.sumsq_data(); }
  switch ((diff ? blob.diff() : blob.data())->head()) {
  case SyncedMemory::HEAD_AT_CPU:
    caffe_cpu_element_stats(count, diff ? blob.cpu_diff() : blob.cpu_data(), &stats.elements);
    break;
  case SyncedMemory::HEAD_AT_GPU:
  case SyncedMemory::SYNCED:
#ifndef CPU_ONLY
    caffe_gpu_element_stats(count, diff ? blob.gpu_diff() : blob.gpu_data(), &stats.elements);
#else
    NO_GPU;
#endif
    break;
  case SyncedMemory::UNINITIALIZED:  // never written: Caffe reads it as zeros
    stats.elements.zeros = count;
    break;
  }
  return stats;
}

}  // namespace caffe
