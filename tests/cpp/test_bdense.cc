// bdense on every path against bdense_reference, exact equality.
#include <cstring>
#include <stdexcept>

#include "bdense/bdense.h"
#include "test_util.h"
#include "tiny_test.h"

namespace {

void check_dense(int64_t batch, int64_t in, int64_t hidden, std::mt19937_64& rng, bool use_scale,
                 bool use_bias, int threads) {
  std::vector<float> x = tiny::random_floats(rng, batch * in),
                     w = tiny::random_floats(rng, hidden * in);
  std::vector<float> scale = tiny::random_floats(rng, hidden),
                     bias = tiny::random_floats(rng, hidden);
  for (float& v : scale) v *= 0.37f;
  const float* sp = use_scale ? scale.data() : nullptr;
  const float* bp = use_bias ? bias.data() : nullptr;
  std::vector<float> want(batch * hidden);
  bmx::bdense_reference(batch, in, hidden, x.data(), w.data(), sp, bp, want.data());
  std::vector<uint64_t> packed(hidden * bmx::words_for(in));
  bmx::pack_dense_weights(hidden, in, w.data(), packed.data());
  for (bmx::Path path : tiny::paths_under_test()) {
    std::vector<float> got(batch * hidden + 1, 777.0f);
    bmx::bdense_with_path(path, batch, in, hidden, x.data(), packed.data(), sp, bp, got.data(),
                          threads, /*exact_threads=*/true);
    CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0)
        << bmx::path_name(path) << " batch=" << batch << " in=" << in << " hidden=" << hidden
        << " scale=" << use_scale << " bias=" << use_bias << " threads=" << threads;
    CHECK(got[batch * hidden] == 777.0f) << "wrote past the output";
  }
}

}  // namespace

TEST(bdense_awkward_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 30);
  int i = 0;
  for (int64_t batch : {1, 2, 3, 5, 8, 9, 17, 41})
    for (int64_t in : {1, 3, 16, 32, 33, 63, 64, 65, 128, 129, 1000})
      for (int64_t hidden : {1, 3, 4, 5, 17, 64, 130}) {
        ++i;
        check_dense(batch, in, hidden, rng, i % 3 != 0, i % 4 != 0, 1 + i % 3);
      }
}

TEST(bdense_large) {
  std::mt19937_64 rng(tiny::g_seed + 31);
  check_dense(1, 25088, 40, rng, true, true, 2);  // VGG-like fc6 input, batch 1 (GEMV)
  check_dense(2, 4097, 100, rng, true, false, 0);
  check_dense(64, 513, 33, rng, false, true, 2);
}

TEST(bdense_bad_sizes_throw) {
  CHECK(bmx::bdense_check(1, 10, 10).empty());
  CHECK(bmx::bdense_check(1, 0, 10).find("in_units") != std::string::npos);
  bool thrown = false;
  try {
    float f = 0;
    uint64_t w = 0;
    bmx::bdense(1, 10, 0, &f, &w, nullptr, nullptr, &f, 1);
  } catch (const std::invalid_argument&) {
    thrown = true;
  }
  CHECK(thrown);
}
