// Threads of the runtime's own float layers (the binary kernels take a thread count and use the
// kernel core's threads). A layer is cut into independent tasks; Parallel::run hands them to the
// caller's parallel-for hook (bmx_options_set_parallel_for), to OpenMP where the build has it, or
// to the predictor's small thread pool. Nothing here allocates per call.
#ifndef BMXNET_RUNTIME_PARALLEL_H_
#define BMXNET_RUNTIME_PARALLEL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "bmxnet/runtime.h"

namespace bmxrt {

// Persistent workers: run() wakes them all, everyone (the caller too) takes task indices from one
// counter, and run() returns when every worker has checked in for this call, so no worker can
// still be reading the call's task when the next call begins.
class ThreadPool {
 public:
  explicit ThreadPool(int workers);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  void run(int num_tasks, bmx_task_fn task, void* context);

 private:
  void work_loop();
  void take_tasks(bmx_task_fn task, void* context, int num_tasks);

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  size_t finished_ = 0;
  bmx_task_fn task_ = nullptr;
  void* context_ = nullptr;
  int num_tasks_ = 0;
  std::atomic<int> next_{0};
};

class Parallel {
 public:
  Parallel(int threads, bmx_parallel_for_fn hook, void* user, ThreadPool* pool)
      : threads_(threads), hook_(hook), user_(user), pool_(pool) {}
  int threads() const { return threads_; }

  // Calls f(i) for every i in [0, num_tasks), possibly on several threads.
  template <typename F>
  void run(int num_tasks, F& f) const {
    if (num_tasks <= 0) return;
    if (num_tasks == 1 || threads_ <= 1) {
      for (int i = 0; i < num_tasks; ++i) f(i);
      return;
    }
    dispatch(num_tasks, [](void* c, int i) { (*static_cast<F*>(c))(i); }, &f);
  }

  // Tasks worth making for `work` units of about one multiply-add each: one per ~64k units,
  // at most 4 per thread, at least 1.
  int tasks_for(int64_t work) const;

 private:
  void dispatch(int num_tasks, bmx_task_fn task, void* context) const;
  int threads_;
  bmx_parallel_for_fn hook_;
  void* user_;
  ThreadPool* pool_;
};

// [begin, end) of part `i` of `parts` equal parts of n.
inline int64_t part_begin(int64_t n, int parts, int i) { return n * i / parts; }

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_PARALLEL_H_
