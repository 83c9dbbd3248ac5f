// Binary fully-connected layer: sign-pack each input row, xor-popcount GEMM with the packed
// weights as A (num_hidden rows) and the packed inputs as B (batch columns), then the output
// transform of bconv2d/output_transform.h with n = in_units real bits:
//     y[b][o] = float(in_units - 2 * popcount(W[o] XOR X[b])) * scale[o] + bias[o].
// For batch 1 select_bgemm_kernel picks a GEMV kernel (K along the SIMD lanes), which reads
// the weight rows in place; larger batches use the panel kernels with the packed inputs as
// panels. Output channels are split over threads (and columns, when there are enough); a layer
// too small to pay for a second thread runs on one. Each column of counts (one input row against
// a chunk of hidden units) goes through the path's vectorised OutputKernels::units, which takes
// a scale and a bias per element, or through the bit-output thresholds 64 units at a time.
// bdense_prepare fixes the kernel, the split and the workspace (and permutes the weights for a
// packed input, see bmx_kernels.h); bdense_run allocates nothing.
#include "bdense/bdense.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv2d/output_kernels.h"
#include "bitout/sign_thresholds.h"
#include "bitpack/bit_tensor.h"
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

struct BDensePlan::Data {
  int64_t batch = 0, in_units = 0, num_hidden = 0;
  BDenseOptions options;
  Path path = Path::kNone;
  const word_t* packed_w = nullptr;  // [num_hidden][K]: the caller's, or `permuted`
  std::vector<word_t> permuted;
  const float* scale = nullptr;  // float output only
  const float* bias = nullptr;
  const BGemmKernel* kernel = nullptr;
  const BitpackKernels* bp = nullptr;
  const OutputKernels* ok = nullptr;
  int threads = 1;
  int64_t K = 0;  // words per input row
  RowSplit split;
  int64_t panels = 0;
  SignThresholds thresholds;
  // Workspace: packed input rows (float input), then per worker panel, counts, column, bits.
  int64_t rows_bytes = 0, worker_bytes = 0, counts_offset = 0, column_offset = 0,
          bits_offset = 0;
};

namespace {

int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// Weights in the order of a packed input layout (see bmx_kernels.h, BDenseOptions).
void permute_weights(const BitTensorLayout& l, int64_t num_hidden, const word_t* packed_w,
                     word_t* out) {
  const int64_t in_units = l.channels * l.height * l.width, words = words_for(in_units);
  const int64_t K = l.image_words(), wpp = l.words_per_group(), cg = l.group_channels();
  for (int64_t o = 0; o < num_hidden; ++o) {
    const word_t* src = packed_w + o * words;
    word_t* dst = out + o * K;
    write_frame(l, 0, 1, dst);
    for (int64_t gi = 0; gi < l.groups * wpp; ++gi)
      for (int64_t y = 0; y < l.height; ++y)
        for (int64_t x = 0; x < l.width; ++x)
          dst[gi * l.plane_words() + (y + l.pad_h) * l.padded_w + x + l.pad_w] = 0;
    for (int64_t c = 0; c < l.channels; ++c)
      for (int64_t y = 0; y < l.height; ++y)
        for (int64_t x = 0; x < l.width; ++x) {
          const int64_t f = (c * l.height + y) * l.width + x;  // NCHW flatten index
          if ((src[f / kWordBits] >> (f % kWordBits)) & 1)
            dst[l.word_index(0, c, y, x)] |= word_t{1} << ((c % cg) % kWordBits);
        }
  }
}

// Scratch of the convenience entry points: per calling thread, reused across calls.
thread_local ScratchBuffer<unsigned char> t_workspace;

}  // namespace

