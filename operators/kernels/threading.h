// Small helpers shared by the drivers (bgemm.cc, bconv2d.cc, bdense.cc): thread count, work
// splitting and aligned scratch buffers. Compiled with the baseline flags only (never include this
// from an ISA file, see dispatch.h).
#ifndef BMXNET_KERNELS_THREADING_H_
#define BMXNET_KERNELS_THREADING_H_

#include <cstdint>
#include <cstdlib>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bmx {

// num_threads <= 0 means omp_get_max_threads(); without OpenMP everything runs on 1 thread.
inline int resolve_threads(int num_threads) {
#ifdef _OPENMP
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

// Threads worth starting for a call with about `work_ns` nanoseconds of single-thread work: every
// thread beyond the first has to get at least kMinThreadWorkNs, because waking a team and the
// barriers between phases cost microseconds (tens of them when the workers sleep, as with
// OMP_WAIT_POLICY=passive or on a busy machine), as much as a small layer's whole run.
constexpr double kMinThreadWorkNs = 10000.0;
inline int useful_threads(int threads, double work_ns) {
  const double most = work_ns / kMinThreadWorkNs;
  if (most < 2.0) return 1;
  return most < threads ? static_cast<int>(most) : threads;
}

// How to cut M rows into chunks so that `tasks` independent column tasks times the chunks give
// every thread several tasks (dynamic scheduling then evens out the load). Chunks are multiples
// of 4 rows (the row tile of every kernel) except the last.
struct RowSplit {
  int64_t chunks = 1;
  int64_t rows = 0;  // rows per chunk
};
inline RowSplit split_rows(int64_t M, int64_t tasks, int threads) {
  RowSplit s;
  s.rows = M;
  if (threads <= 1 || M <= 8 || tasks >= 4 * static_cast<int64_t>(threads)) return s;
  int64_t want = (4 * threads + tasks - 1) / (tasks > 0 ? tasks : 1);
  int64_t rows = (M + want - 1) / want;
  rows = (rows + 3) / 4 * 4;
  if (rows < 8) rows = 8;
  s.rows = rows;
  s.chunks = (M + rows - 1) / rows;
  return s;
}

// A zero-initialised buffer of T aligned to 64 bytes.
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t n) : raw_(new T[static_cast<size_t>(n) + 64 / sizeof(T)]()) {
    uintptr_t p = reinterpret_cast<uintptr_t>(raw_.get());
    data_ = reinterpret_cast<T*>((p + 63) & ~uintptr_t{63});
  }
  T* get() { return data_; }

 private:
  std::unique_ptr<T[]> raw_;
  T* data_;
};

// Growable, 64-byte aligned, uninitialised scratch memory kept between calls, so that a kernel
// called again and again (every layer of every inference) does not allocate each time. Declare
// it thread_local at the point of use: one buffer per thread and per use, never shared.
// get(n) returns room for at least n Ts (contents unspecified); the pointer stays valid until the
// next get() on the same buffer. Buffers only grow; a call that needs more than kKeepBytes gets
// memory that is released again at its next get(), so one huge call does not pin memory forever.
template <typename T>
class ScratchBuffer {
 public:
  static constexpr int64_t kKeepBytes = int64_t{64} << 20;
  T* get(int64_t n) {
    const int64_t bytes = (n < 1 ? 1 : n) * static_cast<int64_t>(sizeof(T));
    if (bytes > capacity_ || (capacity_ > kKeepBytes && bytes <= kKeepBytes)) {
      raw_.reset();
      capacity_ = (bytes + 63) / 64 * 64;
      raw_.reset(new unsigned char[static_cast<size_t>(capacity_) + 64]);
    }
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw_.get());
    return reinterpret_cast<T*>((p + 63) & ~uintptr_t{63});
  }

 private:
  std::unique_ptr<unsigned char[]> raw_;
  int64_t capacity_ = 0;
};

}  // namespace bmx

#endif  // BMXNET_KERNELS_THREADING_H_
