#pragma once
// SessionMemory: the allocator nghttp2 uses for one Session (nghttp2_session_client_new3). The blocks nghttp2
// allocates and frees for every request (stream, outbound item, header copies, frame buffers) go back to
// per-size-class free lists and serve the next request instead of a malloc/free pair each. Single-threaded,
// like its Session; it must outlive the nghttp2 session. Blocks above the largest class, and frees beyond
// kMaxCachedBytes, go straight to malloc/free, so what it keeps is bounded.
#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>

namespace notifyd::http2 {

class SessionMemory {
 public:
  static constexpr std::size_t kMaxCachedBytes = 128 * 1024;

  SessionMemory();
  ~SessionMemory();
  SessionMemory(const SessionMemory&) = delete;
  SessionMemory& operator=(const SessionMemory&) = delete;

  // For nghttp2_session_client_new3; points into this object.
  nghttp2_mem* mem() { return &mem_; }

  void* allocate(std::size_t size);
  void release(void* p);
  void* reallocate(void* p, std::size_t size);
  std::size_t cached_bytes() const { return cached_bytes_; }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static constexpr std::array<std::size_t, 5> kClassSizes = {64, 128, 256, 512, 1024};

  std::array<FreeBlock*, kClassSizes.size()> free_{};
  std::size_t cached_bytes_ = 0;
  nghttp2_mem mem_{};
};

}  // namespace notifyd::http2
