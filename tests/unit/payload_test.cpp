// Unit tests for daemon/fanout/payload: the per-channel payloads of DESIGN.md "Payloads" (APNs protocol
// 3 and 4, FCM/GCM HTTP v1 data messages, SMS), checked on the parsed JSON the transports send.
#include "daemon/fanout/payload.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>

namespace notifyd::fanout {
namespace {

namespace json = boost::json;

constexpr std::int64_t kNow = 1700000000;

json::object parse_object(std::string_view text) { return json::parse(text).as_object(); }

ServiceRecord service_with_sender() {
  ServiceRecord s;
  s.sid = "IS00000000000000000000000000000001";
  s.messaging_service_sid = "MG00000000000000000000000000000001";
  return s;
}

struct Built {
  std::optional<std::string> error;
  transport::Delivery delivery;
  json::object body;  // parsed delivery.body when it is JSON (APNs, FCM)
};

Built build(const NotificationRequest& n, std::string type, std::string version = "3",
            ServiceRecord service = service_with_sender()) {
  Built b;
  PayloadTarget t{std::move(type), "token-or-number", std::move(version)};
  b.error = build_delivery(n, t, service, kNow, b.delivery);
  if (!b.error && !b.delivery.body.empty()) b.body = parse_object(b.delivery.body);
  return b;
}

NotificationRequest hello() {
  NotificationRequest n;
  n.identities = {"alice"};
  n.title = "Greeting";
  n.body = "Hello";
  return n;
}

// ---- APNs -------------------------------------------------------------------------------------------

TEST(ApnsPayload, Protocol3AlertIsTheBodyStringAndTitleIsNotSent) {
  Built b = build(hello(), "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({"aps":{"alert":"Hello"}})"));
  EXPECT_EQ(b.delivery.apns_push_type, "alert");
  EXPECT_EQ(b.delivery.apns_priority, 10);
}

TEST(ApnsPayload, Protocol4AlertIsTitleAndBody) {
  Built b = build(hello(), "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({"aps":{"alert":{"title":"Greeting","body":"Hello"}}})"));
}

TEST(ApnsPayload, Protocol4AlertHasOnlyThePresentFields) {
  NotificationRequest n;
  n.body = "Only a body";
  Built b = build(n, "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("aps").at("alert"), parse_object(R"({"body":"Only a body"})"));

  NotificationRequest t;
  t.title = "Only a title";
  b = build(t, "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("aps").at("alert"), parse_object(R"({"title":"Only a title"})"));
  EXPECT_EQ(b.delivery.apns_push_type, "alert");
}

TEST(ApnsPayload, EmptyProtocolVersionUsesTheServiceDefault) {
  ServiceRecord s = service_with_sender();
  s.default_apn_notification_protocol_version = "4";
  Built b = build(hello(), "apn", "", s);
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_TRUE(b.body.at("aps").at("alert").is_object());
}

TEST(ApnsPayload, SoundActionAndDataPlacement) {
  NotificationRequest n = hello();
  n.sound = "ding.caf";
  n.action = "REPLY";
  n.data = parse_object(R"({"order_id":"42","count":3,"nested":{"a":[1,2]}})");
  Built b = build(n, "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({
    "order_id":"42","count":3,"nested":{"a":[1,2]},
    "aps":{"alert":{"title":"Greeting","body":"Hello"},"sound":"ding.caf","category":"REPLY"}})"));
}

TEST(ApnsPayload, DataCannotReplaceTheApsDictionary) {
  NotificationRequest n = hello();
  n.data = parse_object(R"({"aps":"oops","k":"v"})");
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({"k":"v","aps":{"alert":"Hello"}})"));
}

TEST(ApnsPayload, ApnIsDeepMergedOverridingApsFieldsAndAddingKeys) {
  NotificationRequest n = hello();
  n.sound = "ding.caf";
  n.data = parse_object(R"({"k":"from data","keep":"yes"})");
  n.apn = parse_object(R"({
    "aps":{"alert":{"body":"Overridden"},"badge":3,"sound":{"critical":1,"name":"alarm.caf","volume":1.0}},
    "k":"from apn","extra":{"x":true}})");
  Built b = build(n, "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  // alert merges key by key (title kept, body replaced); sound is replaced wholesale by the object.
  EXPECT_EQ(b.body, parse_object(R"({
    "k":"from apn","keep":"yes","extra":{"x":true},
    "aps":{"alert":{"title":"Greeting","body":"Overridden"},"badge":3,
           "sound":{"critical":1,"name":"alarm.caf","volume":1.0}}})"));
}

TEST(ApnsPayload, ApnReplacesAStringAlertWithAnObject) {
  NotificationRequest n = hello();
  n.apn = parse_object(R"({"aps":{"alert":{"loc-key":"GREETING"}}})");
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("aps").at("alert"), parse_object(R"({"loc-key":"GREETING"})"));
}

