// Unit tests for daemon/fanout/notification: the outbox JSON round trip and the 201 body of
// POST /v1/Services/{IS}/Notifications (the spec's notify.v1.service.notification).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>
#include <string>

#include "daemon/fanout/notification.hpp"

namespace notifyd::fanout {
namespace {

namespace json = boost::json;

json::object parse_object(std::string_view text) { return json::parse(text).as_object(); }

NotificationRequest everything() {
  NotificationRequest n;
  n.identities = {"alice", "bob"};
  n.tags = {"news", "apn"};
  n.segments = {"legacy"};
  n.to_bindings = {{"sms", "+15551234567"}, {"apn", "a1b2c3"}};
  n.body = "Hello";
  n.title = "Greeting";
  n.sound = "ding.caf";
  n.action = "REPLY";
  n.priority = "low";
  n.ttl = 0;  // a non-default value that is also falsy: must not be taken as "absent"
  n.data = parse_object(R"({"k":"v","n":1,"o":{"a":[true,null]}})");
  n.apn = parse_object(R"({"aps":{"badge":1}})");
  n.fcm = parse_object(R"({"notification":{"title":"t"}})");
  n.gcm = parse_object(R"({"android":{"priority":"normal"}})");
  n.sms = parse_object(R"({"body":"b","media_urls":["https://e.x/a.png"]})");
  n.facebook_messenger = parse_object(R"({"m":1})");
  n.alexa = parse_object(R"({"a":2})");
  n.delivery_callback_url = "https://app.example.com/cb";
  return n;
}

void expect_same(const NotificationRequest& a, const NotificationRequest& b) {
  EXPECT_EQ(a.identities, b.identities);
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_EQ(a.segments, b.segments);
  ASSERT_EQ(a.to_bindings.size(), b.to_bindings.size());
  for (std::size_t i = 0; i < a.to_bindings.size(); ++i) {
    EXPECT_EQ(a.to_bindings[i].binding_type, b.to_bindings[i].binding_type);
    EXPECT_EQ(a.to_bindings[i].address, b.to_bindings[i].address);
  }
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.title, b.title);
  EXPECT_EQ(a.sound, b.sound);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.ttl, b.ttl);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.apn, b.apn);
  EXPECT_EQ(a.fcm, b.fcm);
  EXPECT_EQ(a.gcm, b.gcm);
  EXPECT_EQ(a.sms, b.sms);
  EXPECT_EQ(a.facebook_messenger, b.facebook_messenger);
  EXPECT_EQ(a.alexa, b.alexa);
  EXPECT_EQ(a.delivery_callback_url, b.delivery_callback_url);
}

TEST(NotificationJson, RoundTripsEveryFieldThroughText) {
  NotificationRequest n = everything();
  // Through serialised text, as the outbox stores it.
  std::string text = json::serialize(to_json(n));
  NotificationRequest back = notification_from_json(parse_object(text));
  expect_same(n, back);
}

TEST(NotificationJson, RoundTripsTheDefaults) {
  NotificationRequest n;
  NotificationRequest back = notification_from_json(to_json(n));
  expect_same(n, back);
  EXPECT_EQ(back.priority, "high");
  EXPECT_EQ(back.ttl, 2419200);
  EXPECT_FALSE(back.body);
  EXPECT_FALSE(back.data);
}

TEST(NotificationJson, MissingKeysAreDefaults) {
  NotificationRequest n = notification_from_json(parse_object(R"({"identities":["x"]})"));
  EXPECT_EQ(n.identities, std::vector<std::string>{"x"});
  EXPECT_EQ(n.priority, "high");
  EXPECT_EQ(n.ttl, 2419200);
  EXPECT_TRUE(n.to_bindings.empty());
  EXPECT_FALSE(n.delivery_callback_url);
}

TEST(NotificationJson, WrongTypesThrowNamingTheKey) {
  try {
    notification_from_json(parse_object(R"({"ttl":"soon"})"));
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ttl"), std::string::npos) << e.what();
  }
  EXPECT_THROW(notification_from_json(parse_object(R"({"data":"x"})")), std::invalid_argument);
  EXPECT_THROW(notification_from_json(parse_object(R"({"tags":[1]})")), std::invalid_argument);
  EXPECT_THROW(notification_from_json(parse_object(R"({"to_bindings":["sms"]})")), std::invalid_argument);
}

constexpr const char* kSid = "NTb8021351170b4e1286adaac3fdd6d082";
constexpr const char* kAccount = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr const char* kService = "IS699b53e02da45a1ba9d13b7d7d2766af";

