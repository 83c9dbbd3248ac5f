// Sign packing of every path against a bit-by-bit expectation, across word boundaries.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "bitpack/bitpack.h"
#include "test_util.h"
#include "tiny_test.h"

namespace {

const int64_t kSizes[] = {1,  2,   3,   16,  31,  32,  33,  63,  64,
                          65, 127, 128, 129, 191, 192, 200, 256, 257};
const uint64_t kCanary = 0xA5A5A5A5DEADBEEFull;

// Expected bit i of a packed run: x >= 0 (false for NaN).
bool expected_bit(float x) { return x >= 0.0f; }

std::vector<float> awkward_floats(std::mt19937_64& rng, int64_t n) {
  std::vector<float> v = tiny::random_floats(rng, n);
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            1e-38f,
                            -1e-38f};
  for (int64_t i = 0; i < n; i += 7) v[i] = specials[(i / 7) % 10];
  return v;
}

}  // namespace

TEST(bitpack_row_all_paths) {
  std::mt19937_64 rng(tiny::g_seed);
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::BitpackKernels& bp = bmx::bitpack_for_path(path);
    for (int64_t n : kSizes) {
      for (int64_t offset = 0; offset < 3; ++offset) {  // unaligned sources
        std::vector<float> x = awkward_floats(rng, n + offset);
        const int64_t words = bmx::words_for(n);
        std::vector<uint64_t> out(words + 1, kCanary);
        bp.pack_row(x.data() + offset, n, out.data());
        for (int64_t i = 0; i < words * 64; ++i) {
          const bool bit = (out[i / 64] >> (i % 64)) & 1;
          if (i < n)
            CHECK(bit == expected_bit(x[offset + i]))
                << bmx::path_name(path) << " n=" << n << " element " << i << " value "
                << x[offset + i];
          else
            CHECK(!bit) << bmx::path_name(path) << " n=" << n << ": padding bit " << i << " is set";
        }
        CHECK(out[words] == kCanary) << bmx::path_name(path) << " n=" << n << " wrote past the end";
        RETURN_IF_FAILED();
      }
    }
  }
}

TEST(bitpack_channels_all_paths) {
  std::mt19937_64 rng(tiny::g_seed + 1);
  const int64_t kPixels[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 40};
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::BitpackKernels& bp = bmx::bitpack_for_path(path);
    for (int64_t channels : kSizes) {
      for (int64_t pixels : kPixels) {
        const int64_t words = bmx::words_for(channels);
        for (int64_t extra :
             {int64_t{0}, int64_t{2}}) {  // out_stride > words: words in between untouched
          const int64_t plane = pixels + extra * 3;  // plane_stride > pixels
          const int64_t out_stride = words + extra;
          std::vector<float> x = awkward_floats(rng, channels * plane);
          std::vector<uint64_t> out(pixels * out_stride + 1, kCanary);
          bp.pack_channels(x.data(), channels, plane, pixels, out.data(), out_stride);
          for (int64_t p = 0; p < pixels; ++p) {
            for (int64_t i = 0; i < words * 64; ++i) {
              const bool bit = (out[p * out_stride + i / 64] >> (i % 64)) & 1;
              if (i < channels)
                CHECK(bit == expected_bit(x[i * plane + p]))
                    << bmx::path_name(path) << " channels=" << channels << " pixel " << p
                    << " channel " << i;
              else
                CHECK(!bit) << bmx::path_name(path) << " channels=" << channels << " pixel " << p
                            << ": padding bit " << i << " is set";
            }
            for (int64_t w = words; w < out_stride; ++w)
              CHECK(out[p * out_stride + w] == kCanary) << "word between pixels overwritten";
          }
          CHECK(out[pixels * out_stride] == kCanary) << "wrote past the end";
          RETURN_IF_FAILED();
        }
      }
    }
  }
}

TEST(bitpack_reference_and_public_pack_signs) {
  // The reference packers agree with the expectation too, and pack_signs uses the active path.
  std::mt19937_64 rng(tiny::g_seed + 2);
  for (int64_t n : kSizes) {
    std::vector<float> x = awkward_floats(rng, n);
    std::vector<uint64_t> a(bmx::words_for(n)), b(bmx::words_for(n));
    bmx::pack_row_reference(x.data(), n, a.data());
    bmx::pack_signs(x.data(), n, b.data());
    CHECK(a == b) << "n=" << n;
    for (int64_t i = 0; i < n; ++i) CHECK(((a[i / 64] >> (i % 64)) & 1) == expected_bit(x[i]));
  }
}

namespace {

// mean |x| of each row as the documented formula says: summed in order in double.
std::vector<float> expected_mean_abs(const std::vector<float>& x, int64_t rows, int64_t per_row) {
  std::vector<float> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t i = 0; i < per_row; ++i) s += std::fabs(static_cast<double>(x[r * per_row + i]));
    out[r] = static_cast<float>(s / static_cast<double>(per_row));
  }
  return out;
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

