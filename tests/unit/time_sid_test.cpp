// Unit tests for daemon/model/time and daemon/model/sid: Twilio's date formats and SID syntax.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "daemon/model/sid.hpp"
#include "daemon/model/time.hpp"

namespace notifyd {
namespace {

TEST(FormatIso8601, EpochZero) { EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00Z"); }

TEST(FormatIso8601, ExactFormatWithZeroPadding) {
  // 1999-12-31T00:00:00Z, then one hour, one minute and one second later.
  EXPECT_EQ(format_iso8601(946598400), "1999-12-31T00:00:00Z");
  EXPECT_EQ(format_iso8601(946598400 + 3600 + 60 + 1), "1999-12-31T01:01:01Z");
}

TEST(FormatIso8601, LeapDays) {
  EXPECT_EQ(format_iso8601(1709210096), "2024-02-29T12:34:56Z");
  EXPECT_EQ(format_iso8601(951868799), "2000-02-29T23:59:59Z");
  EXPECT_EQ(format_iso8601(951868799 + 1), "2000-03-01T00:00:00Z");
}

TEST(FormatIso8601, Past32BitRollover) { EXPECT_EQ(format_iso8601(2147483648LL), "2038-01-19T03:14:08Z"); }

TEST(FormatIso8601, IsExactlyTwentyCharactersWithoutFractionOrOffset) {
  std::string s = format_iso8601(now_seconds());
  ASSERT_EQ(s.size(), 20u) << s;
  EXPECT_EQ(s[4], '-');
  EXPECT_EQ(s[7], '-');
  EXPECT_EQ(s[10], 'T');
  EXPECT_EQ(s[13], ':');
  EXPECT_EQ(s[16], ':');
  EXPECT_EQ(s[19], 'Z');
}

TEST(ParseDate, AcceptsValidDates) {
  EXPECT_EQ(parse_date("1970-01-01"), 0);
  EXPECT_EQ(parse_date("2024-02-29"), 1709164800);
  EXPECT_EQ(parse_date("1999-12-31"), 946598400);
  EXPECT_EQ(parse_date("2024-03-01"), 1709164800 + 86400);
}

TEST(ParseDate, RoundTripsWithFormat) {
  auto t = parse_date("2024-02-29");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_iso8601(*t), "2024-02-29T00:00:00Z");
}

TEST(ParseDate, RejectsImpossibleDates) {
  EXPECT_FALSE(parse_date("2023-02-29").has_value());  // not a leap year
  EXPECT_FALSE(parse_date("1900-02-29").has_value());  // century, not a leap year
  EXPECT_FALSE(parse_date("2024-13-01").has_value());
  EXPECT_FALSE(parse_date("2024-00-10").has_value());
  EXPECT_FALSE(parse_date("2024-04-31").has_value());
  EXPECT_FALSE(parse_date("2024-01-00").has_value());
}

TEST(ParseDate, RejectsWrongShapes) {
  EXPECT_FALSE(parse_date("2024-1-01").has_value());
  EXPECT_FALSE(parse_date("2024-01-1").has_value());
  EXPECT_FALSE(parse_date("2024-01-01Z").has_value());
  EXPECT_FALSE(parse_date("2024-01-01 ").has_value());
  EXPECT_FALSE(parse_date("2024-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parse_date("2024/01/01").has_value());
  EXPECT_FALSE(parse_date("2024-0a-01").has_value());
  EXPECT_FALSE(parse_date("+024-01-01").has_value());
  EXPECT_FALSE(parse_date("").has_value());
}

TEST(MakeSid, PrefixAndThirtyTwoLowercaseHex) {
  for (std::string_view prefix : {"IS", "BS", "CR", "NO"}) {
    std::string sid = make_sid(prefix);
    ASSERT_EQ(sid.size(), 34u) << sid;
    EXPECT_EQ(sid.substr(0, 2), prefix);
    for (char c : sid.substr(2)) {
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << sid;
    }
    EXPECT_TRUE(is_sid(sid, prefix)) << sid;
  }
}

TEST(MakeSid, UniqueOverAThousand) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(make_sid("BS"));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(IsSid, AcceptsEitherCaseHex) {
  EXPECT_TRUE(is_sid("IS0123456789abcdef0123456789abcdef", "IS"));
  EXPECT_TRUE(is_sid("CR0123456789ABCDEF0123456789ABCDEF", "CR"));
}

TEST(IsSid, RejectsWrongPrefixLengthOrCharacters) {
  EXPECT_FALSE(is_sid("IS0123456789abcdef0123456789abcdef", "BS"));
  EXPECT_FALSE(is_sid("is0123456789abcdef0123456789abcdef", "IS"));
  EXPECT_FALSE(is_sid("IS0123456789abcdef0123456789abcde", "IS"));    // 31 hex
  EXPECT_FALSE(is_sid("IS0123456789abcdef0123456789abcdef0", "IS"));  // 33 hex
  EXPECT_FALSE(is_sid("IS0123456789abcdef0123456789abcdeg", "IS"));
  EXPECT_FALSE(is_sid("IS0123456789abcdef0123456789abcde ", "IS"));
  EXPECT_FALSE(is_sid("", "IS"));
  EXPECT_FALSE(is_sid("IS", "IS"));
}

}  // namespace
}  // namespace notifyd
