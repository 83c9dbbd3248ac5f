// What bconv2d_prepare computes once and bconv2d_run reads (internal header, baseline flags).
#ifndef BMXNET_KERNELS_BCONV2D_PLAN_H_
#define BMXNET_KERNELS_BCONV2D_PLAN_H_

#include <cstdint>
#include <vector>

#include "bconv2d/output_kernels.h"
#include "bgemm/bgemm.h"
#include "bitout/sign_thresholds.h"
#include "bitpack/bitpack.h"
#include "bmx_kernels.h"

namespace bmx {

// Output channels [o0, o0 + rows) of one group that one GEMM call and one output transform
// handle together: at most 64 of them; with bit output exactly the channels of one word of the
// output layout, dest_plane = that word's plane in an image (group * words_per_group + word).
struct RowBlock {
  int64_t o0, rows, dest_plane;
};
// A GEMM task's share of the output channels: row blocks [rb_begin, rb_end) of group g.
struct RowChunk {
  int64_t g, rb_begin, rb_end;
};

struct BConv2DPlan::Data {
  BConv2DShape s;
  BConv2DOptions options;
  Path path = Path::kNone;
  const word_t* packed_w = nullptr;
  const float* scale = nullptr;  // float output only
  const float* bias = nullptr;
  const BGemmKernel* kernel = nullptr;
  const BitpackKernels* bp = nullptr;
  const OutputKernels* ok = nullptr;
  int threads = 1;  // workers at most (fewer than max_threads for small layers)

  // Geometry (see "1. Layout" in bconv2d.cc).
  int64_t G = 0, cg = 0, mg = 0, wpp = 0, OH = 0, OW = 0, P = 0, T = 0, K = 0, nbits = 0;
  int64_t block_images = 1;  // images packed and convolved together (float input)
  BitTensorLayout in_layout, out_layout;
  std::vector<char> row_used;  // input rows some tap reads
  bool flat = false;           // a panel is one run of words per tap and word
  int64_t full_width = 0;      // panel width of a full block of images

  // Border correction (pad_value 0): classes of output rows and columns, and the table.
  std::vector<int32_t> ycls, xcls;
  int64_t nx = 1;
  bool correct = false;
  int64_t ldcorr = 16;
  std::vector<int32_t> corr;  // [out_channels][ldcorr]

  std::vector<RowBlock> blocks;
  std::vector<RowChunk> chunks;
  SignThresholds thresholds;  // bit output

  // Workspace: the packed input of a block of images (float input), then per worker the panel,
  // the counts, the border classes of the panel's columns and the bits of a block; all offsets
  // and sizes in bytes, multiples of 64, from a 64-byte aligned base.
  int64_t packed_bytes = 0, worker_bytes = 0;
  int64_t counts_offset = 0, cls_offset = 0, bits_offset = 0;
};

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_PLAN_H_
