// Added by caffe-harness (scripts/patch-caffe-stats.sh): the statistics of Net's debug_info for one blob, computed
// as Net::ForwardDebugInfo / BackwardDebugInfo / Backward compute them, plus what one pass over the elements
// tells beyond them. pycaffe exposes it as Blob.debug_stats(diff, sumsq).
#ifndef CAFFE_UTIL_DEBUG_STATS_HPP_
#define CAFFE_UTIL_DEBUG_STATS_HPP_

#include "caffe/blob.hpp"

namespace caffe {

// One pass over the elements. Only finite elements enter the sum and the maximum; the sum is in double,
// so it is the true sum of |x| where Caffe's float sum overflows to inf.
struct ElementStats {
  double finite_asum;   // sum of |x| over finite elements
  float max_abs;        // largest |x| over finite elements, 0 when there are none
  long long zeros;      // elements equal to +0 or -0
  long long nonfinite;  // NaN or +-inf
};

struct BlobDebugStats {
  float asum;      // Blob::asum_data() / asum_diff(): Caffe's own float sum (BLAS sasum, or cuBLAS)
  float mean_abs;  // asum / count, the float debug_info prints
  float sumsq;     // Blob::sumsq_data() / sumsq_diff(), as Net::Backward sums them; 0 unless asked for
  ElementStats elements;
};

void caffe_cpu_element_stats(const int n, const float* x, ElementStats* stats);
#ifndef CPU_ONLY
void caffe_gpu_element_stats(const int n, const float* x, ElementStats* stats);
#endif

// The data's statistics, or the diff's. The elements are read where the blob's head is, exactly where
// asum_data() reads them: on the GPU nothing is copied to the host, and the head does not move.
BlobDebugStats blob_debug_stats(const Blob<float>& blob, bool diff, bool with_sumsq);

}  // namespace caffe

#endif  // CAFFE_UTIL_DEBUG_STATS_HPP_
