// A fixed pool of worker threads that run one parallel loop at a time. The calling thread
// takes part as worker 0, so a pool of n threads starts n-1 helpers.
//
// Decoding one token runs a few hundred short loops; waking a sleeping thread through the
// kernel costs tens of microseconds each time. So a worker that has finished spins for a
// short while (kSpin) watching for the next loop before it goes to sleep, and the caller
// spins likewise waiting for the workers to finish.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace hondo {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(thread_index, n_threads) once on every thread and returns when all are done.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Like parallel_for, but each thread works through its own contiguous share in pieces of
  // at most `grain` (smaller near the end of the share), and a thread that has finished takes
  // pieces from the end of the shares still in progress: the static split's streaming order,
  // without one core waiting for a slower one (cores of a shared machine do not run at the same
  // speed). fn may be called several times per thread, each time with a contiguous range (a pool of
  // one thread: fn(0, n) once).
  void parallel_for_balanced(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn);

  // Hands out [0, n) one index at a time to whichever thread is free: fn(i). For tasks of
  // uneven cost (causal attention: later tokens see more positions).
  void parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn);

  // Number of physical cores (falls back to hardware_concurrency).
  static int default_threads();

  // A pool of one: the calling thread alone. For products run inside a task of another
  // pool's loop (a thread taking whole attention heads, say), which must stay on that thread.
  static ThreadPool& this_thread();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> helpers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;  // written before generation_ moves
  std::atomic<uint64_t> generation_{0};                 // one more for every loop
  std::atomic<int> pending_{0};                         // helpers still in the current loop
  std::atomic<bool> stop_{false};
  // Who sleeps on the condition variables: a loop takes the mutex only to wake a sleeper, so
  // back-to-back loops (decoding runs a few hundred a token) pass no lock between the cores.
  std::atomic<int> sleeping_helpers_{0};
  std::atomic<bool> caller_sleeping_{false};
  struct Share;                      // a thread's remaining range in parallel_for_balanced
  std::unique_ptr<Share[]> shares_;  // [n_threads_], reused by every balanced loop
};

}  // namespace hondo
