// Unit tests for daemon/api/form: form decoding (Twilio arrays as repeated keys), UTF-8 and unknown keys.
#include "daemon/api/form.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace notifyd::api {
namespace {

using Items = std::vector<std::pair<std::string, std::string>>;

void expect_invalid(std::string_view encoded) {
  auto r = FormParams::parse(encoded);
  ASSERT_FALSE(r.has_value()) << "accepted: " << encoded;
  EXPECT_EQ(r.error().status, 400) << encoded;
  EXPECT_EQ(r.error().code, 20001) << encoded;
  EXPECT_FALSE(r.error().message.empty());
}

TEST(FormParams, EmptyInput) {
  auto r = FormParams::parse("");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->items().empty());
  EXPECT_FALSE(r->has("Identity"));
  EXPECT_FALSE(r->get("Identity").has_value());
  EXPECT_TRUE(r->get_all("Tag").empty());
  EXPECT_TRUE(r->check_known({}).has_value());
}

TEST(FormParams, RepeatedKeysKeptInOrder) {
  auto r = FormParams::parse("Tag=b&Identity=alice&Tag=a&Tag=c");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->items(), (Items{{"Tag", "b"}, {"Identity", "alice"}, {"Tag", "a"}, {"Tag", "c"}}));
  EXPECT_EQ(r->get_all("Tag"), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(r->get("Tag"), "b");  // the first
  EXPECT_EQ(r->get("Identity"), "alice");
  EXPECT_TRUE(r->has("Identity"));
  EXPECT_FALSE(r->has("identity"));  // keys are case-sensitive
}

TEST(FormParams, PlusIsSpace) {
  auto r = FormParams::parse("Body=hello+world&Friendly+Name=a+b+c");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->get("Body"), "hello world");
  EXPECT_EQ(r->get("Friendly Name"), "a b c");
}

TEST(FormParams, PercentDecoding) {
  auto r = FormParams::parse(
      "Data=%7B%22a%22%3A+1%7D&Plus=%2B&Amp=a%26b%3Dc&Utf8=%C3%A9%E2%82%AC%F0%9F%98%80&Lower=%c3%a9");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->get("Data"), R"({"a": 1})");
  EXPECT_EQ(r->get("Plus"), "+");  // an encoded plus stays a plus
  EXPECT_EQ(r->get("Amp"), "a&b=c");
  EXPECT_EQ(r->get("Utf8"), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(r->get("Lower"), "\xC3\xA9");
  EXPECT_EQ(r->items().size(), 5u);
}

TEST(FormParams, KeyWithoutValueAndEmptyValue) {
  auto r = FormParams::parse("A=&B&C=1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->items(), (Items{{"A", ""}, {"B", ""}, {"C", "1"}}));
}

TEST(FormParams, EmptyPairsSkipped) {
  auto r = FormParams::parse("a=1&&b=2&");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->items(), (Items{{"a", "1"}, {"b", "2"}}));
}

TEST(FormParams, InvalidPercentEncodingIs400) {
  expect_invalid("Body=%zz");
  expect_invalid("Body=%4");
  expect_invalid("Body=abc%");
  expect_invalid("%G1=x");
  expect_invalid("a=1&Body=%%41");
}

TEST(FormParams, InvalidUtf8Is400) {
  expect_invalid("Body=%C0%80");        // overlong NUL
  expect_invalid("Body=%E0%80%AF");     // overlong '/'
  expect_invalid("Body=%F0%82%82%AC");  // overlong euro sign
  expect_invalid("Body=%ED%A0%80");     // UTF-16 surrogate U+D800
  expect_invalid("Body=%ED%BF%BF");     // surrogate U+DFFF
  expect_invalid("Body=%E2%82");        // truncated 3-byte sequence
  expect_invalid("Body=%F0%9F%98");     // truncated 4-byte sequence
  expect_invalid("Body=%C3");           // lone lead byte at the end
  expect_invalid("Body=%C3x");          // lead byte without continuation
  expect_invalid("Body=%80");           // lone continuation byte
  expect_invalid("Body=%F4%90%80%80");  // past U+10FFFF
  expect_invalid("Body=%FF");           // never valid
  expect_invalid("%C0%80=x");           // in a key too
}

TEST(Utf8, BoundaryCodePoints) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\x7F"));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));               // U+0080
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));           // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));           // U+E000, just above
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));              // overlong U+007F
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));          // overlong U+07FF
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));      // overlong U+FFFF
  EXPECT_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));  // 5-byte form
}

TEST(FormParams, CheckKnownNamesTheUnknownKey) {
  auto r = FormParams::parse("Identity=alice&BindingType=apn&Bogus=1&AlsoBogus=2");
  ASSERT_TRUE(r.has_value());
  auto st = r->check_known({"Identity", "BindingType", "Address"});
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().status, 400);
  EXPECT_EQ(st.error().code, 20001);
  EXPECT_NE(st.error().message.find("Bogus"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find("AlsoBogus"), std::string::npos)
      << "names the first: " << st.error().message;
}

TEST(FormParams, CheckKnownAcceptsKnownAndRepeatedKeys) {
  auto r = FormParams::parse("Identity=alice&Tag=a&Tag=b");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->check_known({"Identity", "Tag", "Address"}).has_value());
  // Keys match exactly, not case-insensitively.
  EXPECT_FALSE(r->check_known({"identity", "Tag"}).has_value());
}

}  // namespace
}  // namespace notifyd::api
