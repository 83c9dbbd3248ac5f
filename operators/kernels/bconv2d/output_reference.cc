// Reference output kernels (plain loops over output_transform()), and the choice per path.
#include "bconv2d/output_kernels.h"
#include "bconv2d/output_transform.h"
#include "dispatch.h"

namespace bmx {

void output_block_reference(const OutputBlock& b) {
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t j = 0; j < b.n; ++j) {
      int64_t dot = int64_t{b.nbits} - 2 * int64_t{b.counts[r * b.ldc + j]};
      if (b.cls != nullptr) dot += b.corr[r * b.ldcorr + b.cls[j]];
      b.out[r * b.ldo + j] = output_transform(dot, b.scale, b.bias, r);
    }
}

void output_units_reference(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                            const float* bias, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = output_transform(int64_t{nbits} - 2 * int64_t{counts[i]}, scale, bias, i);
}

void popcount_runs_reference(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  for (int64_t r = 0; r < runs; ++r) {
    int64_t c = 0;
    for (int64_t w = 0; w < len; ++w) c += __builtin_popcountll(x[r * len + w]);
    out[r] = static_cast<int32_t>(c);
  }
}

namespace {

int64_t bits_dot(const BitsBlock& b, int64_t r, int64_t j) {
  int64_t dot = b.nbits - 2 * int64_t{b.counts[r * b.ldc + j]};
  if (b.cls != nullptr) dot += b.corr[r * b.ldcorr + b.cls[j]];
  return dot;
}

}  // namespace

void output_bits_reference(const BitsBlock& b) {
  for (int64_t j = 0; j < b.n; ++j) {
    word_t w = 0;
    for (int64_t r = 0; r < b.rows; ++r) {
      const int64_t dot = bits_dot(b, r, j);
      word_t bit;
      if (b.table_offset != nullptr && b.table_offset[r] >= 0) {
        const int64_t i = dot + b.table_bias;
        bit = (b.table[b.table_offset[r] + i / kWordBits] >> (i % kWordBits)) & 1;
      } else {
        bit = static_cast<word_t>(dot >= b.threshold[r]) ^ b.flip[r];
      }
      w |= bit << r;
    }
    b.out[j] = w;
  }
}

void output_bits_table_rows(const BitsBlock& b) {
  if (b.table_offset == nullptr) return;
  for (int64_t r = 0; r < b.rows; ++r) {
    if (b.table_offset[r] < 0) continue;
    const word_t* table = b.table + b.table_offset[r];
    for (int64_t j = 0; j < b.n; ++j) {
      const int64_t i = bits_dot(b, r, j) + b.table_bias;
      b.out[j] |= ((table[i / kWordBits] >> (i % kWordBits)) & 1) << r;
    }
  }
}

const OutputKernels kOutputReference = {"reference", output_block_reference,
                                        output_units_reference, popcount_runs_reference,
                                        output_bits_reference};

const OutputKernels& output_kernels_for_path(Path path) {
  switch (path) {
    case Path::kReference: return kOutputReference;
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
    case Path::kAvx2: return kOutputAvx2;
#endif
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
    case Path::kAvx512: return kOutputAvx512;
#endif
#if defined(BMX_BUILT_NEON) && BMX_BUILT_NEON
    case Path::kNeon: return kOutputNeon;
#endif
    default: break;
  }
  return kOutputPortable;
}

}  // namespace bmx
