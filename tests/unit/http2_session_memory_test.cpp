// SessionMemory (nghttp2's allocator per Session): blocks are reused per size class, contents survive a
// realloc, large blocks bypass the lists, and what it keeps is bounded.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "transports/http2/session_memory.hpp"

namespace notifyd::http2 {
namespace {

TEST(Http2SessionMemory, AFreedBlockServesTheNextRequestOfItsClass) {
  SessionMemory m;
  void* a = m.allocate(100);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 16, 0u);
  std::memset(a, 0xab, 100);
  m.release(a);
  EXPECT_EQ(m.cached_bytes(), 128u);
  EXPECT_EQ(m.allocate(120), a);  // same class (≤ 128 bytes): the same block, no malloc
  EXPECT_EQ(m.cached_bytes(), 0u);
  void* other = m.allocate(200);  // another class: not that block
  EXPECT_NE(other, a);
  m.release(a);
  m.release(other);
  m.release(nullptr);
}

TEST(Http2SessionMemory, ReallocKeepsTheContentAcrossClassesAndForLargeBlocks) {
  SessionMemory m;
  auto* p = static_cast<unsigned char*>(m.allocate(10));
  for (int i = 0; i < 10; ++i) p[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(m.reallocate(p, 60), p);                             // still fits its 64-byte class
  auto* q = static_cast<unsigned char*>(m.reallocate(p, 3000));  // beyond every class
  ASSERT_NE(q, nullptr);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(q[i], i);
  q[2999] = 7;
  auto* r = static_cast<unsigned char*>(m.reallocate(q, 10000));
  ASSERT_NE(r, nullptr);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r[i], i);
  EXPECT_EQ(r[2999], 7);
  EXPECT_EQ(m.cached_bytes(), 64u);  // the small block it grew out of went back to its list
  m.release(r);
  EXPECT_EQ(m.cached_bytes(), 64u);  // large blocks are not kept
}

TEST(Http2SessionMemory, WhatItKeepsIsBounded) {
  SessionMemory m;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < 2 * SessionMemory::kMaxCachedBytes / 1024; ++i)
    blocks.push_back(m.allocate(1000));
  for (void* b : blocks) m.release(b);
  EXPECT_LE(m.cached_bytes(), SessionMemory::kMaxCachedBytes);
  EXPECT_GT(m.cached_bytes(), SessionMemory::kMaxCachedBytes / 2);
}

TEST(Http2SessionMemory, CallocZeroesAndAnNghttp2SessionRunsOnIt) {
  SessionMemory m;
  nghttp2_mem* mem = m.mem();
  auto* z = static_cast<unsigned char*>(mem->calloc(30, 4, mem->mem_user_data));
  for (int i = 0; i < 120; ++i) EXPECT_EQ(z[i], 0);
  mem->free(z, mem->mem_user_data);
  EXPECT_EQ(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data), nullptr);  // overflow refused

  nghttp2_session_callbacks* cbs = nullptr;
  ASSERT_EQ(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session* session = nullptr;
  ASSERT_EQ(nghttp2_session_client_new3(&session, cbs, nullptr, nullptr, mem), 0);
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_nv nv[] = {
      {(uint8_t*)":method", (uint8_t*)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":scheme", (uint8_t*)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":authority", (uint8_t*)"example.com", 10, 11, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":path", (uint8_t*)"/", 5, 1, NGHTTP2_NV_FLAG_NONE},
  };
  for (int i = 0; i < 50; ++i)
    EXPECT_GT(nghttp2_submit_request(session, nullptr, nv, 4, nullptr, nullptr), 0);
  std::size_t bytes = 0;
  for (;;) {
    const std::uint8_t* data = nullptr;
    auto n = nghttp2_session_mem_send(session, &data);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    bytes += static_cast<std::size_t>(n);
  }
  EXPECT_GT(bytes, 50u);
  nghttp2_session_del(session);
  EXPECT_GT(m.cached_bytes(), 0u);  // the session's blocks came back to the lists
}

}  // namespace
}  // namespace notifyd::http2
