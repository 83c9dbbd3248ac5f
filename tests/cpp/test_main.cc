// Test runner: bmx_kernels_test [--shapes N] [--seed S] [--filter SUBSTRING] [--print-active-path]
//   --shapes N           number of random bconv2d shapes (default 1000; env BMX_TEST_SHAPES)
//   --print-active-path  print bmx::active_kernel_path() and exit (used by the pytest wrapper to
//                        check the BMXNET_KERNEL_PATHS override end to end)
#include <chrono>
#include <cstring>

#include "bmx_kernels.h"
#include "tiny_test.h"

namespace tiny {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}
int64_t g_failures = 0;
int64_t g_random_shapes = 1000;
uint64_t g_seed = 20240601;

std::vector<bmx::Path> paths_under_test() {
  std::vector<bmx::Path> out;
  const unsigned enabled = bmx::enabled_paths();
  for (unsigned b = 0; b < 32; ++b)
    if (enabled & (1u << b)) out.push_back(static_cast<bmx::Path>(1u << b));
  return out;
}

}  // namespace tiny

int main(int argc, char** argv) {
  const char* filter = nullptr;
  if (const char* env = std::getenv("BMX_TEST_SHAPES")) tiny::g_random_shapes = std::atoll(env);
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--shapes") && i + 1 < argc) {
      tiny::g_random_shapes = std::atoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      tiny::g_seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) {
      filter = argv[++i];
    } else if (!std::strcmp(argv[i], "--print-active-path")) {
      std::cout << bmx::active_kernel_path() << std::endl;
      return 0;
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--shapes N] [--seed S] [--filter SUBSTRING] [--print-active-path]\n";
      return 2;
    }
  }
  std::cout << "active kernel path: " << bmx::active_kernel_path() << "; testing paths:";
  for (bmx::Path p : tiny::paths_under_test()) std::cout << " " << bmx::path_name(p);
  std::cout << "; random conv shapes: " << tiny::g_random_shapes << std::endl;

  int passed = 0, failed = 0;
  const auto t_all = std::chrono::steady_clock::now();
  for (const tiny::TestCase& tc : tiny::registry()) {
    if (filter && !std::strstr(tc.name, filter)) continue;
    tiny::g_failures = 0;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      tc.fn();
    } catch (const std::exception& e) {
      ++tiny::g_failures;
      std::cerr << "unexpected exception: " << e.what() << "\n";
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (tiny::g_failures == 0) {
      ++passed;
      std::cout << "[ PASS ] " << tc.name << " (" << s << " s)" << std::endl;
    } else {
      ++failed;
      std::cout << "[ FAIL ] " << tc.name << " (" << tiny::g_failures << " failed checks)"
                << std::endl;
    }
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::cout << "total " << total << " s" << std::endl;
  std::cout << passed << " passed, " << failed << " failed" << std::endl;
  return failed == 0 ? 0 : 1;
}