std::string bdense_prepare(int64_t batch, int64_t in_units, int64_t num_hidden,
                           const word_t* packed_w, const float* scale, const float* bias,
                           const BDenseOptions& options, BDensePlan* plan) {
  plan->data_.reset();
  std::string err = bdense_check(batch, in_units, num_hidden);
  if (!err.empty()) return err;
  if (packed_w == nullptr) return "bmx::bdense_prepare: packed_w is null; pass packed weights";
  auto d = std::make_shared<BDensePlan::Data>();
  d->batch = batch, d->in_units = in_units, d->num_hidden = num_hidden;
  d->options = options;
  d->options.batch_norm = nullptr;
  d->options.sign_formula = nullptr;
  d->options.sign_user = nullptr;
  d->path = options.path == Path::kNone ? active_path() : options.path;
  if ((bits(d->path) & compiled_paths()) == 0 || (bits(d->path) & (bits(d->path) - 1)) != 0)
    return std::string("bmx::bdense_prepare: path ") + path_name(d->path) +
           " is not built in; use Path::kNone (the active path)";
  const bool float_out = options.output_format == ActivationFormat::kFloat;
  d->scale = float_out ? scale : nullptr;
  d->bias = float_out ? bias : nullptr;
  d->bp = &bitpack_for_path(d->path);
  d->ok = &output_kernels_for_path(d->path);
  d->packed_w = packed_w;
  d->K = words_for(in_units);
  if (options.input_format == ActivationFormat::kBits) {
    const BitTensorLayout& l = options.input_layout;
    err = bit_layout_check(l);
    if (!err.empty()) return "bmx::bdense_prepare: input_layout: " + err;
    if (l.batch != batch || l.channels * l.height * l.width != in_units)
      return "bmx::bdense_prepare: input_layout holds " + std::to_string(l.batch) + " images of " +
             std::to_string(l.channels * l.height * l.width) + " units, the layer takes " +
             std::to_string(batch) + " rows of " + std::to_string(in_units) + "; make them equal";
    d->K = l.image_words();
    if (d->K >= (int64_t{1} << 30) / kWordBits)
      return "bmx::bdense_prepare: input_layout's images are too large (>= 2^24 words)";
    d->permuted.resize(static_cast<size_t>(num_hidden * d->K));
    permute_weights(l, num_hidden, packed_w, d->permuted.data());
    d->packed_w = d->permuted.data();
  }
  if (!float_out) {
    err = make_sign_thresholds(num_hidden, in_units, scale, bias, options.batch_norm,
                               options.sign_formula, options.sign_user, &d->thresholds);
    if (!err.empty()) return "bmx::bdense_prepare: " + err;
  }
  const int64_t K = d->K;
  // Rough single-thread cost: the weights stream from memory (~30 bytes per ns) once per panel
  // of columns, and the xor-popcounts run at ~17 words per ns.
  const double work_ns = static_cast<double>(num_hidden) * K * 8 / 30.0 +
                         static_cast<double>(batch) * num_hidden * K / 17.0;
  const int max_threads = plan_threads(options.max_threads);
  d->threads = options.exact_threads ? max_threads : useful_threads(max_threads, work_ns);
  d->kernel = &select_bgemm_kernel(d->path, num_hidden, batch, K);
  const int nr = d->kernel->nr;
  d->panels = (batch + nr - 1) / nr;
  RowSplit split = split_rows(num_hidden, d->panels, d->threads);
  if (d->kernel->row_panel) {
    // GEMV: keep a chunk of weight rows (<= 256 KiB) in cache while all panels pass over it;
    // tasks run chunk-major for that reason.
    const int64_t rows = std::max<int64_t>(4, (int64_t{256} * 1024 / 8 / K) / 4 * 4);
    if (rows < split.rows) split.rows = rows;
  }
  // Bit output: chunks of whole words of units, so that every output word has one writer.
  if (!float_out) split.rows = (split.rows + kWordBits - 1) / kWordBits * kWordBits;
  split.chunks = (num_hidden + split.rows - 1) / split.rows;
  d->split = split;

  d->rows_bytes = options.input_format == ActivationFormat::kBits ? 0 : round64(batch * K * 8);
  d->counts_offset = d->kernel->row_panel ? 0 : round64(K * nr * 8);
  d->column_offset = d->counts_offset + round64(split.rows * nr * 4);
  d->bits_offset = d->column_offset + round64(split.rows * 4);
  d->worker_bytes = d->bits_offset + (float_out ? 0 : round64(nr * 8));
  plan->data_ = std::move(d);
  return std::string();
}

int64_t BDensePlan::batch() const { return data_->batch; }
int64_t BDensePlan::in_units() const { return data_->in_units; }
int64_t BDensePlan::num_hidden() const { return data_->num_hidden; }
int64_t BDensePlan::workspace_bytes() const {
  return data_->rows_bytes + data_->threads * data_->worker_bytes + 64;
}
int BDensePlan::max_threads() const { return data_->threads; }
Path BDensePlan::path() const { return data_->path; }
const char* BDensePlan::kernel_name() const { return data_->kernel->name; }
int64_t BDensePlan::table_channels() const { return data_->thresholds.table_channels; }

