// The output kernels of every path (bconv2d/output_kernels.h) against their plain references:
// counts -> dot (+ border correction) -> float -> scale -> bias, bit for bit, and the weight
// popcount runs, on awkward block sizes.
#include <cstring>

#include "bconv2d/output_kernels.h"
#include "test_util.h"
#include "tiny_test.h"

TEST(output_block_all_paths) {
  std::mt19937_64 rng(tiny::g_seed + 40);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const float kSentinel = 12345.0f;
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::OutputKernels& ok = bmx::output_kernels_for_path(path);
    for (int64_t rows : {1, 2, 3, 5, 16}) {
      for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 40, 47}) {
        for (int corr_mode = 0; corr_mode < 3; ++corr_mode) {  // none, 16-entry rows, 37-entry rows
          for (int sb = 0; sb < 4; ++sb) {
            const int32_t nbits = static_cast<int32_t>(pick(1, 5000));
            const int64_t ldc = n + pick(0, 3), ldo = n + pick(0, 3);
            const int64_t ldcorr = corr_mode == 1 ? 16 : 37, ncls = corr_mode == 1 ? 9 : 37;
            std::vector<int32_t> counts(rows * ldc), corr(rows * ldcorr), cls(n);
            for (int32_t& c : counts) c = static_cast<int32_t>(pick(0, nbits));
            for (int32_t& c : corr) c = static_cast<int32_t>(pick(-3 * nbits, 3 * nbits));
            for (int32_t& c : cls)
              c = static_cast<int32_t>(pick(0, 3) == 0 ? 0 : pick(0, ncls - 1));
            std::vector<float> scale = tiny::random_floats(rng, rows);
            std::vector<float> bias = tiny::random_floats(rng, rows);
            for (float& v : scale) v *= 0.37f;
            bmx::OutputBlock b;
            b.counts = counts.data();
            b.ldc = ldc;
            b.rows = rows;
            b.n = n;
            b.nbits = nbits;
            b.corr = corr_mode ? corr.data() : nullptr;
            b.ldcorr = ldcorr;
            b.cls = corr_mode ? cls.data() : nullptr;
            b.scale = (sb & 1) ? scale.data() : nullptr;
            b.bias = (sb & 2) ? bias.data() : nullptr;
            b.ldo = ldo;
            std::vector<float> want(rows * ldo + 1, kSentinel), got(rows * ldo + 1, kSentinel);
            b.out = want.data();
            bmx::output_block_reference(b);
            b.out = got.data();
            ok.block(b);
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0)
                << ok.name << " rows=" << rows << " n=" << n << " corr=" << corr_mode
                << " scale/bias=" << sb;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t j = n; j < ldo; ++j)
                CHECK(got[r * ldo + j] == kSentinel) << ok.name << " wrote outside the block";
            RETURN_IF_FAILED();
          }
        }
      }
    }
  }
}

TEST(output_units_all_paths) {
  std::mt19937_64 rng(tiny::g_seed + 42);
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::OutputKernels& ok = bmx::output_kernels_for_path(path);
    for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100}) {
      for (int sb = 0; sb < 4; ++sb) {
        const int32_t nbits =
            static_cast<int32_t>(std::uniform_int_distribution<int>(1, 9000)(rng));
        std::vector<int32_t> counts(n);
        for (int32_t& c : counts) c = std::uniform_int_distribution<int32_t>(0, nbits)(rng);
        std::vector<float> scale = tiny::random_floats(rng, n), bias = tiny::random_floats(rng, n);
        for (float& v : scale) v *= 0.37f;
        const float* sp = (sb & 1) ? scale.data() : nullptr;
        const float* bp = (sb & 2) ? bias.data() : nullptr;
        std::vector<float> want(n + 1, 12345.0f), got(n + 1, 12345.0f);
        bmx::output_units_reference(counts.data(), n, nbits, sp, bp, want.data());
        ok.units(counts.data(), n, nbits, sp, bp, got.data());
        CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0)
            << ok.name << " n=" << n << " scale/bias=" << sb;
        RETURN_IF_FAILED();
      }
    }
  }
}

TEST(output_popcount_runs_all_paths) {
  std::mt19937_64 rng(tiny::g_seed + 41);
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::OutputKernels& ok = bmx::output_kernels_for_path(path);
    for (int64_t len : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40}) {
      for (int64_t runs : {1, 2, 3, 7, 8, 9, 15, 16, 17, 100}) {
        std::vector<uint64_t> x = tiny::random_words(rng, runs * len);
        if (runs > 3) {  // all-zero and all-one runs
          for (int64_t w = 0; w < len; ++w) x[w] = 0;
          for (int64_t w = 0; w < len; ++w) x[len + w] = ~uint64_t{0};
        }
        std::vector<int32_t> want(runs + 1, -7), got(runs + 1, -7);
        bmx::popcount_runs_reference(x.data(), runs, len, want.data());
        ok.popcount_runs(x.data(), runs, len, got.data());
        CHECK(want == got) << ok.name << " len=" << len << " runs=" << runs;
        RETURN_IF_FAILED();
      }
    }
  }
}
