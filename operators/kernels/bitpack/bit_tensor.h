// Packed activation tensors (BitTensorLayout, bmx_kernels.h): the row packer bconv2d and
// pack_bits share, and the frame words. Internal header, baseline flags only (see dispatch.h).
#ifndef BMXNET_KERNELS_BITPACK_BIT_TENSOR_H_
#define BMXNET_KERNELS_BITPACK_BIT_TENSOR_H_

#include <cstdint>

#include "bitpack/bitpack.h"
#include "bmx_kernels.h"

namespace bmx {

// The frame word of word i of a group: ones over the group's real channel bits in that word for
// pad_value +1, else 0 (-1 is bit 0; 0 is written as -1 and corrected by the consumer).
word_t frame_word(const BitTensorLayout& layout, int64_t i);

// Packs padded rows [y0, y1) of the plane of word i of group g of one image: frame words where
// the row or column is outside the pixels, else the signs of the image's channels
// 64 i .. 64 i + 63 of group g (image: the image's NCHW floats). Pixel rows y with
// row_used != nullptr and row_used[y] == 0 are left unwritten (a strided convolution never reads
// them).
void pack_plane_rows(const BitTensorLayout& layout, const BitpackKernels& bp, const float* image,
                     int64_t g, int64_t i, int64_t y0, int64_t y1, const char* row_used,
                     word_t* plane);

// Writes the frame words of every plane of images [b0, b1) (the pixels are left alone).
void write_frame(const BitTensorLayout& layout, int64_t b0, int64_t b1, word_t* data);

void pack_bits_with_path(Path path, const BitTensorLayout& layout, const float* nchw, word_t* out,
                         const ThreadHook* hook);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BITPACK_BIT_TENSOR_H_
