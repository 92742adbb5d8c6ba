// Unit tests for daemon/api/paging: PageSize/Page/PageToken parsing and the list `meta` object.
#include "daemon/api/paging.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace notifyd::api {
namespace {

constexpr std::size_t kNotifyMax = 1000;
constexpr std::size_t kConversationsMax = 100;
const std::string kBase = "http://127.0.0.1:8080/v1/Services/IS0123456789abcdef0123456789abcdef/Bindings";

Result<ListQuery> parse(std::string_view query, std::size_t max = kNotifyMax) {
  auto form = FormParams::parse(query);
  if (!form) return form.error();
  return parse_list_query(*form, max);
}

void expect_400(std::string_view query) {
  auto q = parse(query);
  ASSERT_FALSE(q.has_value()) << "accepted: " << query;
  EXPECT_EQ(q.error().status, 400) << query;
  EXPECT_EQ(q.error().code, 20001) << query;
}

std::string str(const boost::json::object& o, std::string_view key) {
  const auto& v = o.at(key);
  EXPECT_TRUE(v.is_string()) << key << " is " << boost::json::serialize(v);
  return v.is_string() ? std::string(v.as_string()) : std::string();
}

std::int64_t num(const boost::json::object& o, std::string_view key) {
  return o.at(key).to_number<std::int64_t>();
}

// The query string of an absolute URL, as a client following it would send it.
std::string query_of(const std::string& url) {
  auto q = url.find('?');
  return q == std::string::npos ? std::string() : url.substr(q + 1);
}

struct Row {
  std::int64_t seq;
};

Page<Row> page_of(std::initializer_list<std::int64_t> seqs, bool more) {
  Page<Row> p;
  for (auto s : seqs) p.items.push_back(Row{s});
  p.more = more;
  return p;
}

boost::json::object render(const Row& r) { return {{"seq", r.seq}}; }

TEST(ParseListQuery, Defaults) {
  auto q = parse("");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->page_size, 50u);
  EXPECT_EQ(q->page.size, 50u);
  EXPECT_EQ(q->page_index, 0u);
  EXPECT_FALSE(q->page.cursor.has_value());
}

TEST(ParseListQuery, PageSizeWithinLimitKept) {
  auto q = parse("PageSize=7");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->page_size, 7u);
  EXPECT_EQ(q->page.size, 7u);
}

TEST(ParseListQuery, PageSizeClampedToMax) {
  auto q = parse("PageSize=5000");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->page_size, kNotifyMax);
  EXPECT_EQ(q->page.size, kNotifyMax);

  auto c = parse("PageSize=1000", kConversationsMax);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->page_size, kConversationsMax);
  EXPECT_EQ(c->page.size, kConversationsMax);

  auto exact = parse("PageSize=100", kConversationsMax);
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ(exact->page_size, 100u);
}

// DESIGN: "a larger PageSize than the maximum is clamped, not refused". A value past int64 is still
// larger than the maximum, not malformed.
TEST(ParseListQuery, PageSizeBeyondInt64IsClampedNotRefused) {
  auto q = parse("PageSize=99999999999999999999");
  ASSERT_TRUE(q.has_value()) << q.error().message;
  EXPECT_EQ(q->page_size, kNotifyMax);
}

TEST(ParseListQuery, PageSizeBelowOneOrNotANumberIs400) {
  expect_400("PageSize=0");
  expect_400("PageSize=-1");
  expect_400("PageSize=abc");
  expect_400("PageSize=");
  expect_400("PageSize=1.5");
  expect_400("PageSize=10abc");
}

TEST(ParseListQuery, PageNegativeOrNotANumberIs400) {
  expect_400("Page=-1");
  expect_400("Page=x");
  auto q = parse("Page=3&PageSize=20");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->page_index, 3u);
  EXPECT_EQ(q->page_size, 20u);
}

TEST(ParseListQuery, UnknownParametersIgnored) {
  auto q = parse("Identity=alice&Foo=bar&PageSize=2");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->page_size, 2u);
}

