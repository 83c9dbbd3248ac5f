#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bmxrt {

ThreadPool::ThreadPool(int workers) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::take_tasks(bmx_task_fn task, void* context, int num_tasks) {
  for (int i = next_.fetch_add(1); i < num_tasks; i = next_.fetch_add(1)) task(context, i);
}

void ThreadPool::work_loop() {
  uint64_t seen = 0;
  for (;;) {
    bmx_task_fn task;
    void* context;
    int num_tasks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      task = task_;
      context = context_;
      num_tasks = num_tasks_;
    }
    take_tasks(task, context, num_tasks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (++finished_ == threads_.size()) done_.notify_one();
    }
  }
}

void ThreadPool::run(int num_tasks, bmx_task_fn task, void* context) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = task;
    context_ = context;
    num_tasks_ = num_tasks;
    finished_ = 0;
    next_.store(0);
    ++generation_;
  }
  wake_.notify_all();
  take_tasks(task, context, num_tasks);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return finished_ == threads_.size(); });
}

int Parallel::tasks_for(int64_t work) const {
  if (threads_ <= 1) return 1;
  const int64_t most = work / 65536;
  const int64_t cap = 4 * static_cast<int64_t>(threads_);
  if (most < 2) return 1;
  return static_cast<int>(most < cap ? most : cap);
}

void Parallel::dispatch(int num_tasks, bmx_task_fn task, void* context) const {
  if (hook_) {
    hook_(user_, num_tasks, task, context);
    return;
  }
#ifdef _OPENMP
  (void)pool_;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int i = 0; i < num_tasks; ++i) task(context, i);
#else
  if (pool_) {
    pool_->run(num_tasks, task, context);
  } else {
    for (int i = 0; i < num_tasks; ++i) task(context, i);
  }
#endif
}

}  // namespace bmxrt