namespace {

const char* run_plan(const BDensePlan& plan, const float* x_f, const word_t* x_b, float* y_f,
                     word_t* y_b, void* workspace, const ThreadHook* hook) {
  if (!plan.valid()) return "bmx::bdense_run: the plan is not prepared (bdense_prepare failed?)";
  const BDensePlan::Data& d = *plan.data_;
  if ((x_b != nullptr) != (d.options.input_format == ActivationFormat::kBits))
    return "bmx::bdense_run: the input's type does not match the plan's input_format (float* "
           "for kFloat, word_t* for kBits)";
  if ((y_b != nullptr) != (d.options.output_format == ActivationFormat::kBits))
    return "bmx::bdense_run: the output's type does not match the plan's output_format (float* "
           "for kFloat, word_t* for kBits)";
  if (workspace == nullptr) return "bmx::bdense_run: workspace is null; pass workspace_bytes()";
  if (d.batch == 0) return nullptr;
  int workers = d.threads;
  if (hook != nullptr && hook->parallel_for != nullptr)
    workers = std::max(1, std::min(workers, hook->num_threads));
  unsigned char* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(workspace) + 63) & ~uintptr_t{63});
  const int64_t K = d.K, num_hidden = d.num_hidden, batch = d.batch;
  const word_t* xp = x_b;
  if (x_f != nullptr) {
    word_t* rows = reinterpret_cast<word_t*>(base);
    for (int64_t b = 0; b < batch; ++b)
      d.bp->pack_row(x_f + b * d.in_units, d.in_units, rows + b * K);
    xp = rows;
  }
  unsigned char* worker_base = base + d.rows_bytes;
  const BGemmKernel& kernel = *d.kernel;
  const int nr = kernel.nr;
  const int64_t panels = d.panels, out_words = words_for(num_hidden);
  TaskCounter counter(panels * d.split.chunks);
  auto work = [&](int w) {
    unsigned char* mine = worker_base + w * d.worker_bytes;
    word_t* panel_buf = reinterpret_cast<word_t*>(mine);
    int32_t* counts = reinterpret_cast<int32_t*>(mine + d.counts_offset);
    int32_t* column = reinterpret_cast<int32_t*>(mine + d.column_offset);
    word_t* bits_buf = reinterpret_cast<word_t*>(mine + d.bits_offset);
    for (int64_t t; counter.next(&t);) {
      const int64_t chunk = t / panels, p = t % panels;
      const int64_t n0 = p * nr;
      const int n = static_cast<int>(std::min<int64_t>(nr, batch - n0));
      const word_t* panel = xp + n0 * K;  // row panel: the packed rows in place
      if (!kernel.row_panel) {
        pack_panel(kernel, K, xp + n0 * K, K, n, panel_buf);
        panel = panel_buf;
      }
      const int64_t m0 = chunk * d.split.rows;
      const int64_t rows = std::min(num_hidden, m0 + d.split.rows) - m0;
      kernel.run(rows, K, d.packed_w + m0 * K, K, panel, n, counts, nr);
      if (y_b != nullptr) {
        // 64 units at a time: one word per input row of the panel.
        for (int64_t r0 = 0; r0 < rows; r0 += kWordBits) {
          BitsBlock bb;
          bb.counts = counts + r0 * nr;
          bb.ldc = nr;
          bb.rows = std::min<int64_t>(kWordBits, rows - r0);
          bb.n = n;
          bb.nbits = static_cast<int32_t>(d.in_units);
          bb.corr = nullptr;
          bb.ldcorr = 0;
          bb.cls = nullptr;
          set_thresholds(d.thresholds, m0 + r0, &bb);
          bb.out = bits_buf;
          d.ok->bits(bb);
          for (int j = 0; j < n; ++j)
            y_b[(n0 + j) * out_words + (m0 + r0) / kWordBits] = bits_buf[j];
        }
        continue;
      }
      // Column j of the counts is input row n0 + j against hidden units m0 .. m0+rows-1: one
      // contiguous run of y, with a scale and a bias per element.
      for (int j = 0; j < n; ++j) {
        const int32_t* c = counts + j;
        if (nr > 1) {
          for (int64_t r = 0; r < rows; ++r) column[r] = counts[r * nr + j];
          c = column;
        }
        d.ok->units(c, rows, static_cast<int32_t>(d.in_units),
                    d.scale != nullptr ? d.scale + m0 : nullptr,
                    d.bias != nullptr ? d.bias + m0 : nullptr, y_f + (n0 + j) * num_hidden + m0);
      }
    }
  };
  run_workers(hook, workers, work);
  return nullptr;
}

}  // namespace

const char* bdense_run(const BDensePlan& plan, const float* x, float* y, void* workspace,
                       const ThreadHook* hook) {
  return run_plan(plan, x, nullptr, y, nullptr, workspace, hook);
}
const char* bdense_run(const BDensePlan& plan, const word_t* x, float* y, void* workspace,
                       const ThreadHook* hook) {
  return run_plan(plan, nullptr, x, y, nullptr, workspace, hook);
}
const char* bdense_run(const BDensePlan& plan, const float* x, word_t* y, void* workspace,
                       const ThreadHook* hook) {
  return run_plan(plan, x, nullptr, nullptr, y, workspace, hook);
}
const char* bdense_run(const BDensePlan& plan, const word_t* x, word_t* y, void* workspace,
                       const ThreadHook* hook) {
  return run_plan(plan, nullptr, x, nullptr, y, workspace, hook);
}

void bdense_with_path(Path path, int64_t batch, int64_t in_units, int64_t num_hidden,
                      const float* x, const word_t* packed_w, const float* scale, const float* bias,
                      float* y, int num_threads, bool exact_threads) {
  BDenseOptions o;
  o.path = path;
  o.max_threads = num_threads;
  o.exact_threads = exact_threads;
  BDensePlan plan;
  const std::string err = bdense_prepare(batch, in_units, num_hidden, packed_w, scale, bias, o,
                                         &plan);
  if (!err.empty()) throw std::invalid_argument(err);
  const char* run_err = bdense_run(plan, x, y, t_workspace.get(plan.workspace_bytes()));
  if (run_err != nullptr) throw std::invalid_argument(run_err);
}

void bdense(int64_t batch, int64_t in_units, int64_t num_hidden, const float* x,
            const word_t* packed_w, const float* scale, const float* bias, float* y,
            int num_threads) {
  bdense_with_path(active_path(), batch, in_units, num_hidden, x, packed_w, scale, bias, y,
                   num_threads);
}

}  // namespace bmx