TEST(PageToken, RoundTrip) {
  for (std::int64_t seq : {std::int64_t{0}, std::int64_t{1}, std::int64_t{255}, std::int64_t{123456789},
                           std::numeric_limits<std::int64_t>::max()}) {
    for (bool backward : {false, true}) {
      std::string token = encode_page_token(PageCursor{seq, backward});
      auto back = decode_page_token(token);
      ASSERT_TRUE(back.has_value()) << token;
      EXPECT_EQ(back->seq, seq) << token;
      EXPECT_EQ(back->backward, backward) << token;
    }
  }
  EXPECT_NE(encode_page_token({42, false}), encode_page_token({42, true}));
}

TEST(PageToken, ThroughParseListQuery) {
  auto q = parse("PageToken=" + encode_page_token({77, true}) + "&Page=2");
  ASSERT_TRUE(q.has_value());
  ASSERT_TRUE(q->page.cursor.has_value());
  EXPECT_EQ(q->page.cursor->seq, 77);
  EXPECT_TRUE(q->page.cursor->backward);
  EXPECT_EQ(q->page_index, 2u);
}

TEST(PageToken, GarbageRejected) {
  for (std::string_view t : {"", "P", "PT", "PB", "XT10", "pt10", "PX10", "PTzz", "PT-1", "PB-5", "PT10 ",
                             " PT10", "PT1g", "PT+1", "PT10000000000000000", /* 17 digits: past int64 */
                             "PTffffffffffffffff" /* overflows int64 */}) {
    EXPECT_FALSE(decode_page_token(t).has_value()) << "accepted: '" << t << "'";
  }
  expect_400("PageToken=garbage");
  expect_400("PageToken=PT-1");
  expect_400("PageToken=");
}

TEST(PageMeta, FirstPageWithMore) {
  ListLinks links{kBase, {}, "bindings"};
  auto q = parse("PageSize=2");
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({10, 11}, /*more=*/true), render);
  ASSERT_EQ(body.at("bindings").as_array().size(), 2u);
  const auto& meta = body.at("meta").as_object();
  EXPECT_EQ(num(meta, "page"), 0);
  EXPECT_EQ(num(meta, "page_size"), 2);
  EXPECT_EQ(str(meta, "key"), "bindings");
  EXPECT_EQ(str(meta, "first_page_url"), kBase + "?PageSize=2&Page=0");
  EXPECT_EQ(str(meta, "url"), kBase + "?PageSize=2&Page=0");
  EXPECT_TRUE(meta.at("previous_page_url").is_null());
  EXPECT_EQ(str(meta, "next_page_url"),
            kBase + "?PageSize=2&Page=1&PageToken=" + encode_page_token({11, false}));
}

TEST(PageMeta, NoNextPageUrlWhenNoMore) {
  ListLinks links{kBase, {}, "services"};
  auto q = parse("");
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({1, 2, 3}, /*more=*/false), render);
  const auto& meta = body.at("meta").as_object();
  EXPECT_TRUE(meta.at("next_page_url").is_null());
  EXPECT_TRUE(meta.at("previous_page_url").is_null());
  EXPECT_EQ(num(meta, "page_size"), 50);
  EXPECT_EQ(str(meta, "key"), "services");
}

TEST(PageMeta, EmptyListHasNoLinks) {
  ListLinks links{kBase, {}, "bindings"};
  auto q = parse("");
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({}, /*more=*/false), render);
  EXPECT_TRUE(body.at("bindings").as_array().empty());
  const auto& meta = body.at("meta").as_object();
  EXPECT_TRUE(meta.at("next_page_url").is_null());
  EXPECT_TRUE(meta.at("previous_page_url").is_null());
  EXPECT_EQ(str(meta, "first_page_url"), kBase + "?PageSize=50&Page=0");
}

