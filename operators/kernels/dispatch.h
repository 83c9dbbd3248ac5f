// Run-time choice of the kernel path (which instruction set the kernels use).
//
// How it works
// ------------
// Every instruction set we have kernels for is a *path*, and paths are bits of one enum
// (`Path`), so a set of paths is just an unsigned mask:
//
//     kReference  plain loops, one bit at a time where that is clearest (the ground truth)
//     kScalar     portable C++ (64-bit popcount, register-blocked), runs everywhere
//     kAvx2       x86-64 AVX2 + FMA   (pshufb nibble-table popcount)
//     kAvx512     x86-64 AVX-512 F/BW + VPOPCNTDQ (vpopcntq)
//     kNeon       aarch64 Advanced SIMD (vcnt)
//
// A path is *usable* when two things hold:
//   1. it was compiled in: the build adds the path's source files and defines BMX_BUILT_<PATH>=1
//      in one place only, operators/kernels/CMakeLists.txt (no preprocessor condition about
//      architectures is repeated in the .cc files), and
//   2. the CPU we run on supports it (`__builtin_cpu_supports`, which also checks that the OS
//      saves the AVX/AVX-512 registers; NEON is part of every aarch64 CPU).
// Reference and scalar are always usable. Among the enabled paths the highest bit wins.
//
// The environment variable BMXNET_KERNEL_PATHS narrows the choice, e.g.
//     BMXNET_KERNEL_PATHS=avx2            use AVX2 on an AVX-512 machine (so CI can test it)
//     BMXNET_KERNEL_PATHS=scalar          portable code only
//     BMXNET_KERNEL_PATHS=reference       the plain reference kernels
//     BMXNET_KERNEL_PATHS=scalar,avx2     the best of these two that the CPU supports
// Names are case-insensitive and comma-separated. Names of paths this build/CPU cannot run and
// unknown names are ignored with one warning on stderr; when nothing usable is left the
// detected set is used (with the warning), so a stale setting never crashes a program.
// The variable is read once, the first time a kernel asks for the active path.
//
// Every entry point also exists in a form that takes the Path explicitly (bconv2d_with_path,
// bdense_with_path, bgemm_with_kernel, ...), so a single test process can run every path the CPU
// supports against the reference, like ruy's test.h does.
//
// Why ISA code is kept behind plain function pointers (the ODR hazard)
// -------------------------------------------------------------------
// Each ISA lives in its own .cc compiled with its own flags (-mavx2, -mavx512vpopcntdq, ...).
// If such a file instantiated a template or an inline function that is also used elsewhere
// (std::vector<...>::resize, std::min, a helper from a shared header) the compiler would emit an
// AVX-512 copy of it, the linker would keep ONE copy of every such function for the whole
// program, and it might keep the AVX-512 one: the scalar path would then crash with SIGILL on a
// CPU without AVX-512. Hence the rule for the ISA files (bitpack/*_<isa>.cc, bgemm/*_<isa>.cc):
// everything is in an anonymous namespace, only intrinsics and <cstdint>/<cstring> are used,
// nothing from the standard library that is a template or inline, and the only things visible
// outside are the plain functions / kernel descriptors declared in bitpack/bitpack.h and
// bgemm/bgemm.h. The drivers (threading, im2col, the output transform) are compiled with the
// baseline flags and reach the ISA code only through those descriptors.
#ifndef BMXNET_KERNELS_DISPATCH_H_
#define BMXNET_KERNELS_DISPATCH_H_

#include <string>

#include "bmx_kernels.h"  // enum class Path, path_name, enabled_paths, active_path

namespace bmx {

inline constexpr unsigned bits(Path p) { return static_cast<unsigned>(p); }

// Paths whose code is in this build (reference and scalar always are).
unsigned compiled_paths();
// compiled_paths() restricted to what this CPU can execute.
unsigned cpu_supported_paths();
// The highest path in a set (kNone for an empty set).
Path best_path(unsigned paths);

// Applies a BMXNET_KERNEL_PATHS value to a set of usable paths. env may be null or empty (no
// override). Pure function (no global state) so that tests can exercise it directly.
struct PathSelection {
  unsigned paths = 0;   // the enabled paths, never empty if `usable` is not
  std::string warning;  // non-empty when something in env was ignored
};
PathSelection select_paths(const char* env, unsigned usable);

// enabled_paths() and active_path() (bmx_kernels.h): cpu_supported_paths() narrowed by the
// BMXNET_KERNEL_PATHS environment variable (read once), and the best of them.

}  // namespace bmx

#endif  // BMXNET_KERNELS_DISPATCH_H_
