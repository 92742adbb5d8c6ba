#pragma once
// The two blobs of a `delivery_pages` row: its targets (binding seqs, ascending, as unsigned LEB128 deltas:
// about two bytes a binding for a dense audience) and its settled bits (one per target, LSB first).
// Decoding never reads past the blob; a malformed blob decodes to fewer targets and is logged by the store.
#include <cstdint>
#include <span>
#include <vector>

namespace notifyd::sqlite {

std::vector<std::uint8_t> encode_page_targets(std::span<const std::int64_t> binding_seqs);
std::vector<std::int64_t> decode_page_targets(std::span<const std::uint8_t> blob);

inline bool page_bit(std::span<const std::uint8_t> bits, std::size_t i) {
  return i / 8 < bits.size() && (bits[i / 8] >> (i % 8) & 1) != 0;
}
// Sets bit i (growing `bits` when needed); returns whether it was clear.
bool set_page_bit(std::vector<std::uint8_t>& bits, std::size_t i);

}  // namespace notifyd::sqlite