TEST(PageMeta, UrlsAreAbsoluteAndCarryFiltersPercentEncoded) {
  ListLinks links{
      kBase, {{"Identity", "alice smith"}, {"Identity", "b&o=b"}, {"Tag", "caf\xC3\xA9/+"}}, "bindings"};
  auto q = parse("PageSize=1");
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({5}, /*more=*/true), render);
  const auto& meta = body.at("meta").as_object();
  const std::string filters = "Identity=alice%20smith&Identity=b%26o%3Db&Tag=caf%C3%A9%2F%2B";
  EXPECT_EQ(str(meta, "first_page_url"), kBase + "?" + filters + "&PageSize=1&Page=0");
  EXPECT_EQ(str(meta, "url"), kBase + "?" + filters + "&PageSize=1&Page=0");
  std::string next = str(meta, "next_page_url");
  EXPECT_EQ(next.rfind("http://127.0.0.1:8080/v1/Services/", 0), 0u) << next;
  EXPECT_EQ(next, kBase + "?" + filters + "&PageSize=1&Page=1&PageToken=" + encode_page_token({5, false}));

  // A client following next_page_url verbatim gets the same filters and the cursor back.
  auto form = FormParams::parse(query_of(next));
  ASSERT_TRUE(form.has_value());
  EXPECT_EQ(form->get_all("Identity"), (std::vector<std::string>{"alice smith", "b&o=b"}));
  EXPECT_EQ(form->get("Tag"), "caf\xC3\xA9/+");
  auto followed = parse_list_query(*form, kNotifyMax);
  ASSERT_TRUE(followed.has_value());
  EXPECT_EQ(followed->page_index, 1u);
  EXPECT_EQ(followed->page_size, 1u);
  ASSERT_TRUE(followed->page.cursor.has_value());
  EXPECT_EQ(followed->page.cursor->seq, 5);
  EXPECT_FALSE(followed->page.cursor->backward);
}

TEST(PageMeta, ClampedPageSizeShowsInMetaAndUrls) {
  ListLinks links{kBase, {}, "bindings"};
  auto q = parse("PageSize=5000", kConversationsMax);
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({1}, /*more=*/true), render);
  const auto& meta = body.at("meta").as_object();
  EXPECT_EQ(num(meta, "page_size"), 100);
  EXPECT_NE(str(meta, "next_page_url").find("PageSize=100&"), std::string::npos);
}

TEST(PageMeta, SecondPagePointsBackToFirstWithoutToken) {
  ListLinks links{kBase, {}, "bindings"};
  auto q = parse("PageSize=2&Page=1&PageToken=" + encode_page_token({11, false}));
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({12, 13}, /*more=*/true), render);
  const auto& meta = body.at("meta").as_object();
  EXPECT_EQ(num(meta, "page"), 1);
  EXPECT_EQ(str(meta, "url"), kBase + "?PageSize=2&Page=1&PageToken=" + encode_page_token({11, false}));
  EXPECT_EQ(str(meta, "previous_page_url"), kBase + "?PageSize=2&Page=0");
  EXPECT_EQ(str(meta, "next_page_url"),
            kBase + "?PageSize=2&Page=2&PageToken=" + encode_page_token({13, false}));
}

TEST(PageMeta, LaterPageHasBackwardCursorToPrevious) {
  ListLinks links{kBase, {{"Tag", "vip"}}, "bindings"};
  auto q = parse("PageSize=2&Page=2&PageToken=" + encode_page_token({13, false}));
  ASSERT_TRUE(q.has_value());
  auto body = list_body(links, *q, page_of({14}, /*more=*/false), render);
  const auto& meta = body.at("meta").as_object();
  EXPECT_TRUE(meta.at("next_page_url").is_null());
  std::string prev = str(meta, "previous_page_url");
  EXPECT_EQ(prev, kBase + "?Tag=vip&PageSize=2&Page=1&PageToken=" + encode_page_token({14, true}));

  // Following it yields a backward cursor before the first row of this page.
  auto followed = parse(query_of(prev));
  ASSERT_TRUE(followed.has_value());
  EXPECT_EQ(followed->page_index, 1u);
  ASSERT_TRUE(followed->page.cursor.has_value());
  EXPECT_EQ(followed->page.cursor->seq, 14);
  EXPECT_TRUE(followed->page.cursor->backward);
}

TEST(PageMeta, BackwardPageLinksBothWays) {
  ListLinks links{kBase, {}, "bindings"};
  auto q = parse("PageSize=2&Page=1&PageToken=" + encode_page_token({14, true}));
  ASSERT_TRUE(q.has_value());
  // The store returns the two rows before 14 in ascending order, with more before them.
  auto body = list_body(links, *q, page_of({12, 13}, /*more=*/true), render);
  const auto& meta = body.at("meta").as_object();
  EXPECT_EQ(str(meta, "previous_page_url"), kBase + "?PageSize=2&Page=0");
  EXPECT_EQ(str(meta, "next_page_url"),
            kBase + "?PageSize=2&Page=2&PageToken=" + encode_page_token({13, false}));
}

}  // namespace
}  // namespace notifyd::api
