// Unit tests for daemon/fanout/twilio_signature (X-Twilio-Signature and form encoding) and the pure parts of
// daemon/fanout/callbacks (the callback's form fields, Retry-After). Expected signatures come from Twilio's
// docs and from python3-twilio 7.7.1's RequestValidator.compute_signature.
#include "daemon/fanout/twilio_signature.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "daemon/fanout/callbacks.hpp"

namespace notifyd::fanout {
namespace {

TEST(TwilioSignature, DocsExample) {
  // https://www.twilio.com/docs/usage/security#validating-requests
  const FormParams params = {{"CallSid", "CA1234567890ABCDE"},
                             {"Caller", "+12349013030"},
                             {"Digits", "1234"},
                             {"From", "+12349013030"},
                             {"To", "+18005551212"}};
  EXPECT_EQ(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

TEST(TwilioSignature, ParamOrderDoesNotMatter) {
  const FormParams shuffled = {{"To", "+18005551212"},
                               {"Digits", "1234"},
                               {"CallSid", "CA1234567890ABCDE"},
                               {"From", "+12349013030"},
                               {"Caller", "+12349013030"}};
  EXPECT_EQ(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", shuffled),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

TEST(TwilioSignature, NoParamsSignsTheUrlAlone) {
  EXPECT_EQ(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", {}),
            "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
}

TEST(TwilioSignature, EmptyToken) {
  EXPECT_EQ(twilio_signature("", "https://x.test/", {{"b", "2"}, {"a", "1"}}),
            "AUegr73wPL6iR3uog0716fwC/ns=");
}

TEST(TwilioSignature, SortsByteWiseLikePython) {
  // Upper case before '_' before lower case before non-ASCII: Python's code-point order.
  EXPECT_EQ(twilio_signature("tok", "https://x.test/", {{"a", "2"}, {"É", "4"}, {"_", "3"}, {"Z", "1"}}),
            "dsBvIFPmhS9vx5FZX5vEbOYUM98=");
}

TEST(TwilioSignature, Utf8ValuesAndPortInUrl) {
  const FormParams params = {{"a", "é"}, {"B", "x"}, {"a_", "1"}, {"emoji", "😀 +&="}};
  EXPECT_EQ(twilio_signature("12345", "http://127.0.0.1:8080/cb?x=1", params),
            "RtHPjsJ43cXiFKeFuLdassrOrBY=");
}

TEST(TwilioSignature, RepeatedNamesSortedByValue) {
  // HMAC of "https://x.test/a1a2b1": the newer Twilio libraries' order for repeated names.
  EXPECT_EQ(twilio_signature("tok", "https://x.test/", {{"a", "2"}, {"b", "1"}, {"a", "1"}}),
            "MpIbdmg41AINPBoO+fQnvPMGPRw=");
}

TEST(TwilioSignature, TokenAndUrlChangeTheSignature) {
  const FormParams params = {{"a", "1"}};
  const auto base = twilio_signature("tok", "https://x.test/", params);
  EXPECT_EQ(base.size(), 28u);  // base64 of 20 bytes
  EXPECT_NE(base, twilio_signature("tok2", "https://x.test/", params));
  EXPECT_NE(base, twilio_signature("tok", "https://x.test/?", params));
  EXPECT_NE(base, twilio_signature("tok", "https://x.test/", {{"a", "2"}}));
}

TEST(FormUrlencode, EncodesLikeBrowsers) {
  EXPECT_EQ(form_urlencode({}), "");
  EXPECT_EQ(form_urlencode({{"a", "1"}, {"b", ""}}), "a=1&b=");
  EXPECT_EQ(form_urlencode({{"", ""}, {"x", "y"}}), "=&x=y");
  EXPECT_EQ(form_urlencode({{"Identity", "a b+c&d=e/é"}}), "Identity=a+b%2Bc%26d%3De%2F%C3%A9");
  EXPECT_EQ(form_urlencode({{"k", "AZaz09-._*~"}}), "k=AZaz09-._*%7E");
}

TEST(CallbackForm, FieldsInOrderAndEmptyOnesLeftOut) {
  Callback c;
  c.account_sid = "AC123";
  c.params.notification_sid = "NT1";
  c.params.binding_sid = "BS1";
  c.params.identity = "alice";
  c.params.binding_type = "apn";
  c.params.status = CallbackStatus::delivered;
  EXPECT_EQ(callback_form(c), (FormParams{{"AccountSid", "AC123"},
                                          {"NotificationSid", "NT1"},
                                          {"BindingSid", "BS1"},
                                          {"Identity", "alice"},
                                          {"BindingType", "apn"},
                                          {"Status", "delivered"}}));
  c.params.status = CallbackStatus::failed;
  c.params.error_code = "52134";
  c.params.provider_status = "410";
  const auto form = callback_form(c);
  ASSERT_EQ(form.size(), 8u);
  EXPECT_EQ(form[5], (std::pair<std::string, std::string>{"Status", "failed"}));
  EXPECT_EQ(form[6], (std::pair<std::string, std::string>{"ErrorCode", "52134"}));
  EXPECT_EQ(form[7], (std::pair<std::string, std::string>{"ProviderStatus", "410"}));
  EXPECT_STREQ(to_string(CallbackStatus::expired), "expired");
}

TEST(RetryAfter, SecondsAndDates) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon"), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("0"), milliseconds(0));
  EXPECT_EQ(parse_retry_after(" 120 "), seconds(120));
  EXPECT_GT(*parse_retry_after("99999999999999999999999"), std::chrono::hours(24 * 365));

  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), seconds(30));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), milliseconds(0));  // in the past
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 PST", now), std::nullopt);
}

}  // namespace
}  // namespace notifyd::fanout