// Weights of magnitudes from 2^-30 to 2^30 mixed in every row, with the awkward specials in
// some rows only. (Rounding to float hides almost any change of the summation order, so these
// tests catch lost, repeated or misplaced elements and rows, not a different order.)
std::vector<float> wide_range_floats(std::mt19937_64& rng, int64_t n, bool specials) {
  std::vector<float> v = specials ? awkward_floats(rng, n) : tiny::random_floats(rng, n);
  std::uniform_int_distribution<int> e(-30, 30);
  for (int64_t i = 0; i < n; ++i)
    if (i % 5 != 0 || !specials) v[i] = std::ldexp(v[i], e(rng));
  return v;
}

}  // namespace

TEST(rows_mean_abs_all_paths_bit_exact) {
  // Every path against the formula, and the public mean_abs_rows (active path) too.
  std::mt19937_64 rng(tiny::g_seed + 3);
  const int64_t kRows[] = {1, 3, 7, 8, 9, 16, 17, 31, 40};
  const int64_t kPerRow[] = {1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 147, 576};
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::BitpackKernels& bp = bmx::bitpack_for_path(path);
    for (int64_t rows : kRows) {
      for (int64_t per_row : kPerRow) {
        const bool specials = (rows + per_row) % 3 == 0;
        std::vector<float> x = wide_range_floats(rng, rows * per_row, specials);
        const std::vector<float> want = expected_mean_abs(x, rows, per_row);
        std::vector<float> got(rows + 1, -7.0f);
        bp.rows_mean_abs(x.data(), rows, per_row, got.data());
        for (int64_t r = 0; r < rows; ++r)
          CHECK(same_float(got[r], want[r]))
              << bmx::path_name(path) << " rows=" << rows << " per_row=" << per_row << " row "
              << r << ": " << got[r] << " vs " << want[r];
        CHECK(got[rows] == -7.0f) << bmx::path_name(path) << " wrote past the end";
        std::vector<float> active(rows);
        bmx::mean_abs_rows(x.data(), rows, per_row, active.data());
        for (int64_t r = 0; r < rows; ++r) CHECK(same_float(active[r], want[r])) << "public";
        RETURN_IF_FAILED();
      }
    }
  }
}

TEST(pack_signs_and_mean_abs_matches_its_parts) {
  // One pass in blocks: the words must be pack_signs of the whole tensor (rows that end inside a
  // word, blocks of many rows), the scales the formula's.
  std::mt19937_64 rng(tiny::g_seed + 4);
  // per_row % 8 == 0 (the one-pass kernel of x86): 16- and 8-row blocks, rows left over, a last
  // word the tensor only partly fills.
  const int64_t kShapes[][2] = {{1, 1},   {5, 13},   {64, 27},  {256, 9}, {130, 147}, {9, 4608},
                                {600, 3}, {1000, 33}, {40, 576}, {13, 72}, {3, 8},    {31, 24}};
  for (const auto& shape : kShapes) {
    const int64_t rows = shape[0], per_row = shape[1], n = rows * per_row;
    std::vector<float> x = wide_range_floats(rng, n, rows % 2 == 1);
    std::vector<uint64_t> words(bmx::words_for(n) + 1, kCanary), want(bmx::words_for(n));
    std::vector<float> scale(rows);
    bmx::pack_signs_and_mean_abs(x.data(), rows, per_row, words.data(), scale.data());
    bmx::pack_row_reference(x.data(), n, want.data());
    CHECK(std::equal(want.begin(), want.end(), words.begin())) << rows << "x" << per_row;
    CHECK(words[bmx::words_for(n)] == kCanary) << rows << "x" << per_row << " wrote past the end";
    const std::vector<float> want_scale = expected_mean_abs(x, rows, per_row);
    for (int64_t r = 0; r < rows; ++r)
      CHECK(same_float(scale[r], want_scale[r])) << rows << "x" << per_row << " row " << r;
    // The one-pass kernels of every path that has one, called directly.
    for (bmx::Path path : tiny::paths_under_test()) {
      const bmx::BitpackKernels& bp = bmx::bitpack_for_path(path);
      if (bp.rows_mean_abs_signs == nullptr || per_row % 8 != 0) continue;
      std::vector<uint64_t> got(bmx::words_for(n) + 1, kCanary);
      std::fill(got.begin(), got.end() - 1, ~uint64_t{0});  // every byte must be written
      std::vector<float> got_scale(rows);
      bp.rows_mean_abs_signs(x.data(), rows, per_row, got_scale.data(), got.data());
      CHECK(std::equal(want.begin(), want.end(), got.begin()))
          << bmx::path_name(path) << " " << rows << "x" << per_row;
      CHECK(got[bmx::words_for(n)] == kCanary) << bmx::path_name(path) << " wrote past the end";
      for (int64_t r = 0; r < rows; ++r)
        CHECK(same_float(got_scale[r], want_scale[r]))
            << bmx::path_name(path) << " " << rows << "x" << per_row << " row " << r;
    }
    RETURN_IF_FAILED();
  }
}