TEST(RenderNotification, HasExactlyTheSpecFieldsWithTheirTypes) {
  json::object o = render_notification(everything(), kSid, kAccount, kService, 1458862948);
  const char* const spec_fields[] = {"sid",
                                     "account_sid",
                                     "service_sid",
                                     "date_created",
                                     "identities",
                                     "tags",
                                     "segments",
                                     "priority",
                                     "ttl",
                                     "title",
                                     "body",
                                     "sound",
                                     "action",
                                     "data",
                                     "apn",
                                     "gcm",
                                     "fcm",
                                     "sms",
                                     "facebook_messenger",
                                     "alexa"};
  EXPECT_EQ(o.size(), std::size(spec_fields));
  for (const char* f : spec_fields) EXPECT_TRUE(o.contains(f)) << f;
  EXPECT_FALSE(o.contains("to_binding"));
  EXPECT_FALSE(o.contains("to_bindings"));
  EXPECT_FALSE(o.contains("delivery_callback_url"));

  EXPECT_EQ(o.at("sid").as_string(), kSid);
  EXPECT_EQ(o.at("account_sid").as_string(), kAccount);
  EXPECT_EQ(o.at("service_sid").as_string(), kService);
  EXPECT_EQ(o.at("date_created").as_string(), "2016-03-24T23:42:28Z");
  EXPECT_EQ(o.at("identities"), json::parse(R"(["alice","bob"])"));
  EXPECT_EQ(o.at("tags"), json::parse(R"(["news","apn"])"));
  EXPECT_EQ(o.at("segments"), json::parse(R"(["legacy"])"));
  EXPECT_EQ(o.at("priority").as_string(), "low");
  ASSERT_TRUE(o.at("ttl").is_int64());
  EXPECT_EQ(o.at("ttl").as_int64(), 0);
  EXPECT_EQ(o.at("title").as_string(), "Greeting");
  EXPECT_EQ(o.at("body").as_string(), "Hello");
  EXPECT_EQ(o.at("sound").as_string(), "ding.caf");
  EXPECT_EQ(o.at("action").as_string(), "REPLY");
  // The JSON parameters come back as objects, not as the strings they arrived in.
  EXPECT_EQ(o.at("data"), json::parse(R"({"k":"v","n":1,"o":{"a":[true,null]}})"));
  EXPECT_EQ(o.at("apn"), json::parse(R"({"aps":{"badge":1}})"));
  EXPECT_EQ(o.at("fcm"), json::parse(R"({"notification":{"title":"t"}})"));
  EXPECT_EQ(o.at("gcm"), json::parse(R"({"android":{"priority":"normal"}})"));
  EXPECT_EQ(o.at("sms"), json::parse(R"({"body":"b","media_urls":["https://e.x/a.png"]})"));
  EXPECT_EQ(o.at("facebook_messenger"), json::parse(R"({"m":1})"));
  EXPECT_EQ(o.at("alexa"), json::parse(R"({"a":2})"));
}

TEST(RenderNotification, MatchesTheSpecExampleForAMinimalRequest) {
  // The spec's create example: Identity=jing, Title=test, Body=body.
  NotificationRequest n;
  n.identities = {"jing"};
  n.title = "test";
  n.body = "body";
  json::object o = render_notification(n, kSid, kAccount, kService, 1458862948);
  EXPECT_EQ(o, parse_object(R"({
    "sid":"NTb8021351170b4e1286adaac3fdd6d082","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "service_sid":"IS699b53e02da45a1ba9d13b7d7d2766af","date_created":"2016-03-24T23:42:28Z",
    "identities":["jing"],"tags":[],"segments":[],"priority":"high","ttl":2419200,
    "title":"test","body":"body","sound":null,"action":null,"data":null,"apn":null,"fcm":null,
    "gcm":null,"sms":null,"facebook_messenger":null,"alexa":null})"));
}

TEST(RenderNotification, EmptyListsAreArraysNotNull) {
  NotificationRequest n;
  n.to_bindings = {{"sms", "+15551234567"}};
  json::object o = render_notification(n, kSid, kAccount, kService, 0);
  for (const char* f : {"identities", "tags", "segments"}) {
    ASSERT_TRUE(o.at(f).is_array()) << f;
    EXPECT_TRUE(o.at(f).as_array().empty()) << f;
  }
  for (const char* f : {"title", "body", "sound", "action", "data", "apn", "gcm", "fcm", "sms",
                        "facebook_messenger", "alexa"}) {
    EXPECT_TRUE(o.at(f).is_null()) << f;
  }
}

}  // namespace
}  // namespace notifyd::fanout
