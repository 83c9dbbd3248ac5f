// Binary fully-connected layer: sign-pack each input row, xor-popcount GEMM with the packed
// weights as A (num_hidden rows) and the packed inputs as B (batch columns), then the output
// transform of bconv2d/output_transform.h with n = in_units real bits:
//     y[b][o] = float(in_units - 2 * popcount(W[o] XOR X[b])) * scale[o] + bias[o].
// For batch 1 select_bgemm_kernel picks a GEMV kernel (K along the SIMD lanes), which reads
// the weight rows in place; larger batches use the panel kernels with the packed inputs as
// panels. Output channels are split over threads (and columns, when there are enough); a layer
// too small to pay for a second thread runs on one. Each column of counts (one input row against
// a chunk of hidden units) goes through the path's vectorised OutputKernels::units, which takes
// a scale and a bias per element. Buffers are per-thread scratch reused across calls.
#include "bdense/bdense.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "bconv2d/output_kernels.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"
#include "threading.h"

namespace bmx {

std::string bdense_check(int64_t batch, int64_t in_units, int64_t num_hidden) {
  if (batch < 0) return "bmx::bdense: batch is " + std::to_string(batch) + "; it must be >= 0";
  if (in_units < 1 || num_hidden < 1)
    return "bmx::bdense: in_units (" + std::to_string(in_units) + ") and num_hidden (" +
           std::to_string(num_hidden) + ") must be >= 1";
  if (in_units >= (int64_t{1} << 30)) return "bmx::bdense: in_units must be < 2^30";
  return std::string();
}

void pack_dense_weights(int64_t num_hidden, int64_t in_units, const float* w, word_t* packed) {
  // The weights are repacked on every forward pass unless MXNet keeps the op's state
  // (static_alloc): use the active path's packer, not the bit-at-a-time reference.
  const int64_t words = words_for(in_units);
  const auto pack_row = bitpack_for_path(active_path()).pack_row;
  for (int64_t o = 0; o < num_hidden; ++o) pack_row(w + o * in_units, in_units, packed + o * words);
}

void pack_signs(const float* x, int64_t n, word_t* packed) {
  bitpack_for_path(active_path()).pack_row(x, n, packed);
}

namespace {

// Scratch reused across calls (threading.h): the packed input rows of the calling thread, and per
// thread the panel, the counts and one column of counts.
thread_local ScratchBuffer<word_t> t_rows;
thread_local ScratchBuffer<word_t> t_panel;
thread_local ScratchBuffer<int32_t> t_counts;
thread_local ScratchBuffer<int32_t> t_column;

}  // namespace

void bdense_with_path(Path path, int64_t batch, int64_t in_units, int64_t num_hidden,
                      const float* x, const word_t* packed_w, const float* scale, const float* bias,
                      float* y, int num_threads, bool exact_threads) {
  const std::string err = bdense_check(batch, in_units, num_hidden);
  if (!err.empty()) throw std::invalid_argument(err);
  if (batch == 0) return;
  const int64_t K = words_for(in_units);
  // Rough single-thread cost: the weights stream from memory (~30 bytes per ns) once per panel
  // of columns, and the xor-popcounts run at ~17 words per ns.
  const double work_ns = static_cast<double>(num_hidden) * K * 8 / 30.0 +
                         static_cast<double>(batch) * num_hidden * K / 17.0;
  const int threads = exact_threads ? resolve_threads(num_threads)
                                    : useful_threads(resolve_threads(num_threads), work_ns);
  const BitpackKernels& bp = bitpack_for_path(path);
  const OutputKernels& ok = output_kernels_for_path(path);

  word_t* xp = t_rows.get(batch * K);
  for (int64_t b = 0; b < batch; ++b) bp.pack_row(x + b * in_units, in_units, xp + b * K);

  const BGemmKernel& kernel = select_bgemm_kernel(path, num_hidden, batch, K);
  const int nr = kernel.nr;
  const int64_t panels = (batch + nr - 1) / nr;
  RowSplit split = split_rows(num_hidden, panels, threads);
  if (kernel.row_panel) {
    // GEMV: keep a chunk of weight rows (<= 256 KiB) in cache while all panels pass over it;
    // tasks run chunk-major for that reason.
    int64_t rows = std::max<int64_t>(4, (int64_t{256} * 1024 / 8 / K) / 4 * 4);
    if (rows < split.rows) split.rows = rows;
    split.chunks = (num_hidden + split.rows - 1) / split.rows;
  }
  const int64_t tasks = panels * split.chunks;
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    word_t* panel_buf = kernel.row_panel ? nullptr : t_panel.get(K * nr);
    int32_t* counts = t_counts.get(split.rows * nr);
    int32_t* column = t_column.get(split.rows);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t chunk = t / panels, p = t % panels;
      const int64_t n0 = p * nr;
      const int n = static_cast<int>(std::min<int64_t>(nr, batch - n0));
      const word_t* panel = xp + n0 * K;  // row panel: the packed rows in place
      if (!kernel.row_panel) {
        pack_panel(kernel, K, xp + n0 * K, K, n, panel_buf);
        panel = panel_buf;
      }
      const int64_t m0 = chunk * split.rows, rows = std::min(num_hidden, m0 + split.rows) - m0;
      kernel.run(rows, K, packed_w + m0 * K, K, panel, n, counts, nr);
      // Column j of the counts is input row n0 + j against hidden units m0 .. m0+rows-1: one
      // contiguous run of y, with a scale and a bias per element.
      for (int j = 0; j < n; ++j) {
        const int32_t* c = counts + j;
        if (nr > 1) {
          for (int64_t r = 0; r < rows; ++r) column[r] = counts[r * nr + j];
          c = column;
        }
        ok.units(c, rows, static_cast<int32_t>(in_units), scale != nullptr ? scale + m0 : nullptr,
                 bias != nullptr ? bias + m0 : nullptr, y + (n0 + j) * num_hidden + m0);
      }
    }
  }
}

void bdense(int64_t batch, int64_t in_units, int64_t num_hidden, const float* x,
            const word_t* packed_w, const float* scale, const float* bias, float* y,
            int num_threads) {
  bdense_with_path(active_path(), batch, in_units, num_hidden, x, packed_w, scale, bias, y,
                   num_threads);
}

}  // namespace bmx
