#include "daemon/api/paging.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <charconv>
#include <limits>

namespace notifyd::api {
namespace {

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Result<ListQuery> parse_list_query(const FormParams& query, std::size_t max_page_size) {
  ListQuery q;
  if (auto size = query.get("PageSize")) {
    auto v = parse_int(*size);
    bool huge = !v && !size->empty() && size->size() > 18 &&
                std::all_of(size->begin(), size->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (huge) v = std::numeric_limits<std::int64_t>::max();  // beyond int64 is still "above the maximum"
    if (!v || *v < 1) return invalid_parameter("PageSize must be a positive integer");
    q.page_size =
        static_cast<std::size_t>(std::min<std::int64_t>(*v, static_cast<std::int64_t>(max_page_size)));
  }
  if (auto page = query.get("Page")) {
    auto v = parse_int(*page);
    if (!v || *v < 0) return invalid_parameter("Page must be a non-negative integer");
    q.page_index = static_cast<std::size_t>(*v);
  }
  if (auto token = query.get("PageToken")) {
    auto cursor = decode_page_token(*token);
    if (!cursor) return invalid_parameter("PageToken is not valid");
    q.page.cursor = *cursor;
  }
  q.page.size = q.page_size;
  return q;
}

// "PT" (forward) or "PB" (backward) followed by the seq in hex: opaque to clients, who follow URLs.
std::string encode_page_token(PageCursor cursor) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, cursor.seq, 16);
  return std::string(cursor.backward ? "PB" : "PT") + std::string(buf, p);
}

std::optional<PageCursor> decode_page_token(std::string_view token) {
  if (token.size() < 3 || token.size() > 18 || token[0] != 'P' || (token[1] != 'T' && token[1] != 'B')) {
    return std::nullopt;
  }
  std::int64_t seq = 0;
  auto digits = token.substr(2);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq, 16);
  if (ec != std::errc() || p != digits.data() + digits.size() || seq < 0) return std::nullopt;
  return PageCursor{seq, token[1] == 'B'};
}

std::string encode_query_component(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

boost::json::object page_meta(const ListLinks& links, const ListQuery& q, bool has_next, bool has_previous,
                              std::optional<std::int64_t> first_seq, std::optional<std::int64_t> last_seq) {
  auto url_for = [&](std::size_t page_index, std::optional<PageCursor> cursor) {
    std::string url = links.base_url + "?";
    for (const auto& [k, v] : links.filters)
      url += encode_query_component(k) + "=" + encode_query_component(v) + "&";
    url += "PageSize=" + std::to_string(q.page_size) + "&Page=" + std::to_string(page_index);
    if (cursor) url += "&PageToken=" + encode_page_token(*cursor);
    return url;
  };
  boost::json::object meta;
  meta["page"] = q.page_index;
  meta["page_size"] = q.page_size;
  meta["key"] = links.key;
  meta["first_page_url"] = url_for(0, std::nullopt);
  meta["url"] = url_for(q.page_index, q.page.cursor);
  if (has_previous && q.page_index > 0) {
    std::optional<PageCursor> prev;
    if (q.page_index > 1) prev = PageCursor{*first_seq, true};
    meta["previous_page_url"] = url_for(q.page_index - 1, prev);
  } else {
    meta["previous_page_url"] = nullptr;
  }
  if (has_next) {
    meta["next_page_url"] = url_for(q.page_index + 1, PageCursor{*last_seq, false});
  } else {
    meta["next_page_url"] = nullptr;
  }
  return meta;
}

}  // namespace notifyd::api
