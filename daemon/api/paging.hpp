#pragma once
// Paging for list endpoints: PageSize/Page/PageToken parsing and the `meta` object with absolute URLs.
// Keyset: a PageToken names the seq to continue after (or before), never an offset. Pure; any thread.
#include <boost/json/object.hpp>
#include <string>
#include <utility>
#include <vector>

#include "daemon/api/form.hpp"
#include "daemon/store/store.hpp"

namespace notifyd::api {

struct ListQuery {
  std::size_t page_size = 50;
  std::size_t page_index = 0;
  PageRequest page;
};

// PageSize above `max_page_size` is clamped (the clients send PageSize=limit); below 1 is 400/20001.
Result<ListQuery> parse_list_query(const FormParams& query, std::size_t max_page_size);

std::string encode_page_token(PageCursor cursor);
std::optional<PageCursor> decode_page_token(std::string_view token);

// Percent-encodes a query parameter value or key.
std::string encode_query_component(std::string_view s);

struct ListLinks {
  std::string base_url;                                      // public_url + path, no query
  std::vector<std::pair<std::string, std::string>> filters;  // echoed in every URL, in order
  std::string key;                                           // "bindings", "services", ...
};

// `first_seq`/`last_seq` are the seqs of the page's first and last items (when it has any).
boost::json::object page_meta(const ListLinks& links, const ListQuery& q, bool has_next, bool has_previous,
                              std::optional<std::int64_t> first_seq, std::optional<std::int64_t> last_seq);

// Wraps a page of rendered items into `{key: [...], meta: {...}}`. `more` is the store's flag.
template <class T, class Render>
boost::json::object list_body(const ListLinks& links, const ListQuery& q, const Page<T>& page,
                              Render render) {
  boost::json::array items;
  items.reserve(page.items.size());
  for (const auto& item : page.items) items.push_back(render(item));
  bool backward = q.page.cursor && q.page.cursor->backward;
  bool has_next = backward ? true : page.more;
  bool has_previous = backward ? page.more : q.page_index > 0 && q.page.cursor.has_value();
  std::optional<std::int64_t> first, last;
  if (!page.items.empty()) {
    first = page.items.front().seq;
    last = page.items.back().seq;
  }
  boost::json::object body;
  body[links.key] = std::move(items);
  body["meta"] =
      page_meta(links, q, has_next && last.has_value(), has_previous && first.has_value(), first, last);
  return body;
}

}  // namespace notifyd::api
