// Helpers shared by the tests: deterministic random data with the awkward values the sign
// convention has to get right (+0.0, -0.0, exact ties).
#ifndef BMXNET_TESTS_CPP_TEST_UTIL_H_
#define BMXNET_TESTS_CPP_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <vector>

namespace tiny {

// Values in [-1, 1) with about 1 in 16 an exact +0.0f or -0.0f (both must pack as +1).
inline std::vector<float> random_floats(std::mt19937_64& rng, int64_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 31);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    const int r = pick(rng);
    x = r == 0 ? 0.0f : r == 1 ? -0.0f : u(rng);
  }
  return v;
}

inline std::vector<uint64_t> random_words(std::mt19937_64& rng, int64_t n) {
  std::vector<uint64_t> v(static_cast<size_t>(n));
  for (uint64_t& x : v) x = rng();
  return v;
}

}  // namespace tiny

#endif  // BMXNET_TESTS_CPP_TEST_UTIL_H_
