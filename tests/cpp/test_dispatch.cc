// Path detection and the BMXNET_KERNEL_PATHS parser.
#include <string>

#include "bmx_kernels.h"
#include "dispatch.h"
#include "tiny_test.h"

using bmx::bits;
using bmx::Path;

TEST(dispatch_detection) {
  const unsigned compiled = bmx::compiled_paths();
  const unsigned supported = bmx::cpu_supported_paths();
  const unsigned base = bits(Path::kReference) | bits(Path::kScalar);
  CHECK((compiled & base) == base);
  CHECK((supported & base) == base);
  CHECK((supported & ~compiled) == 0u) << "supported paths must be compiled in";
  CHECK((bmx::enabled_paths() & ~supported) == 0u);
  // The build must have compiled the ISA paths of the architecture (catches a broken
  // CMakeLists.txt condition).
#if defined(__x86_64__)
  CHECK(compiled & bits(Path::kAvx2)) << "AVX2 path not compiled in on x86_64";
  CHECK(compiled & bits(Path::kAvx512)) << "AVX-512 path not compiled in on x86_64";
  CHECK(!(compiled & bits(Path::kNeon)));
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vpopcntdq");
  CHECK(((supported & bits(Path::kAvx512)) != 0) == avx512);
#elif defined(__aarch64__)
  CHECK(compiled & bits(Path::kNeon)) << "NEON path not compiled in on aarch64";
  CHECK(supported & bits(Path::kNeon));
  CHECK(!(compiled & (bits(Path::kAvx2) | bits(Path::kAvx512))));
#endif
  CHECK(std::string(bmx::active_kernel_path()) == bmx::path_name(bmx::active_path()));
  CHECK(bmx::active_path() == bmx::best_path(bmx::enabled_paths()));
}

TEST(dispatch_best_path_and_names) {
  CHECK(bmx::best_path(0) == Path::kNone);
  CHECK(bmx::best_path(bits(Path::kReference)) == Path::kReference);
  CHECK(bmx::best_path(bits(Path::kReference) | bits(Path::kScalar)) == Path::kScalar);
  CHECK(bmx::best_path(bits(Path::kScalar) | bits(Path::kAvx2) | bits(Path::kAvx512)) ==
        Path::kAvx512);
  CHECK(bmx::best_path(bits(Path::kScalar) | bits(Path::kNeon)) == Path::kNeon);
  CHECK(std::string(bmx::path_name(Path::kReference)) == "reference");
  CHECK(std::string(bmx::path_name(Path::kScalar)) == "scalar");
  CHECK(std::string(bmx::path_name(Path::kAvx2)) == "avx2");
  CHECK(std::string(bmx::path_name(Path::kAvx512)) == "avx512");
  CHECK(std::string(bmx::path_name(Path::kNeon)) == "neon");
}

TEST(dispatch_env_parsing) {
  const unsigned x86 =
      bits(Path::kReference) | bits(Path::kScalar) | bits(Path::kAvx2) | bits(Path::kAvx512);
  auto sel = [&](const char* env, unsigned usable = 0) {
    return bmx::select_paths(env, usable ? usable : x86);
  };
  // No override.
  CHECK(sel(nullptr).paths == x86 && sel(nullptr).warning.empty());
  CHECK(sel("").paths == x86 && sel("").warning.empty());
  CHECK(sel("  ").paths == x86 && sel("  ").warning.empty());
  // Single names narrow to that path.
  CHECK(sel("avx2").paths == bits(Path::kAvx2) && sel("avx2").warning.empty());
  CHECK(sel("avx512").paths == bits(Path::kAvx512));
  CHECK(sel("scalar").paths == bits(Path::kScalar));
  CHECK(sel("portable").paths == bits(Path::kScalar));
  CHECK(sel("reference").paths == bits(Path::kReference));
  // Lists, case and blanks.
  CHECK(sel("scalar,avx2").paths == (bits(Path::kScalar) | bits(Path::kAvx2)));
  CHECK(sel(" AVX2 , Scalar ").paths == (bits(Path::kScalar) | bits(Path::kAvx2)));
  CHECK(sel("avx2,,").paths == bits(Path::kAvx2) && sel("avx2,,").warning.empty());
  CHECK(bmx::best_path(sel("reference,avx2").paths) == Path::kAvx2);
  // Unusable and unknown names are ignored with a warning; nothing usable -> detected set.
  {
    bmx::PathSelection s = sel("neon");
    CHECK(s.paths == x86);
    CHECK(s.warning.find("neon") != std::string::npos) << s.warning;
  }
  {
    bmx::PathSelection s = sel("avx9000");
    CHECK(s.paths == x86);
    CHECK(s.warning.find("avx9000") != std::string::npos) << s.warning;
    CHECK(s.warning.find("unknown") != std::string::npos) << s.warning;
  }
  {
    bmx::PathSelection s = sel("scalar,bogus");
    CHECK(s.paths == bits(Path::kScalar));
    CHECK(s.warning.find("bogus") != std::string::npos) << s.warning;
  }
  {
    // An AVX2-only machine asked for avx512.
    const unsigned avx2_only = bits(Path::kReference) | bits(Path::kScalar) | bits(Path::kAvx2);
    bmx::PathSelection s = sel("avx512,scalar", avx2_only);
    CHECK(s.paths == bits(Path::kScalar));
    CHECK(s.warning.find("avx512") != std::string::npos) << s.warning;
  }
  {
    const unsigned arm = bits(Path::kReference) | bits(Path::kScalar) | bits(Path::kNeon);
    CHECK(bmx::select_paths("neon", arm).paths == bits(Path::kNeon));
    CHECK(bmx::select_paths("avx2", arm).paths == arm);
  }
}
