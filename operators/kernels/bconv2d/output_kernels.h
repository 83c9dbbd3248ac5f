// The output transform of bconv2d (and bdense) as per-path kernels (internal header).
//
// After the xor-popcount GEMM, every output is
//     dot = nbits - 2 * count (+ the border correction of a padded convolution)
//     out = float(dot) * scale[o] + bias[o]
// (the derivation and the exactness argument are in output_transform.h, whose scalar
// output_transform() is the reference). This runs once per output element, so on a layer with a
// small receptive field it costs as much as the GEMM itself unless it is vectorised; each path
// has its own implementation, reached through an OutputKernels descriptor (see dispatch.h for
// why ISA code is only reached through descriptors, and for the rules of ISA files, which
// include this header).
//
// Bit output (bitout/sign_thresholds.h): the same dot products, compared with per-channel
// integer thresholds instead of converted to float, 64 output channels packed into one word per
// column (bit r = channel r of the block).
//
// Border correction per column: a padded convolution with pad_value 0 adds, for output pixel p
// of border class cls[p] and output channel o, the integer corr[o][cls[p]] to the dot product
// (bconv2d.cc builds that table). The kernels take the table as rows of ldcorr entries and the
// class of each column; with ldcorr == 16 a row fits one 512-bit register, so the AVX-512 kernel
// looks the corrections up with one permute per 16 outputs.
#ifndef BMXNET_KERNELS_BCONV2D_OUTPUT_KERNELS_H_
#define BMXNET_KERNELS_BCONV2D_OUTPUT_KERNELS_H_

#include <cstdint>

#include "bmx_kernels.h"

namespace bmx {

enum class Path : unsigned;  // from dispatch.h, which ISA files need not include

// One block of outputs: for 0 <= r < rows and 0 <= j < n,
//     dot = nbits - 2 * counts[r * ldc + j] + (cls != nullptr ? corr[r * ldcorr + cls[j]] : 0)
//     v   = float(dot);  if (scale) v = v * scale[r];  if (bias) v = v + bias[r]
//     out[r * ldo + j] = v
// (scale and bias point at the entries of row 0; the multiplication and the addition are two
// separately rounded float operations, never a fused multiply-add).
struct OutputBlock {
  const int32_t* counts;
  int64_t ldc;
  int64_t rows;
  int64_t n;
  int32_t nbits;
  const int32_t* corr;  // used only when cls is not null
  int64_t ldcorr;
  const int32_t* cls;   // n class indices, or null (no correction)
  const float* scale;   // may be null
  const float* bias;    // may be null
  float* out;
  int64_t ldo;
};
using OutputBlockFn = void (*)(const OutputBlock& b);

// One row of outputs whose scale and bias vary along the row (bdense: one input row against n
// hidden units): out[i] = output_transform(nbits - 2 * counts[i], scale, bias, i), 0 <= i < n.
using OutputUnitsFn = void (*)(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                               const float* bias, float* out);

// out[r] = sum_{w < len} popcount(x[r * len + w]) for 0 <= r < runs (the weight popcounts the
// border correction is built from).
using PopcountRunsFn = void (*)(const word_t* x, int64_t runs, int64_t len, int32_t* out);

// One block of bits: for 0 <= r < rows (rows <= 64) and 0 <= j < n,
//     dot = nbits - 2 * counts[r * ldc + j] + (cls != nullptr ? corr[r * ldcorr + cls[j]] : 0)
//     bit = (dot >= threshold[r]) XOR flip[r]       (threshold, flip: entries of row 0 on)
// and bit r of out[j] is that bit (bits rows..63 are 0). Rows whose channel uses a lookup
// table (table_offset != nullptr and table_offset[r] >= 0) have threshold INT32_MAX and flip 0,
// so the loops above give 0 for them; output_bits_table_rows then ORs in
//     bit = bit (dot + table_bias) of the words at table + table_offset[r].
// dot never reaches 2^24, so threshold INT32_MAX is never met.
struct BitsBlock {
  const int32_t* counts;
  int64_t ldc;
  int64_t rows;
  int64_t n;
  int32_t nbits;
  const int32_t* corr;  // used only when cls is not null
  int64_t ldcorr;
  const int32_t* cls;
  const int32_t* threshold;
  const uint8_t* flip;
  const int64_t* table_offset;  // null when no channel of the layer has a table
  const word_t* table;
  int64_t table_bias;
  word_t* out;
};
using OutputBitsFn = void (*)(const BitsBlock& b);

struct OutputKernels {
  const char* name;
  OutputBlockFn block;
  OutputUnitsFn units;
  PopcountRunsFn popcount_runs;
  OutputBitsFn bits;
};

// Plain loops (the ground truth of the bit output), and the table rows alone (every path's bits
// kernel calls it when table_offset is not null; compiled with the baseline flags).
void output_bits_reference(const BitsBlock& b);
void output_bits_table_rows(const BitsBlock& b);
// The portable kernel, which the NEON descriptor shares.
void output_bits_portable(const BitsBlock& b);

// Plain loops over output_transform() and __builtin_popcountll (the ground truth).
void output_block_reference(const OutputBlock& b);
void output_units_reference(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                            const float* bias, float* out);
void popcount_runs_reference(const word_t* x, int64_t runs, int64_t len, int32_t* out);

extern const OutputKernels kOutputReference;
extern const OutputKernels kOutputPortable;
// The ISA ones exist only when CMakeLists.txt built that path.
extern const OutputKernels kOutputAvx2;
extern const OutputKernels kOutputAvx512;
extern const OutputKernels kOutputNeon;

// The output kernels of a path (the portable ones for a path that is not built).
const OutputKernels& output_kernels_for_path(Path path);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_OUTPUT_KERNELS_H_