TEST(ApnsPayload, ApnWithANonObjectApsIsRefused) {
  NotificationRequest n = hello();
  n.apn = parse_object(R"({"aps":"nope"})");
  Built b = build(n, "apn", "3");
  ASSERT_TRUE(b.error);
}

TEST(ApnsPayload, PriorityLowIsFive) {
  NotificationRequest n = hello();
  n.priority = "low";
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_priority, 5);
  EXPECT_EQ(b.delivery.apns_push_type, "alert");
}

TEST(ApnsPayload, TtlBecomesExpirationAndZeroStaysZero) {
  NotificationRequest n = hello();
  n.ttl = 3600;
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_expiration, kNow + 3600);

  n.ttl = 2419200;
  b = build(n, "apn", "3");
  EXPECT_EQ(b.delivery.apns_expiration, kNow + 2419200);

  n.ttl = 0;  // "attempt once, do not store"
  b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_expiration, 0);
}

TEST(ApnsPayload, RetryKeepsTheOriginalExpiration) {
  NotificationRequest n = hello();
  n.ttl = 3600;
  transport::Delivery d;
  PayloadTarget t{"apn", "token", "3"};
  // Accepted at kNow, retried 10 minutes later: Apple must still drop it at kNow + 3600.
  ASSERT_FALSE(build_delivery(n, t, service_with_sender(), kNow + 600, d, kNow + 3600));
  EXPECT_EQ(d.apns_expiration, kNow + 3600);
  n.ttl = 0;
  ASSERT_FALSE(build_delivery(n, t, service_with_sender(), kNow + 600, d, kNow));
  EXPECT_EQ(d.apns_expiration, 0);
}

TEST(ApnsPayload, DataOnlyIsABackgroundPushWithContentAvailableAndPriorityFive) {
  NotificationRequest n;
  n.tags = {"all"};
  n.data = parse_object(R"({"sync":"inbox"})");
  Built b = build(n, "apn", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_push_type, "background");
  EXPECT_EQ(b.delivery.apns_priority, 5);  // Apple refuses priority 10 for background pushes
  EXPECT_EQ(b.body, parse_object(R"({"sync":"inbox","aps":{"content-available":1}})"));
}

TEST(ApnsPayload, Protocol3TitleOnlyHasNoAlertSoItIsBackground) {
  NotificationRequest n;
  n.title = "Not sent in protocol 3";
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_push_type, "background");
  EXPECT_FALSE(b.body.at("aps").as_object().contains("alert"));
}

TEST(ApnsPayload, BackgroundKeepsAnExplicitContentAvailable) {
  NotificationRequest n;
  n.apn = parse_object(R"({"aps":{"content-available":1,"mutable-content":1}})");
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_push_type, "background");
  EXPECT_EQ(b.body, parse_object(R"({"aps":{"content-available":1,"mutable-content":1}})"));
}

TEST(ApnsPayload, SoundOrBadgeAloneIsAnAlertPush) {
  NotificationRequest n;
  n.sound = "default";
  Built b = build(n, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_push_type, "alert");
  EXPECT_FALSE(b.body.at("aps").as_object().contains("content-available"));

  NotificationRequest badge;
  badge.apn = parse_object(R"({"aps":{"badge":0}})");
  b = build(badge, "apn", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.apns_push_type, "alert");
  EXPECT_EQ(b.delivery.apns_priority, 10);
}

TEST(ApnsPayload, UnknownProtocolVersionIsAnError) {
  Built b = build(hello(), "apn", "5");
  ASSERT_TRUE(b.error);
  EXPECT_NE(b.error->find("\"5\""), std::string::npos) << *b.error;
}

// ---- FCM / GCM ----------------------------------------------------------------------------------------

