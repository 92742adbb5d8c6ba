#include "transports/http2/session_memory.hpp"

#include <nghttp2/nghttp2.h>

#include <cstdlib>
#include <cstring>

namespace notifyd::http2 {
namespace {

// Every block starts with a header naming its class (or kLarge), keeping the payload 16-byte aligned.
constexpr std::size_t kHeader = 16;
constexpr std::size_t kLarge = ~std::size_t{0};

std::size_t& class_of(void* payload) {
  return *reinterpret_cast<std::size_t*>(static_cast<unsigned char*>(payload) - kHeader);
}

}  // namespace

SessionMemory::SessionMemory() {
  nghttp2_mem* m = &mem_;
  m->mem_user_data = this;
  m->malloc = [](std::size_t size, void* self) { return static_cast<SessionMemory*>(self)->allocate(size); };
  m->free = [](void* p, void* self) { static_cast<SessionMemory*>(self)->release(p); };
  m->calloc = [](std::size_t n, std::size_t size, void* self) -> void* {
    if (size != 0 && n > SIZE_MAX / size) return nullptr;
    void* p = static_cast<SessionMemory*>(self)->allocate(n * size);
    if (p != nullptr) std::memset(p, 0, n * size);
    return p;
  };
  m->realloc = [](void* p, std::size_t size, void* self) {
    return static_cast<SessionMemory*>(self)->reallocate(p, size);
  };
}

SessionMemory::~SessionMemory() {
  for (auto& head : free_) {
    while (head != nullptr) {
      FreeBlock* next = head->next;
      std::free(reinterpret_cast<unsigned char*>(head) - kHeader);
      head = next;
    }
  }
}

void* SessionMemory::allocate(std::size_t size) {
  std::size_t cls = 0;
  while (cls < kClassSizes.size() && size > kClassSizes[cls]) ++cls;
  if (cls == kClassSizes.size()) {
    auto* raw = static_cast<unsigned char*>(std::malloc(kHeader + size));
    if (raw == nullptr) return nullptr;
    *reinterpret_cast<std::size_t*>(raw) = kLarge;
    return raw + kHeader;
  }
  if (FreeBlock* b = free_[cls]; b != nullptr) {
    free_[cls] = b->next;
    cached_bytes_ -= kClassSizes[cls];
    return b;
  }
  auto* raw = static_cast<unsigned char*>(std::malloc(kHeader + kClassSizes[cls]));
  if (raw == nullptr) return nullptr;
  *reinterpret_cast<std::size_t*>(raw) = cls;
  return raw + kHeader;
}

void SessionMemory::release(void* p) {
  if (p == nullptr) return;
  const std::size_t cls = class_of(p);
  if (cls == kLarge || cached_bytes_ + kClassSizes[cls] > kMaxCachedBytes) {
    std::free(static_cast<unsigned char*>(p) - kHeader);
    return;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = free_[cls];
  free_[cls] = b;
  cached_bytes_ += kClassSizes[cls];
}

void* SessionMemory::reallocate(void* p, std::size_t size) {
  if (p == nullptr) return allocate(size);
  const std::size_t cls = class_of(p);
  if (cls == kLarge) {
    auto* raw =
        static_cast<unsigned char*>(std::realloc(static_cast<unsigned char*>(p) - kHeader, kHeader + size));
    return raw == nullptr ? nullptr : raw + kHeader;
  }
  if (size <= kClassSizes[cls]) return p;
  void* q = allocate(size);
  if (q == nullptr) return nullptr;  // p stays valid, as with realloc
  std::memcpy(q, p, kClassSizes[cls]);
  release(p);
  return q;
}

}  // namespace notifyd::http2
