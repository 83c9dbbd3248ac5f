// Path detection and the BMXNET_KERNEL_PATHS override. See dispatch.h for the design.
#include "dispatch.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "bmx_kernels.h"

namespace bmx {

namespace {

struct NamedPath {
  const char* name;
  Path path;
};
// "portable" is accepted as an alias of "scalar".
constexpr NamedPath kNames[] = {
    {"reference", Path::kReference}, {"scalar", Path::kScalar}, {"portable", Path::kScalar},
    {"avx2", Path::kAvx2},           {"avx512", Path::kAvx512}, {"neon", Path::kNeon},
};

std::string lower_trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  std::string out;
  for (size_t i = b; i < e; ++i)
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  return out;
}

}  // namespace

const char* path_name(Path p) {
  switch (p) {
    case Path::kReference: return "reference";
    case Path::kScalar: return "scalar";
    case Path::kAvx2: return "avx2";
    case Path::kAvx512: return "avx512";
    case Path::kNeon: return "neon";
    default: return "none";
  }
}

unsigned compiled_paths() {
  unsigned p = bits(Path::kReference) | bits(Path::kScalar);
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
  p |= bits(Path::kAvx2);
#endif
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
  p |= bits(Path::kAvx512);
#endif
#if defined(BMX_BUILT_NEON) && BMX_BUILT_NEON
  p |= bits(Path::kNeon);
#endif
  return p;
}

unsigned cpu_supported_paths() {
  unsigned built = compiled_paths();
  unsigned p = bits(Path::kReference) | bits(Path::kScalar);
  // The BMX_BUILT_* macros are only ever defined by CMakeLists.txt for a target that can hold
  // that ISA, so __builtin_cpu_supports below is only compiled where it exists (x86).
#if (defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2) || (defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512)
  __builtin_cpu_init();
#endif
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
  if ((built & bits(Path::kAvx2)) && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    p |= bits(Path::kAvx2);
#endif
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
  if ((built & bits(Path::kAvx512)) && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vpopcntdq"))
    p |= bits(Path::kAvx512);
#endif
  // NEON (Advanced SIMD) is mandatory on aarch64, the only target that builds it.
  p |= built & bits(Path::kNeon);
  return p;
}

Path best_path(unsigned paths) {
  for (int b = 31; b >= 0; --b)
    if (paths & (1u << b)) return static_cast<Path>(1u << b);
  return Path::kNone;
}

PathSelection select_paths(const char* env, unsigned usable) {
  PathSelection sel;
  sel.paths = usable;
  if (env == nullptr || lower_trim(env).empty()) return sel;
  std::string spec(env);
  unsigned requested = 0;
  std::string ignored;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    std::string tok = lower_trim(spec.substr(start, comma - start));
    start = comma + 1;
    if (tok.empty()) continue;
    bool known = false;
    for (const NamedPath& n : kNames) {
      if (tok == n.name) {
        known = true;
        if (usable & bits(n.path)) {
          requested |= bits(n.path);
        } else {
          ignored += (ignored.empty() ? "" : ", ") + tok + " (not supported by this build/CPU)";
        }
      }
    }
    if (!known) ignored += (ignored.empty() ? "" : ", ") + tok + " (unknown name)";
  }
  const std::string names = "reference, scalar (alias portable), avx2, avx512, neon";
  if (requested == 0) {
    sel.warning = "bmxnet: BMXNET_KERNEL_PATHS='" + spec + "' names no usable kernel path";
    if (!ignored.empty()) sel.warning += " (ignored: " + ignored + ")";
    sel.warning += "; using the detected paths. Valid names: " + names + ".";
    return sel;
  }
  sel.paths = requested;
  if (!ignored.empty())
    sel.warning =
        "bmxnet: BMXNET_KERNEL_PATHS: ignored " + ignored + ". Valid names: " + names + ".";
  return sel;
}

unsigned enabled_paths() {
  // Thread-safe one-time initialisation (C++11 magic statics).
  static const unsigned paths = [] {
    PathSelection sel = select_paths(std::getenv("BMXNET_KERNEL_PATHS"), cpu_supported_paths());
    if (!sel.warning.empty()) std::fprintf(stderr, "%s\n", sel.warning.c_str());
    return sel.paths;
  }();
  return paths;
}

Path active_path() { return best_path(enabled_paths()); }

const char* active_kernel_path() { return path_name(active_path()); }

}  // namespace bmx
