#include "daemon/api/form.hpp"

#include <algorithm>
#include <boost/url/parse_query.hpp>

namespace notifyd::api {

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Result<FormParams> FormParams::parse(std::string_view encoded) {
  FormParams out;
  if (encoded.empty()) return out;
  auto parsed = boost::urls::parse_query(encoded);
  if (!parsed) return invalid_parameter("The request body or query string is not valid form encoding");
  boost::urls::encoding_opts opts(/*space_as_plus=*/true);
  for (auto param : *parsed) {
    std::string key = param.key.decode(opts);
    std::string value = param.has_value ? param.value.decode(opts) : std::string();
    if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
      return invalid_parameter("The request body or query string is not valid UTF-8");
    }
    if (key.empty() && value.empty()) continue;  // "a=1&&b=2"
    out.items_.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

bool FormParams::has(std::string_view key) const {
  return std::any_of(items_.begin(), items_.end(), [&](const auto& kv) { return kv.first == key; });
}

std::optional<std::string> FormParams::get(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> FormParams::get_all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) {
    if (k == key) out.push_back(v);
  }
  return out;
}

Status FormParams::check_known(std::span<const std::string_view> allowed) const {
  for (const auto& [k, v] : items_) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return invalid_parameter("Unknown parameter: " + k);
    }
  }
  return {};
}

}  // namespace notifyd::api
