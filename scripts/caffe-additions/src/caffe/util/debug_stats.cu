// Added by caffe-harness (scripts/patch-caffe-stats.sh); see include/caffe/util/debug_stats.hpp. The GPU side of
// the one pass: the elements stay on the device, only the four totals come to the host.
#include <stdint.h>
#include <algorithm>
#include <cstring>
#include <map>

#include "caffe/util/debug_stats.hpp"
#include "caffe/util/device_alternate.hpp"

namespace caffe {

namespace {

const int kThreads = 256;
const int kMaxBlocks = 1024;  // a grid-stride loop: more blocks only add atomics

struct DeviceTotals {
  double finite_asum;
  unsigned long long zeros;
  unsigned long long nonfinite;
  unsigned int max_bits;  // a non-negative float's bits order like the float: atomicMax on them
};

// Each thread folds its grid-stride share, the block folds its threads in shared memory, and thread 0
// adds the block's share to the totals (double atomicAdd: sm_60 and newer, all that nvcc 13 targets).
__global__ void ElementStatsKernel(const int n, const float* x, DeviceTotals* totals) {
  __shared__ double sums[kThreads];
  __shared__ unsigned long long zeros[kThreads];
  __shared__ unsigned long long nonfinite[kThreads];
  __shared__ unsigned int max_bits[kThreads];
  double sum = 0;
  unsigned long long zero_count = 0, nonfinite_count = 0;
  unsigned int largest = 0;
  CUDA_KERNEL_LOOP(i, n) {
    const unsigned int magnitude = __float_as_uint(x[i]) & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) {  // all exponent bits set: inf or NaN
      ++nonfinite_count;
    } else {
      sum += __uint_as_float(magnitude);
      zero_count += magnitude == 0;
      largest = max(largest, magnitude);
    }
  }
  const int t = threadIdx.x;
  sums[t] = sum;
  zeros[t] = zero_count;
  nonfinite[t] = nonfinite_count;
  max_bits[t] = largest;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) {
      sums[t] += sums[t + half];
      zeros[t] += zeros[t + half];
      nonfinite[t] += nonfinite[t + half];
      max_bits[t] = max(max_bits[t], max_bits[t + half]);
    }
    __syncthreads();
  }
  if (t == 0) {
    atomicAdd(&totals->finite_asum, sums[0]);
    atomicAdd(&totals->zeros, zeros[0]);
    atomicAdd(&totals->nonfinite, nonfinite[0]);
    atomicMax(&totals->max_bits, max_bits[0]);
  }
}

// One small buffer per device for the totals, allocated on first use and kept: a cudaMalloc per blob
// per layer would cost more than the reduction.
DeviceTotals* TotalsBuffer() {
  static std::map<int, DeviceTotals*> buffers;
  int device;
  CUDA_CHECK(cudaGetDevice(&device));
  DeviceTotals*& buffer = buffers[device];
  if (buffer == NULL) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&buffer), sizeof(DeviceTotals)));
  }
  return buffer;
}

}  // namespace

void caffe_gpu_element_stats(const int n, const float* x, ElementStats* stats) {
  DeviceTotals* totals = TotalsBuffer();
  // All on the legacy default stream, like Caffe's kernels: the reduction sees the layer's finished
  // output, and the synchronous copy back waits for it.
  CUDA_CHECK(cudaMemset(totals, 0, sizeof(DeviceTotals)));
  const int blocks = std::min(kMaxBlocks, (n + kThreads - 1) / kThreads);
  ElementStatsKernel<<<blocks, kThreads>>>(n, x, totals);
  CUDA_POST_KERNEL_CHECK;
  DeviceTotals host;
  CUDA_CHECK(cudaMemcpy(&host, totals, sizeof(host), cudaMemcpyDeviceToHost));
  stats->finite_asum = host.finite_asum;
  stats->zeros = static_cast<long long>(host.zeros);
  stats->nonfinite = static_cast<long long>(host.nonfinite);
  float max_abs;
  std::memcpy(&max_abs, &host.max_bits, sizeof(max_abs));
  stats->max_abs = max_abs;
}

}  // namespace caffe
