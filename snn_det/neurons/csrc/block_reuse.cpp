// Reuse of freed large CPU blocks, without raising the peak RSS.
//
// Outside a simulation's heap reuse (calibration, memory first), every large tensor of
// a pass is a fresh mapping that the kernel zeroes page by page on first touch, and is
// unmapped when freed: the next time chunk's tensors of the very same sizes are zeroed
// again.  While a block-reuse scope is open, this allocator stands in for torch's CPU
// allocator: a freed block of at least `min_bytes` is kept (not unmapped) and handed to
// the next request of exactly its size.  A request that no kept block holds exactly gets
// a fresh mapping, into which the pages of kept blocks (oldest first) are moved by
// `mremap` (glibc's own mappings, Linux 5.7 or later): pages move with their contents,
// so the kernel neither zeroes nor faults them in again, and a kept block given away in
// full is unmapped.  What is kept is bounded by the high-water mark of the blocks in use since
// the scope opened: after a request that no kept block fits, the oldest kept blocks are
// unmapped until blocks in use + kept stay within that mark.  So the memory of these
// blocks is never above what the same sequence of requests reaches without reuse (whose
// blocks in use are the same); smaller allocations are not kept and go to torch's
// allocator as before.  The numbers computed are the same: only which memory a tensor
// lives in changes (a new tensor holds what its memory held before, as torch.empty may).
#include <torch/library.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#if defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

// A block of ours: its size, and (where pages of other blocks were moved into it) the
// addresses inside it where one mapping ends and the next begins; `mremap` moves a range
// of one mapping only.
struct Block {
  size_t n = 0;
  std::vector<uintptr_t> cuts;
};

// A kept block; `from` is its first page not yet given to another block (0: none given).
struct Kept {
  size_t n;
  void* p;
  uintptr_t from = 0;
  bool donor = true;                                  // false after a failed move
};

struct State {
  std::mutex mu;
  int64_t depth = 0;                                  // open scopes
  size_t min_bytes = 1 << 20;
  c10::Allocator* base = nullptr;                     // torch's allocator, restored on close
  std::unordered_map<void*, Block> sizes;             // our blocks, in use and kept
  std::vector<Kept> kept;                             // freed blocks, oldest first
  size_t ours_bytes = 0;                              // what our blocks hold (less pages given)
  size_t kept_bytes = 0;
  size_t high = 0;                                    // most bytes in use in this scope
  int64_t hits = 0, misses = 0;
  int64_t missed_bytes = 0;                           // bytes of the requests no kept block held
  int64_t moved_bytes = 0;                            // pages moved into fresh blocks
};

State& state() {
  static State* s = new State();   // never destroyed: tensors may outlive static teardown
  return *s;
}

uintptr_t page_size() {
  static uintptr_t ps = [] {
#if defined(__GLIBC__)
    long v = sysconf(_SC_PAGESIZE);
    return static_cast<uintptr_t>(v > 0 ? v : 4096);
#else
    return static_cast<uintptr_t>(4096);
#endif
  }();
  return ps;
}
uintptr_t page_up(uintptr_t a) { return (a + page_size() - 1) & ~(page_size() - 1); }
uintptr_t page_down(uintptr_t a) { return a & ~(page_size() - 1); }

// what a kept block still holds: its size less the pages it gave away
size_t held(const Kept& k) {
  return k.from == 0 ? k.n : k.n - (k.from - page_up(reinterpret_cast<uintptr_t>(k.p)));
}

// with the lock held: unmap one block of ours, which holds `held` bytes
void unmap_locked(State& s, void* p, size_t held) {
  s.sizes.erase(p);
  s.ours_bytes -= held;
  c10::free_cpu(p);
}

