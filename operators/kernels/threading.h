// Small helpers shared by the drivers (bgemm.cc, bconv2d.cc, bdense.cc): thread count, work
// splitting and aligned scratch buffers. Compiled with the baseline flags only (never include this
// from an ISA file, see dispatch.h).
#ifndef BMXNET_KERNELS_THREADING_H_
#define BMXNET_KERNELS_THREADING_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "bmx_kernels.h"

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

// Threads a plan is made for: max_threads when positive, else resolve_threads(0) (the hook that
// runs the plan may offer fewer; see ThreadHook).
inline int plan_threads(int max_threads) {
  return max_threads > 0 ? max_threads : resolve_threads(0);
}

// Runs fn(w) for every worker w in [0, workers), in parallel where possible: through the hook
// when there is one, else an OpenMP team, else one after another. Workers share their work
// through a TaskCounter, so a worker that never runs (a hook running tasks serially, an OpenMP
// team smaller than asked) leaves nothing undone; w only picks the worker's scratch memory.
template <typename F>
void run_workers(const ThreadHook* hook, int workers, F& fn) {
  if (workers <= 1) {
    fn(0);
    return;
  }
  if (hook != nullptr && hook->parallel_for != nullptr) {
    hook->parallel_for(
        hook->user, workers, [](void* context, int w) { (*static_cast<F*>(context))(w); }, &fn);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(workers)
  fn(omp_get_thread_num());
#else
  for (int w = 0; w < workers; ++w) fn(w);
#endif
}

// Runs phases 0 .. nphases-1 in order, each as fn(phase, w) for every worker w in
// [0, workers); a phase starts only when the previous one has finished on every worker. With a
// hook every phase is one parallel_for call; with OpenMP all phases run in ONE parallel region
// with a barrier between them (a second region would wake the team again, which costs tens of
// microseconds on a busy machine, as much as a small layer). Worker 0 runs in every phase (the
// hook contract calls every index once; an OpenMP team always has thread 0), which is what
// PhaseCounters relies on.
template <typename F>
void run_phases(const ThreadHook* hook, int workers, int64_t nphases, F& fn) {
  if (workers <= 1) {
    for (int64_t p = 0; p < nphases; ++p) fn(p, 0);
    return;
  }
  if (hook != nullptr && hook->parallel_for != nullptr) {
    for (int64_t p = 0; p < nphases; ++p) {
      auto task = [&](int w) { fn(p, w); };
      run_workers(hook, workers, task);
    }
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(workers)
  {
    const int w = omp_get_thread_num();
    for (int64_t p = 0; p < nphases; ++p) {
      fn(p, w);
#pragma omp barrier
    }
  }
#else
  for (int64_t p = 0; p < nphases; ++p)
    for (int w = 0; w < workers; ++w) fn(p, w);
#endif
}

// Hands out task indices 0, 1, ... to whichever worker asks next (dynamic scheduling).
class TaskCounter {
 public:
  explicit TaskCounter(int64_t tasks = 0) : tasks_(tasks) {}
  // Sets *t to the next task; false when none is left.
  bool next(int64_t* t) {
    *t = next_.fetch_add(1, std::memory_order_relaxed);
    return *t < tasks_;
  }
  // Only while no worker uses the counter (run_phases' barriers order it with their use).
  void reset(int64_t tasks) {
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
  }

 private:
  int64_t tasks_;
  std::atomic<int64_t> next_{0};
};

// The task counters of run_phases, without allocating: phase p uses counter p % 2, and worker 0
// of phase p prepares counter (p + 1) % 2 for phase p + 1 (its last users finished in phase
// p - 1, before the barrier that started phase p).
class PhaseCounters {
 public:
  TaskCounter& get(int64_t phase) { return c_[phase % 2]; }
  void prepare_next(int64_t phase, int w, int64_t next_tasks) {
    if (w == 0) c_[(phase + 1) % 2].reset(next_tasks);
  }

 private:
  TaskCounter c_[2];
};

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
