// Packed activation tensors: layout checks, packing with the frame, unpacking; pack_signs.
#include "bitpack/bit_tensor.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "threading.h"

namespace bmx {

BitTensorLayout plain_bit_layout(int64_t batch, int64_t channels, int64_t height, int64_t width) {
  BitTensorLayout l;
  l.batch = batch;
  l.channels = channels;
  l.height = height;
  l.width = width;
  l.padded_h = height;
  l.padded_w = width;
  return l;
}

std::string bit_layout_check(const BitTensorLayout& l) {
  auto bad = [](const std::string& what) { return "bmx::BitTensorLayout: " + what; };
  constexpr int64_t kMax = (int64_t{1} << 31) - 1;
  for (int64_t v : {l.batch, l.channels, l.height, l.width, l.groups, l.pad_h, l.pad_w,
                    l.padded_h, l.padded_w})
    if (v < 0 || v > kMax)
      return bad("a size is " + std::to_string(v) + "; every size must be in [0, 2^31)");
  if (l.channels < 1 || l.height < 1 || l.width < 1 || l.groups < 1)
    return bad("channels, height, width and groups must be >= 1");
  if (l.channels % l.groups != 0)
    return bad("channels (" + std::to_string(l.channels) + ") must be divisible by groups (" +
               std::to_string(l.groups) + ")");
  if (l.padded_h < l.pad_h + l.height || l.padded_w < l.pad_w + l.width)
    return bad("the planes (" + std::to_string(l.padded_h) + "x" + std::to_string(l.padded_w) +
               ") must hold the frame before the pixels plus the pixels (" +
               std::to_string(l.pad_h + l.height) + "x" + std::to_string(l.pad_w + l.width) + ")");
  if (l.pad_value < -1 || l.pad_value > 1)
    return bad("pad_value is " + std::to_string(l.pad_value) + "; use 0, +1 or -1");
  const int64_t plane = l.padded_h * l.padded_w, words = l.groups * l.words_per_group();
  if (plane > (int64_t{1} << 40) / words ||
      (l.batch > 0 && plane * words > (int64_t{1} << 40) / l.batch))
    return bad("the tensor would take more than 2^40 words");
  return std::string();
}

word_t frame_word(const BitTensorLayout& l, int64_t i) {
  if (l.pad_value != 1) return 0;
  const int64_t cg = l.group_channels();
  if (i + 1 < l.words_per_group() || cg % kWordBits == 0) return ~word_t{0};
  return (word_t{1} << (cg % kWordBits)) - 1;
}

void pack_plane_rows(const BitTensorLayout& l, const BitpackKernels& bp, const float* image,
                     int64_t g, int64_t i, int64_t y0, int64_t y1, const char* row_used,
                     word_t* plane) {
  const int64_t cg = l.group_channels(), HW = l.height * l.width, Wp = l.padded_w;
  const int64_t nc = std::min<int64_t>(kWordBits, cg - i * kWordBits);
  const word_t fw = frame_word(l, i);
  const float* src = image + (g * cg + i * kWordBits) * HW;
  for (int64_t yp = y0; yp < y1; ++yp) {
    word_t* row = plane + yp * Wp;
    const int64_t y = yp - l.pad_h;
    if (y < 0 || y >= l.height) {
      for (int64_t x = 0; x < Wp; ++x) row[x] = fw;
      continue;
    }
    for (int64_t x = 0; x < l.pad_w; ++x) row[x] = fw;
    for (int64_t x = l.pad_w + l.width; x < Wp; ++x) row[x] = fw;
    if (row_used == nullptr || row_used[y])
      bp.pack_channels(src + y * l.width, nc, HW, l.width, row + l.pad_w, 1);
  }
}

void write_frame(const BitTensorLayout& l, int64_t b0, int64_t b1, word_t* data) {
  const int64_t wpp = l.words_per_group(), plane = l.plane_words(), Wp = l.padded_w;
  const int64_t x0 = l.pad_w, x1 = l.pad_w + l.width, y0 = l.pad_h, y1 = l.pad_h + l.height;
  if (x0 == 0 && x1 == Wp && y0 == 0 && y1 == l.padded_h) return;  // no frame
  for (int64_t b = b0; b < b1; ++b)
    for (int64_t gi = 0; gi < l.groups * wpp; ++gi) {
      const word_t fw = frame_word(l, gi % wpp);
      word_t* p = data + (b * l.groups * wpp + gi) * plane;
      for (int64_t y = 0; y < l.padded_h; ++y) {
        word_t* row = p + y * Wp;
        if (y < y0 || y >= y1) {
          for (int64_t x = 0; x < Wp; ++x) row[x] = fw;
        } else {
          for (int64_t x = 0; x < x0; ++x) row[x] = fw;
          for (int64_t x = x1; x < Wp; ++x) row[x] = fw;
        }
      }
    }
}

void pack_bits_with_path(Path path, const BitTensorLayout& l, const float* nchw, word_t* out,
                         const ThreadHook* hook) {
  const std::string err = bit_layout_check(l);
  if (!err.empty()) throw std::invalid_argument(err);
  const BitpackKernels& bp = bitpack_for_path(path);
  const int64_t wpp = l.words_per_group(), planes = l.batch * l.groups * wpp;
  const int64_t image_floats = l.channels * l.height * l.width;
  const int threads = hook != nullptr ? std::max(1, hook->num_threads) : resolve_threads(0);
  const int workers = useful_threads(threads, static_cast<double>(l.batch) * image_floats / 8.0);
  TaskCounter counter(planes);
  auto worker = [&](int) {
    for (int64_t t; counter.next(&t);) {
      const int64_t i = t % wpp, bg = t / wpp, g = bg % l.groups, b = bg / l.groups;
      pack_plane_rows(l, bp, nchw + b * image_floats, g, i, 0, l.padded_h, nullptr,
                      out + t * l.plane_words());
    }
  };
  run_workers(hook, workers, worker);
}

void pack_signs(const float* x, int64_t n, word_t* packed) {
  bitpack_for_path(active_path()).pack_row(x, n, packed);
}

void mean_abs_rows(const float* w, int64_t rows, int64_t per_row, float* scale) {
  bitpack_for_path(active_path()).rows_mean_abs(w, rows, per_row, scale);
}

void pack_signs_and_mean_abs(const float* w, int64_t rows, int64_t per_row, word_t* packed,
                             float* scale) {
  const BitpackKernels& bp = bitpack_for_path(active_path());
  if (bp.rows_mean_abs_signs != nullptr && per_row % 8 == 0) {  // one pass
    bp.rows_mean_abs_signs(w, rows, per_row, scale, packed);
    return;
  }
  // Blocks of 16 rows or more (rows_mean_abs sums 16 at once), at least about 64 KiB: mean |w|
  // reads a block from memory, the signs read it again from the cache. Signs are packed up to
  // the last whole word inside the block.
  const int64_t fit = int64_t{16384} / std::max<int64_t>(per_row, 1);
  const int64_t block = std::max<int64_t>(16, fit / 16 * 16);
  const int64_t n = rows * per_row;
  int64_t done = 0;  // elements whose signs are written: a multiple of kWordBits until the end
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t r1 = std::min(rows, r0 + block);
    bp.rows_mean_abs(w + r0 * per_row, r1 - r0, per_row, scale + r0);
    const int64_t end = r1 == rows ? n : r1 * per_row / kWordBits * kWordBits;
    if (end > done) {
      bp.pack_row(w + done, end - done, packed + done / kWordBits);
      done = end;
    }
  }
}

void pack_bits(const BitTensorLayout& layout, const float* nchw, word_t* out,
               const ThreadHook* hook) {
  pack_bits_with_path(active_path(), layout, nchw, out, hook);
}

void unpack_bits(const BitTensorLayout& l, const word_t* in, float* nchw) {
  const std::string err = bit_layout_check(l);
  if (!err.empty()) throw std::invalid_argument(err);
  const int64_t cg = l.group_channels(), H = l.height, W = l.width;
  for (int64_t b = 0; b < l.batch; ++b)
    for (int64_t c = 0; c < l.channels; ++c) {
      // The channel's bit in the words of its plane, row after row.
      const word_t* plane = in + l.word_index(b, c, 0, 0);
      const int bit = static_cast<int>((c % cg) % kWordBits);
      float* out = nchw + (b * l.channels + c) * H * W;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          out[y * W + x] = (plane[y * l.padded_w + x] >> bit) & 1 ? 1.0f : -1.0f;
    }
}

}  // namespace bmx