// with the lock held: unmap the oldest kept blocks until at most `limit` bytes are kept
void evict_locked(State& s, size_t limit) {
  size_t drop = 0;
  while (drop < s.kept.size() && s.kept_bytes > limit) {
    size_t h = held(s.kept[drop]);
    s.kept_bytes -= h;
    unmap_locked(s, s.kept[drop].p, h);
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
  size_t n = it->second.n;
  if (!holds(p, n)) {
    s.ours_bytes -= n;
    s.sizes.erase(it);
    c10::free_cpu(p);
    return;
  }
  if (s.depth > 0) {
    s.kept.push_back(Kept{n, p});
    s.kept_bytes += n;
  } else {
    unmap_locked(s, p, n);
  }
}

// whether glibc made the block at p (of n bytes) as a mapping of its own: its chunk
// header has the IS_MMAPPED bit, the mapping it describes starts and ends on pages and
// holds the block, and malloc_usable_size agrees.  Such a block's pages belong to it
// alone, and free() unmaps its whole range.  A malloc put in glibc's place (jemalloc,
// tcmalloc through LD_PRELOAD) fails these checks, and nothing is moved.
bool own_mapping(void* p, size_t n) {
#if defined(__GLIBC__)
  const size_t* h = reinterpret_cast<const size_t*>(p);
  const size_t size = h[-1] & ~static_cast<size_t>(7), offset = h[-2];
  const uintptr_t chunk = reinterpret_cast<uintptr_t>(p) - 2 * sizeof(size_t);
  const uintptr_t ps = page_size();
  return (h[-1] & 0x2) != 0 && ((chunk - offset) & (ps - 1)) == 0 &&
         ((offset + size) & (ps - 1)) == 0 && size >= n + 2 * sizeof(size_t) &&
         malloc_usable_size(p) == size - 2 * sizeof(size_t);
#else
  (void)p; (void)n;
  return false;
#endif
}

#if defined(__GLIBC__) && defined(MREMAP_FIXED) && defined(MREMAP_DONTUNMAP)
#define SNN_DET_MOVE_PAGES 1
#endif

// with the lock held: move the pages of kept blocks (oldest first) into the fresh block
// [p, p + n) of ours, and unmap the kept blocks given away in full.  The whole pages
// inside a block are the ones moved (glibc's chunk header stays).  MREMAP_DONTUNMAP
// leaves the range a page came from mapped (empty: it holds no memory), so no other
// mapping can take its place before the kept block is unmapped; where the kernel lacks
// it (before Linux 5.7), nothing moves again.  Returns the bytes moved.
size_t move_kept_pages_locked(State& s, void* p, size_t n) {
#if defined(SNN_DET_MOVE_PAGES)
  static bool can_move = true;
  if (!can_move || s.kept.empty()) return 0;
  uintptr_t at = page_up(reinterpret_cast<uintptr_t>(p));
  const uintptr_t end = page_down(reinterpret_cast<uintptr_t>(p) + n);
  Block& dst = s.sizes[p];
  size_t moved = 0;
  bool any_full = false;
  for (Kept& k : s.kept) {
    if (at >= end) break;
    if (!k.donor || !own_mapping(k.p, k.n)) continue;
    uintptr_t from = k.from ? k.from : page_up(reinterpret_cast<uintptr_t>(k.p));
    const uintptr_t stop = page_down(reinterpret_cast<uintptr_t>(k.p) + k.n);
    const std::vector<uintptr_t>& cuts = s.sizes[k.p].cuts;
    while (from < stop && at < end) {
      uintptr_t piece = std::min(stop, from + (end - at));
      for (uintptr_t c : cuts)                      // one mapping at a time
        if (c > from && c < piece) piece = c;
      size_t len = piece - from;
      void* r = mremap(reinterpret_cast<void*>(from), len, len,
                       MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                       reinterpret_cast<void*>(at));
      if (r == MAP_FAILED) {
        if (errno == EINVAL) can_move = false;      // a kernel without MREMAP_DONTUNMAP
        k.donor = false;
        break;
      }
      dst.cuts.push_back(at);
      dst.cuts.push_back(at + len);
      from += len;
      at += len;
      moved += len;
      s.kept_bytes -= len;
      s.ours_bytes -= len;
    }
    k.from = from;
    any_full = any_full || from >= stop;
    if (!can_move) break;
  }
  if (any_full) {      // kept blocks given away in full: unmap what is left of them
    std::vector<Kept> left;
    for (Kept& k : s.kept) {
      if (k.from != 0 && k.from >= page_down(reinterpret_cast<uintptr_t>(k.p) + k.n)) {
        size_t h = held(k);
        s.kept_bytes -= h;
        unmap_locked(s, k.p, h);
      } else {
        left.push_back(k);
      }
    }
    s.kept.swap(left);
  }
  s.moved_bytes += static_cast<int64_t>(moved);
  return moved;
#else
  (void)s; (void)p; (void)n;
  return 0;
#endif
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
          if (s.kept[i].n == n && s.kept[i].from == 0) {
            p = s.kept[i].p;
            s.kept.erase(s.kept.begin() + static_cast<std::ptrdiff_t>(i));
            s.kept_bytes -= n;
            ++s.hits;
            break;
          }
        }
        if (p == nullptr) {
          // in use after this request, and the high-water mark it may set
          size_t in_use = s.ours_bytes - s.kept_bytes + n;
          s.high = std::max(s.high, in_use);
          p = c10::alloc_cpu(n);
          auto stale = s.sizes.find(p);   // left by a free behind our back (see below)
          if (stale != s.sizes.end()) s.ours_bytes -= stale->second.n;
          s.sizes[p] = Block{n, {}};
          s.ours_bytes += n;
          ++s.misses;
          s.missed_bytes += static_cast<int64_t>(n);
          // kept pages move into it, and the oldest kept blocks go until in use + kept
          // fit under the mark
          if (own_mapping(p, n)) move_kept_pages_locked(s, p, n);
          evict_locked(s, s.high - in_use);
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

// Open a scope (nestable): blocks of at least min_bytes freed inside are kept for reuse.
void block_reuse_begin(int64_t min_bytes) {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  if (s.depth++ == 0) {
    s.min_bytes = static_cast<size_t>(std::max<int64_t>(min_bytes, 1));
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

// [open scopes, hits, misses, kept bytes, bytes in use, high-water mark of this scope,
//  bytes of the requests no kept block held, bytes of kept pages moved into them]
std::vector<int64_t> block_reuse_stats() {
  State& s = state();
  std::lock_guard<std::mutex> g(s.mu);
  return {s.depth, s.hits, s.misses, static_cast<int64_t>(s.kept_bytes),
          static_cast<int64_t>(s.ours_bytes - s.kept_bytes), static_cast<int64_t>(s.high),
          s.missed_bytes, s.moved_bytes};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snn_det, m) {
  m.def("block_reuse_begin(int min_bytes) -> ()", &block_reuse_begin);
  m.def("block_reuse_end() -> ()", &block_reuse_end);
  m.def("block_reuse_flush() -> ()", &block_reuse_flush);
  m.def("block_reuse_stats() -> int[]", &block_reuse_stats);
}