TEST(FcmPayload, DataMessageWithTwiKeysAndStringifiedData) {
  NotificationRequest n = hello();
  n.sound = "ding";
  n.action = "OPEN";
  n.data = parse_object(R"({"s":"text","i":42,"b":true,"z":null,"o":{"a":1},"arr":[1,"x"]})");
  Built b = build(n, "fcm", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_FALSE(b.body.contains("token"));  // the transport adds it
  EXPECT_EQ(b.body, parse_object(R"({
    "data":{"twi_body":"Hello","twi_title":"Greeting","twi_sound":"ding","twi_action":"OPEN",
            "s":"text","i":"42","b":"true","z":"null","o":"{\"a\":1}","arr":"[1,\"x\"]"},
    "android":{"priority":"high","ttl":"2419200s"}})"));
  for (const auto& kv : b.body.at("data").as_object()) EXPECT_TRUE(kv.value().is_string()) << kv.key();
}

TEST(FcmPayload, DoublesAreStringifiedTheWayAppsPrintThem) {
  // Not Boost.JSON's "1.5E0": app code compares and parses these strings.
  NotificationRequest n;
  n.data = parse_object(R"({"d":1.5,"whole":2.0,"o":{"p":0.25,"q":[1e21,-0.1]}})");
  Built b = build(n, "fcm", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("data"),
            parse_object(R"({"d":"1.5","whole":"2","o":"{\"p\":0.25,\"q\":[1e+21,-0.1]}"})"));
}

TEST(FcmPayload, OnlyPresentTwiKeys) {
  NotificationRequest n;
  n.body = "Just a body";
  Built b = build(n, "fcm", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("data"), parse_object(R"({"twi_body":"Just a body"})"));
}

TEST(FcmPayload, LowPriorityIsNormalAndTtlIsSeconds) {
  NotificationRequest n = hello();
  n.priority = "low";
  n.ttl = 3600;
  Built b = build(n, "fcm", "4");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body.at("android"), parse_object(R"({"priority":"normal","ttl":"3600s"})"));

  n.ttl = 0;
  b = build(n, "fcm", "3");
  EXPECT_EQ(b.body.at("android").at("ttl").as_string(), "0s");
}

TEST(FcmPayload, RetrySendsTheRemainingTtl) {
  NotificationRequest n = hello();
  n.ttl = 3600;
  transport::Delivery d;
  PayloadTarget t{"fcm", "token", "3"};
  ASSERT_FALSE(build_delivery(n, t, service_with_sender(), kNow + 600, d, kNow + 3600));
  EXPECT_EQ(parse_object(d.body).at("android").at("ttl").as_string(), "3000s");
  ASSERT_FALSE(build_delivery(n, t, service_with_sender(), kNow + 4000, d, kNow + 3600));
  EXPECT_EQ(parse_object(d.body).at("android").at("ttl").as_string(), "0s");
}

TEST(FcmPayload, FcmObjectIsMergedIntoMessage) {
  NotificationRequest n = hello();
  n.data = parse_object(R"({"k":"v"})");
  n.fcm = parse_object(R"({
    "notification":{"title":"Shown","body":"By the system"},
    "android":{"priority":"normal","collapse_key":"c1"},
    "data":{"extra":7,"k":"over"}})");
  n.gcm = parse_object(R"({"notification":{"title":"GCM only"}})");  // not for fcm bindings
  Built b = build(n, "fcm", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({
    "data":{"twi_body":"Hello","twi_title":"Greeting","k":"over","extra":"7"},
    "android":{"priority":"normal","ttl":"2419200s","collapse_key":"c1"},
    "notification":{"title":"Shown","body":"By the system"}})"));
}

TEST(FcmPayload, GcmBindingsUseTheGcmObject) {
  NotificationRequest n = hello();
  n.fcm = parse_object(R"({"notification":{"title":"FCM only"}})");
  n.gcm = parse_object(R"({"android":{"priority":"normal"},"data":{"g":false}})");
  Built b = build(n, "gcm", "3");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.body, parse_object(R"({
    "data":{"twi_body":"Hello","twi_title":"Greeting","g":"false"},
    "android":{"priority":"normal","ttl":"2419200s"}})"));
}

TEST(FcmPayload, OverlayMustNotRetargetOrBreakData) {
  NotificationRequest n = hello();
  n.fcm = parse_object(R"({"topic":"news"})");
  EXPECT_TRUE(build(n, "fcm", "3").error);
  n.fcm = parse_object(R"({"data":"not an object"})");
  EXPECT_TRUE(build(n, "fcm", "3").error);
  n.fcm.reset();
  n.gcm = parse_object(R"({"condition":"'a' in topics"})");
  EXPECT_TRUE(build(n, "gcm", "3").error);
}

TEST(FcmPayload, UnknownProtocolVersionIsAnError) { EXPECT_TRUE(build(hello(), "gcm", "2").error); }

// ---- SMS ------------------------------------------------------------------------------------------------

