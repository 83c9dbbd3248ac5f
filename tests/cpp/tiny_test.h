// A tiny test framework (no downloads, no dependencies): TEST(name) { ... CHECK(cond) << ...; }
// Failures are counted and reported with file:line; the run ends with the plain line
// "N passed, M failed" and a non-zero exit status when anything failed.
#ifndef BMXNET_TESTS_CPP_TINY_TEST_H_
#define BMXNET_TESTS_CPP_TINY_TEST_H_

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch.h"

namespace tiny {

struct TestCase {
  const char* name;
  void (*fn)();
};
std::vector<TestCase>& registry();
struct Registrar {
  Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

// Failures of the current test (reset by the runner).
extern int64_t g_failures;
// Options from the command line / environment (test_main.cc).
extern int64_t g_random_shapes;  // random bconv2d shapes (--shapes N or BMX_TEST_SHAPES)
extern uint64_t g_seed;          // --seed S

// Collects a failure message and prints it when destroyed (so CHECK(c) << "context" works).
class Failure {
 public:
  Failure(const char* file, int line, const char* expr) {
    ++g_failures;
    os_ << file << ":" << line << ": CHECK(" << expr << ") failed ";
  }
  ~Failure() {
    if (g_failures <= 20)
      std::cerr << os_.str() << "\n";
    else if (g_failures == 21)
      std::cerr << "(further failures of this test not printed)\n";
  }
  template <typename T>
  Failure& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
};

// The paths every test runs: the CPU-supported ones, narrowed by BMXNET_KERNEL_PATHS.
std::vector<bmx::Path> paths_under_test();

}  // namespace tiny

#define TINY_CAT2(a, b) a##b
#define TINY_CAT(a, b) TINY_CAT2(a, b)
#define TEST(name)                                                  \
  static void name();                                               \
  static ::tiny::Registrar TINY_CAT(tiny_reg_, name)(#name, &name); \
  static void name()
#define CHECK(cond) \
  if (cond) {       \
  } else            \
    ::tiny::Failure(__FILE__, __LINE__, #cond)
// Stop the current test early if failures have piled up (avoids megabytes of output).
#define RETURN_IF_FAILED() \
  if (::tiny::g_failures > 0) return

#endif  // BMXNET_TESTS_CPP_TINY_TEST_H_
