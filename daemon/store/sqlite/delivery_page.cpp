#include "daemon/store/sqlite/delivery_page.hpp"

namespace notifyd::sqlite {

std::vector<std::uint8_t> encode_page_targets(std::span<const std::int64_t> binding_seqs) {
  std::vector<std::uint8_t> out;
  out.reserve(binding_seqs.size() * 2);
  std::int64_t previous = 0;
  for (auto seq : binding_seqs) {
    auto delta = static_cast<std::uint64_t>(seq - previous);  // ascending seqs: never negative
    previous = seq;
    do {
      auto byte = static_cast<std::uint8_t>(delta & 0x7f);
      delta >>= 7;
      out.push_back(delta ? static_cast<std::uint8_t>(byte | 0x80) : byte);
    } while (delta);
  }
  return out;
}

std::vector<std::int64_t> decode_page_targets(std::span<const std::uint8_t> blob) {
  std::vector<std::int64_t> out;
  std::uint64_t value = 0;
  unsigned shift = 0;
  std::int64_t previous = 0;
  for (auto byte : blob) {
    if (shift >= 64) break;  // malformed: stop rather than shift past the width
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if (byte & 0x80) {
      shift += 7;
      continue;
    }
    previous += static_cast<std::int64_t>(value);
    out.push_back(previous);
    value = 0;
    shift = 0;
  }
  return out;
}

bool set_page_bit(std::vector<std::uint8_t>& bits, std::size_t i) {
  if (i / 8 >= bits.size()) bits.resize(i / 8 + 1, 0);
  auto mask = static_cast<std::uint8_t>(1u << (i % 8));
  if (bits[i / 8] & mask) return false;
  bits[i / 8] = static_cast<std::uint8_t>(bits[i / 8] | mask);
  return true;
}

}  // namespace notifyd::sqlite