TEST(SmsPayload, BodyAndServiceSender) {
  NotificationRequest n = hello();
  Built b = build(n, "sms");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.sms_body, "Hello");
  EXPECT_TRUE(b.delivery.sms_media_urls.empty());
  EXPECT_EQ(b.delivery.messaging_service_sid, "MG00000000000000000000000000000001");
  EXPECT_TRUE(b.delivery.body.empty());
}

TEST(SmsPayload, SmsObjectOverridesBodyAndAddsMediaAndOptions) {
  NotificationRequest n = hello();
  n.sms = parse_object(R"({"body":"SMS text","media_urls":["https://e.x/a.png","https://e.x/b.png"],
                           "status_callback":"https://e.x/cb","max_price":0.5})");
  Built b = build(n, "sms");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.sms_body, "SMS text");
  EXPECT_EQ(b.delivery.sms_media_urls, (std::vector<std::string>{"https://e.x/a.png", "https://e.x/b.png"}));
  EXPECT_EQ(b.delivery.sms_status_callback, "https://e.x/cb");
  EXPECT_EQ(b.delivery.sms_max_price, "0.5");
}

TEST(SmsPayload, SmsBodyAloneIsEnough) {
  NotificationRequest n;
  n.sms = parse_object(R"({"body":"only here"})");
  Built b = build(n, "sms");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.sms_body, "only here");
}

TEST(SmsPayload, MediaWithoutBodyIsAllowed) {
  // The spec: "SMS requires either this body value, or media_urls".
  NotificationRequest n;
  n.sms = parse_object(R"({"media_urls":["https://e.x/a.png"]})");
  Built b = build(n, "sms");
  ASSERT_FALSE(b.error) << *b.error;
  EXPECT_EQ(b.delivery.sms_body, "");
  EXPECT_EQ(b.delivery.sms_media_urls.size(), 1u);
}

TEST(SmsPayload, NeitherBodyNorMediaIsRefused) {
  NotificationRequest n;
  n.title = "titles do not go by SMS";
  Built b = build(n, "sms");
  ASSERT_TRUE(b.error);
  EXPECT_EQ(*b.error, "21619");
}

TEST(SmsPayload, MissingMessagingServiceSidIs52182) {
  ServiceRecord s = service_with_sender();
  s.messaging_service_sid.reset();
  Built b = build(hello(), "sms", "3", s);
  ASSERT_TRUE(b.error);
  EXPECT_EQ(*b.error, "52182");
  s.messaging_service_sid = "";
  EXPECT_EQ(build(hello(), "sms", "3", s).error, "52182");
}

TEST(SmsPayload, BadSmsObjectValuesAreRefused) {
  NotificationRequest n = hello();
  n.sms = parse_object(R"({"media_urls":"https://e.x/a.png"})");
  EXPECT_TRUE(build(n, "sms").error);
  n.sms = parse_object(R"({"media_urls":[1]})");
  EXPECT_TRUE(build(n, "sms").error);
  n.sms = parse_object(R"({"body":5})");
  EXPECT_TRUE(build(n, "sms").error);
}

// ---- other channels -----------------------------------------------------------------------------------

TEST(OtherPayloads, MessengerAndAlexaBuildNothing) {
  for (const char* type : {"facebook-messenger", "alexa"}) {
    Built b = build(hello(), type);
    EXPECT_FALSE(b.error) << type;
    EXPECT_TRUE(b.delivery.body.empty()) << type;
    EXPECT_TRUE(b.delivery.sms_body.empty()) << type;
  }
}

TEST(OtherPayloads, UnknownBindingTypeIsAnError) { EXPECT_TRUE(build(hello(), "pigeon").error); }

TEST(DeepMerge, ObjectsMergeRecursivelyOtherValuesReplace) {
  json::object base = parse_object(R"({"a":{"b":1,"c":{"d":2}},"e":[1,2],"f":"x","g":{"h":1}})");
  deep_merge(base, parse_object(R"({"a":{"c":{"z":3},"y":4},"e":[3],"f":{"now":"object"},"g":null,"n":1})"));
  EXPECT_EQ(base, parse_object(R"({"a":{"b":1,"c":{"d":2,"z":3},"y":4},"e":[3],"f":{"now":"object"},
                                  "g":null,"n":1})"));
}

TEST(ProtocolVersions, ThreeAndFourOnly) {
  EXPECT_TRUE(is_supported_protocol_version("3"));
  EXPECT_TRUE(is_supported_protocol_version("4"));
  EXPECT_FALSE(is_supported_protocol_version(""));
  EXPECT_FALSE(is_supported_protocol_version("2"));
  EXPECT_FALSE(is_supported_protocol_version("5"));
}

}  // namespace
}  // namespace notifyd::fanout
