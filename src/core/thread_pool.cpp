#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace hondo {

// A thread's remaining share [begin, end) as one word, so that the owner (taking from the
// front) and a thief (taking from the back) agree through compare-and-swap.
struct alignas(64) ThreadPool::Share {
  std::atomic<uint64_t> range;
  static uint64_t pack(int64_t b, int64_t e) { return uint64_t(b) << 32 | uint64_t(e); }
  static int64_t begin(uint64_t r) { return int64_t(r >> 32); }
  static int64_t end(uint64_t r) { return int64_t(r & 0xFFFFFFFFu); }
  // The next piece from the front (owner) or the back (thief); false when none is left.
  // Pieces are `grain` long while much is left and shrink to 1 as the share runs out (a
  // quarter of what is left), so that the threads finish within a short piece of each other.
  bool take(int64_t grain, bool front, int64_t& b, int64_t& e) {
    uint64_t r = range.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t rb = begin(r), re = end(r);
      if (rb >= re) return false;
      const int64_t piece = std::clamp((re - rb) / 4, int64_t(1), grain);
      b = front ? rb : re - piece;
      e = front ? rb + piece : re;
      const uint64_t next = front ? pack(e, re) : pack(rb, b);
      if (range.compare_exchange_weak(r, next, std::memory_order_relaxed)) return true;
    }
  }
};

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), shares_(new Share[size_t(n_threads_)]) {
  for (int i = 1; i < n_threads_; ++i) helpers_.emplace_back(&ThreadPool::worker, this, i);
}

namespace {
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or kSpin has passed; true when done() became true.
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
    cpu_relax();
  }
}
}  // namespace

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : helpers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto started = [&] { return stop_.load() || generation_.load() != seen; };
    if (!spin_until(started)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_helpers_.fetch_add(1);  // before the predicate's check: see run()
      start_cv_.wait(lock, started);
      sleeping_helpers_.fetch_sub(1);
    }
    if (stop_) return;
    seen = generation_.load();
    (*job_)(index, n_threads_);
    // The caller sets caller_sleeping_ before it checks pending_ under the mutex; all these
    // atomics are sequentially consistent, so either it sees this decrement or this sees it
    // sleeping and wakes it (the mutex ensures it is waiting by then).
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_ = n_threads_ - 1;
  // A helper about to sleep counts itself in sleeping_helpers_ before it checks generation_
  // (both sequentially consistent): either it sees this loop's generation and does not
  // sleep, or this sees it counted and wakes it, taking the mutex first so that the helper
  // is waiting by then.
  generation_.fetch_add(1);
  if (sleeping_helpers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    start_cv_.notify_all();
  }
  fn(0, n_threads_);
  auto finished = [&] { return pending_.load() == 0; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_ = true;
    done_cv_.wait(lock, finished);
    caller_sleeping_ = false;
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int t = int(std::min<int64_t>(n, n_threads_));
  if (t == 1) {
    fn(0, n);
    return;
  }
  run([&](int i, int) {
    if (i >= t) return;
    const int64_t begin = n * i / t, end = n * (i + 1) / t;
    fn(begin, end);
  });
}

void ThreadPool::parallel_for_balanced(int64_t n, int64_t grain,
                                       const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int t = int(std::min<int64_t>((n + grain - 1) / grain, n_threads_));
  if (t == 1 || n > int64_t(0xFFFFFFFF)) {
    parallel_for(n, fn);
    return;
  }
  Share* shares = shares_.get();  // one loop runs at a time
  for (int i = 0; i < t; ++i) shares[i].range = Share::pack(n * i / t, n * (i + 1) / t);
  run([&](int i, int) {
    if (i >= t) return;
    int64_t b, e;
    while (shares[i].take(grain, true, b, e)) fn(b, e);
    for (int v = 1; v < t; ++v)
      while (shares[(i + v) % t].take(grain, false, b, e)) fn(b, e);
  });
}

void ThreadPool::parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || n_threads_ == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  });
}

ThreadPool& ThreadPool::this_thread() {
  thread_local ThreadPool alone(1);  // starts no helper thread
  return alone;
}

int ThreadPool::default_threads() {
  // Count distinct (physical id, core id) pairs: hyper-threads share a core's load units.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) phys = value();
    if (line.rfind("core id", 0) == 0) cores.insert({phys, value()});
  }
  if (!cores.empty()) return int(cores.size());
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

}  // namespace hondo
