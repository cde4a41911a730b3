// Reuse of freed large CPU blocks by exact size, without raising the peak RSS.
//
// Outside a simulation's heap reuse (calibration, memory first), every large tensor of
// a pass is a fresh mapping that the kernel zeroes page by page on first touch, and is
// unmapped when freed: the next time chunk's tensors of the very same sizes are zeroed
// again.  While a block-reuse scope is open, this allocator stands in for torch's CPU
// allocator: a freed block of at least `min_bytes` is kept (not unmapped) and handed to
// the next request of exactly its size.  What is kept is bounded by the high-water mark
// H of the blocks in use since the scope opened: before a request that no kept block
// fits is mapped, the oldest kept blocks are unmapped until blocks in use + kept ones
// stay within (1 + headroom) x H.  With headroom 0 the memory of these blocks is never
// above what the same sequence of requests reaches without reuse (whose blocks in use
// are the same); a headroom lets a pass whose peak holds blocks of other sizes than
// those it requests next (a oneDNN convolution: its reordered input, its blocked output
// and the plain output) keep all of them, at most headroom x H above that.  Smaller
// allocations are not kept and go to torch's allocator as before.  The numbers computed
// are the same: only which memory a tensor lives in changes.
#include <torch/library.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

struct State {
  std::mutex mu;
  int64_t depth = 0;                                  // open scopes
  size_t min_bytes = 1 << 20;
  double headroom = 0.0;                              // kept may reach (1 + headroom) x high
  c10::Allocator* base = nullptr;                     // torch's allocator, restored on close
  std::unordered_map<void*, size_t> sizes;            // our blocks, in use and kept
  std::vector<std::pair<size_t, void*>> kept;         // freed blocks, oldest first
  size_t ours_bytes = 0;                              // sum of `sizes`
  size_t kept_bytes = 0;
  size_t high = 0;                                    // most bytes in use in this scope
  int64_t hits = 0, misses = 0;
};

State& state() {
  static State* s = new State();   // never destroyed: tensors may outlive static teardown
  return *s;
}

// with the lock held: unmap one block of ours
void unmap_locked(State& s, void* p, size_t n) {
  s.sizes.erase(p);
  s.ours_bytes -= n;
  c10::free_cpu(p);
}

// with the lock held: unmap the oldest kept blocks until at most `limit` bytes are kept
void evict_locked(State& s, size_t limit) {
  size_t drop = 0;
  while (drop < s.kept.size() && s.kept_bytes > limit) {
    s.kept_bytes -= s.kept[drop].first;
    unmap_locked(s, s.kept[drop].second, s.kept[drop].first);
    ++drop;
  }
  s.kept.erase(s.kept.begin(), s.kept.begin() + static_cast<std::ptrdiff_t>(drop));
}

void flush_locked(State& s) { evict_locked(s, 0); }

// whether the block at p holds n bytes (glibc's count of its usable size)
bool holds(void* p, size_t n) {
#if defined(__GLIBC__)
  return malloc_usable_size(p) >= n;
#else
  (void)p; (void)n;
  return true;
#endif
}

void reuse_delete(void* p) {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.sizes.find(p);
  if (it == s.sizes.end()) {          // not ours: torch's allocator made it (alloc_cpu)
    c10::free_cpu(p);
    return;
  }
  // A block of ours freed by another deleter (a raw block given back through torch's own
  // allocator after the scope closed) leaves its entry behind, and its address may come
  // back for a block we did not make: keep a block only if it holds the size we note.
  if (!holds(p, it->second)) {
    s.ours_bytes -= it->second;
    s.sizes.erase(it);
    c10::free_cpu(p);
    return;
  }
  if (s.depth > 0) {
    s.kept.emplace_back(it->second, p);
    s.kept_bytes += it->second;
  } else {
    unmap_locked(s, p, it->second);
  }
}

struct BlockReuseAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    State& s = state();
    c10::Allocator* base;
    {
      std::lock_guard<std::mutex> g(s.mu);
      base = s.base;
      if (n >= s.min_bytes && s.depth > 0) {
        void* p = nullptr;
        for (size_t i = s.kept.size(); i-- > 0;) {      // the latest freed of this size
          if (s.kept[i].first == n) {
            p = s.kept[i].second;
            s.kept.erase(s.kept.begin() + static_cast<std::ptrdiff_t>(i));
            s.kept_bytes -= n;
            ++s.hits;
            break;
          }
        }
        if (p == nullptr) {
          // in use after this request, and the high-water mark it may set; the oldest
          // kept blocks go until in use + kept fit under the mark and its headroom
          size_t in_use = s.ours_bytes - s.kept_bytes + n;
          s.high = std::max(s.high, in_use);
          evict_locked(s, s.high + static_cast<size_t>(s.headroom * s.high) - in_use);
          p = c10::alloc_cpu(n);
          auto stale = s.sizes.find(p);   // left by a free behind our back (see below)
          if (stale != s.sizes.end()) s.ours_bytes -= stale->second;
          s.sizes[p] = n;
          s.ours_bytes += n;
          ++s.misses;
        }
        return {p, p, &reuse_delete, c10::Device(c10::DeviceType::CPU)};
      }
    }
    return base->allocate(n);
  }

  // oneDNN's scratch memory comes through raw_allocate / raw_deallocate: a block torch's
  // allocator made (alloc_cpu) is not in `sizes` and is freed as torch frees it
  c10::DeleterFnPtr raw_deleter() const override { return &reuse_delete; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

BlockReuseAllocator& allocator() {
  static BlockReuseAllocator* a = new BlockReuseAllocator();
  return *a;
}

// Open a scope (nestable): blocks of at least min_bytes freed inside are kept for reuse,
// within (1 + headroom) x the high-water mark of blocks in use (a nested scope keeps the
// outer one's settings).
void block_reuse_begin(int64_t min_bytes, double headroom) {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  if (s.depth++ == 0) {
    s.min_bytes = static_cast<size_t>(std::max<int64_t>(min_bytes, 1));
    s.headroom = std::max(headroom, 0.0);
    s.high = s.ours_bytes - s.kept_bytes;
    s.base = c10::GetCPUAllocator();
    if (s.base == &allocator()) s.base = c10::GetDefaultCPUAllocator();
    c10::SetCPUAllocator(&allocator(), /*priority=*/0);
  }
}

// Close a scope; the last one returns every kept block and restores torch's allocator
// (blocks still in use are unmapped when their tensors are freed).
void block_reuse_end() {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  if (s.depth == 0) return;
  if (--s.depth == 0) {
    flush_locked(s);
    c10::SetCPUAllocator(s.base, /*priority=*/0);
  }
}

// Return the kept blocks now (between passes); the scope stays open.
void block_reuse_flush() {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  flush_locked(s);
}

// [open scopes, hits, misses, kept bytes, bytes in use, high-water mark of this scope]
std::vector<int64_t> block_reuse_stats() {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  return {s.depth, s.hits, s.misses, static_cast<int64_t>(s.kept_bytes),
          static_cast<int64_t>(s.ours_bytes - s.kept_bytes), static_cast<int64_t>(s.high)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snn_det, m) {
  m.def("block_reuse_begin(int min_bytes, float headroom=0.) -> ()", &block_reuse_begin);
  m.def("block_reuse_end() -> ()", &block_reuse_end);
  m.def("block_reuse_flush() -> ()", &block_reuse_flush);
  m.def("block_reuse_stats() -> int[]", &block_reuse_stats);
}
