// The API (api::Router over http::Server and a SqliteStore on a temp file) through the real listener on
// 127.0.0.1 port 0, driven by a synchronous HTTP/1.1 client whose every wait is bounded. Each test gets a
// fresh store. Wire conventions and resource semantics are those of DESIGN.md and the spec in spec/.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "daemon/model/time.hpp"
#include "tests/support/api_fixture.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/test_credentials.hpp"

namespace notifyd::test {
namespace {

namespace json = boost::json;

// ---- credentials material, generated once (RSA keys take tens of milliseconds) ----

const ApnCertPair& apn_pair() {
  static const ApnCertPair pair = make_apn_cert_pair("com.example.notifyd");
  return pair;
}
const ApnCertPair& other_apn_pair() {
  static const ApnCertPair pair = make_apn_cert_pair("com.example.other");
  return pair;
}
const std::string& p8_key() {
  static const std::string key = make_p8_key();
  return key;
}
const std::string& service_account() {
  static const std::string account = make_service_account_json("notifyd-test-project");
  return account;
}

// ---- JSON helpers ----

const json::object& object_of(const HttpResponse& r) {
  if (!r.json.is_object()) throw std::runtime_error("response body is not a JSON object: " + r.body);
  return r.json.as_object();
}

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return "<absent>";
  if (!v->is_string()) return "<not a string: " + json::serialize(*v) + ">";
  return std::string(v->as_string());
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.emplace(kv.key());
  return out;
}

const json::array& array_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_array())
    throw std::runtime_error("no array at " + std::string(key) + " in " + json::serialize(o));
  return v->as_array();
}

const json::object& meta_of(const HttpResponse& r) { return object_of(r).at("meta").as_object(); }

bool is_null(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_null();
}

bool is_date(const json::object& o, std::string_view key) {
  static const std::regex kDate(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)");
  const auto* v = o.if_contains(key);
  return v && v->is_string() && std::regex_match(std::string(v->as_string()), kDate);
}

bool is_sid_of(const json::object& o, std::string_view key, std::string_view prefix) {
  const std::regex sid("^" + std::string(prefix) + "[0-9a-f]{32}$");
  const auto* v = o.if_contains(key);
  return v && v->is_string() && std::regex_match(std::string(v->as_string()), sid);
}

std::string not_found_body(std::string_view path) {
  return R"({"code":20404,"message":"The requested resource )" + std::string(path) +
         R"( was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404})";
}

// A Twilio error body: exactly {code, message, more_info, status}, matching the HTTP status.
::testing::AssertionResult IsTwilioError(const HttpResponse& r, unsigned status, int code) {
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure() << why << " (HTTP " << r.status << ", body " << r.body << ")";
  };
  if (r.status != status) return fail("expected HTTP " + std::to_string(status));
  if (!r.json.is_object()) return fail("body is not a JSON object");
  const auto& o = r.json.as_object();
  if (keys_of(o) != std::set<std::string>{"code", "message", "more_info", "status"})
    return fail("wrong keys");
  if (!o.at("code").is_int64() || o.at("code").as_int64() != code)
    return fail("expected code " + std::to_string(code));
  if (!o.at("status").is_int64() || o.at("status").as_int64() != static_cast<std::int64_t>(status)) {
    return fail("status field differs");
  }
  if (str(o, "more_info") != "https://www.twilio.com/docs/errors/" + std::to_string(code))
    return fail("more_info");
  if (!o.at("message").is_string() || o.at("message").as_string().empty()) return fail("empty message");
  if (r.header("Content-Type").find("application/json") == std::string::npos)
    return fail("not application/json");
  return ::testing::AssertionSuccess();
}

std::string apn_token(int i) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", i);
  return std::string(56, 'a') + buf;
}
std::string fcm_token(int i) { return "fcm-token-" + std::to_string(i) + ":APA91b"; }
std::string phone(int i) { return "+1415555" + std::to_string(1000 + i); }

std::string next_day(std::string_view iso_date_time) {
  auto midnight = parse_date(iso_date_time.substr(0, 10));
  if (!midnight) return "bad";
  return format_iso8601(*midnight + 86400).substr(0, 10);
}

class ApiTest : public ApiFixture {
 protected:
  std::string create_credential(HttpClient& c, const Form& form) {
    auto r = c.post_form("/v1/Credentials", form);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(object_of(r), "sid") : std::string();
  }
  std::string apn_credential(HttpClient& c) {
    return create_credential(c, {{"Type", "apn"},
                                 {"Certificate", apn_pair().certificate_pem},
                                 {"PrivateKey", apn_pair().private_key_pem}});
  }
  std::string fcm_credential(HttpClient& c) {
    return create_credential(c, {{"Type", "fcm"}, {"Secret", service_account()}});
  }
  std::string gcm_credential(HttpClient& c) {
    return create_credential(c, {{"Type", "gcm"}, {"ApiKey", service_account()}});
  }
  HttpResponse post_binding(HttpClient& c, const std::string& service, Form form) {
    return c.post_form("/v1/Services/" + service + "/Bindings", form);
  }
  std::string create_binding(HttpClient& c, const std::string& service, const std::string& identity,
                             const std::string& type, const std::string& address, Form extra = {}) {
    Form form{{"Identity", identity}, {"BindingType", type}, {"Address", address}};
    form.insert(form.end(), extra.begin(), extra.end());
    auto r = post_binding(c, service, form);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(object_of(r), "sid") : std::string();
  }
  // Follows next_page_url verbatim from `first` to the end; returns every item's sid, in order.
  std::vector<std::string> follow_pages(HttpClient& c, const std::string& first, std::string_view key,
                                        const std::vector<std::string>& must_carry, int* pages = nullptr) {
    std::vector<std::string> sids;
    std::string url = first;
    int n = 0;
    while (!url.empty() && n < 100) {
      auto r = c.get(url);
      EXPECT_EQ(r.status, 200u) << url << ": " << r.body;
      if (r.status != 200) break;
      ++n;
      for (const auto& item : array_at(object_of(r), key)) sids.push_back(str(item.as_object(), "sid"));
      const auto& meta = meta_of(r);
      EXPECT_EQ(str(meta, "key"), key);
      const auto& next = meta.at("next_page_url");
      if (next.is_null()) break;
      url = std::string(next.as_string());
      EXPECT_TRUE(url.starts_with(base_url() + "/")) << url;
      EXPECT_NE(url.find("PageToken="), std::string::npos) << url;
      for (const auto& part : must_carry)
        EXPECT_NE(url.find(part), std::string::npos) << part << " not in " << url;
    }
    if (pages) *pages = n;
    return sids;
  }
};

// ---------------------------------------------------------------- health, auth, routing

TEST_F(ApiTest, HealthzAnswersWithoutAuth) {
  auto c = anonymous_client();
  auto r = c.get("/healthz");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(r.has_header("WWW-Authenticate"));
  HttpRequest post;
  post.method = "POST";
  post.target = "/healthz";
  auto wrong = c.send(post);
  EXPECT_TRUE(IsTwilioError(wrong, 405, 20004));
  EXPECT_EQ(wrong.header("Allow"), "GET");
  // Not ready (store or listener not up yet): 503, still without auth.
  set_ready(false);
  EXPECT_EQ(c.get("/healthz").status, 503u);
  set_ready(true);
  EXPECT_EQ(c.get("/healthz").status, 200u);
}

TEST_F(ApiTest, MissingOrWrongAuthIs401WithChallenge) {
  const std::vector<std::optional<std::string>> auths = {
      std::string(),                                                             // none
      HttpClient::basic_auth(kAccountSid, "wrong-token"),                        // wrong token
      HttpClient::basic_auth("AC00000000000000000000000000000000", kAuthToken),  // unknown account
      HttpClient::basic_auth(kAccountSid, kOtherAuthToken),                      // another account's token
      HttpClient::basic_auth(kAccountSid, kApiKeySecret),  // the key's secret, as account
      HttpClient::basic_auth(kApiKeySid, kAuthToken),      // the account's token, as key
      HttpClient::basic_auth(kAccountSid, ""),             // empty password
      "Basic !!!not-base64!!!",
      "Bearer " + std::string(kAuthToken),
  };
  auto c = anonymous_client();
  for (const auto& auth : auths) {
    HttpRequest req;
    req.target = "/v1/Services";
    req.authorization = auth;
    auto r = c.send(req);
    EXPECT_TRUE(IsTwilioError(r, 401, 20003)) << "Authorization: " << *auth;
    EXPECT_EQ(r.header("WWW-Authenticate"), R"(Basic realm="Twilio API")") << "Authorization: " << *auth;
  }
}

TEST_F(ApiTest, AuthenticationComesBeforeRoutingAndMethods) {
  auto anonymous = anonymous_client();
  for (const std::string& target : std::vector<std::string>{"/v1/NoSuchThing", "/nope", "/v1//Services",
                                                            "/v1/Services/IS0/Bindings/x/y"}) {
    EXPECT_TRUE(IsTwilioError(anonymous.get(target), 401, 20003)) << target;
  }
  HttpRequest put;
  put.method = "PUT";
  put.target = "/v1/Services";
  EXPECT_TRUE(IsTwilioError(anonymous.send(put), 401, 20003));
  // A body that would be 400 is still 401 first.
  HttpRequest bad;
  bad.method = "POST";
  bad.target = "/v1/Services";
  bad.body = "Bogus=%zz";
  bad.content_type = "application/x-www-form-urlencoded";
  EXPECT_TRUE(IsTwilioError(anonymous.send(bad), 401, 20003));

  auto c = client();
  auto r = c.get("/v1/NoSuchThing");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, not_found_body("/v1/NoSuchThing"));
}

TEST_F(ApiTest, ApiKeyAuthenticatesAsItsAccount) {
  HttpClient key("127.0.0.1", port());
  key.set_basic_auth(kApiKeySid, kApiKeySecret);
  auto created = key.post_form("/v1/Services", {{"FriendlyName", "via key"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(str(object_of(created), "account_sid"), kAccountSid);
  auto sid = str(object_of(created), "sid");

  // The account's own token sees it; the other account does not.
  auto c = client();
  EXPECT_EQ(c.get("/v1/Services/" + sid).status, 200u);
  auto other = other_client();
  EXPECT_EQ(other.get("/v1/Services/" + sid).status, 404u);
  // The same key with a wrong secret is refused.
  key.set_basic_auth(kApiKeySid, "not-the-secret");
  EXPECT_TRUE(IsTwilioError(key.get("/v1/Services/" + sid), 401, 20003));
}

TEST_F(ApiTest, MissingResourceIsExact404) {
  auto c = client();
  const std::string service = "IS" + std::string(32, '0');
  for (const std::string& path :
       std::vector<std::string>{"/v1/Services/" + service, "/v1/Credentials/CR" + std::string(32, '1'),
                                "/v1/Services/" + service + "/Bindings",
                                "/v1/Services/" + service + "/Bindings/BS" + std::string(32, '2'),
                                "/conversations/v1/Services/" + service + "/Bindings"}) {
    auto r = c.get(path);
    EXPECT_EQ(r.status, 404u) << path;
    EXPECT_EQ(r.body, not_found_body(path));
  }
  // Creating a binding in a missing service, and deleting a missing service.
  auto r = c.post_form("/v1/Services/" + service + "/Bindings",
                       {{"Identity", "a"}, {"BindingType", "sms"}, {"Address", phone(1)}});
  EXPECT_EQ(r.body, not_found_body("/v1/Services/" + service + "/Bindings"));
  // A missing service is 404 before any complaint about the credentials named.
  r = c.post_form("/v1/Services/" + service, {{"ApnCredentialSid", "CR" + std::string(32, '9')}});
  EXPECT_EQ(r.body, not_found_body("/v1/Services/" + service));
  r = c.del("/v1/Services/" + service);
  EXPECT_EQ(r.body, not_found_body("/v1/Services/" + service));
  // Query strings are not part of the path in the message.
  r = c.get("/v1/Services/" + service + "?PageSize=3");
  EXPECT_EQ(r.body, not_found_body("/v1/Services/" + service));
}

TEST_F(ApiTest, AnotherAccountsResourcesAreReportedAsMissing) {
  auto c = client();
  auto credential = fcm_credential(c);
  auto service = create_service(c, {{"FcmCredentialSid", credential}});
  auto binding = create_binding(c, service, "alice", "fcm", fcm_token(1));
  ASSERT_FALSE(binding.empty());

  auto other = other_client();
  const std::string cred_path = "/v1/Credentials/" + credential;
  const std::string service_path = "/v1/Services/" + service;
  const std::string binding_path = service_path + "/Bindings/" + binding;
  const std::string conv_path = "/conversations/v1/Services/" + service + "/Bindings/" + binding;
  for (const auto& path : {cred_path, service_path, binding_path, service_path + "/Bindings", conv_path,
                           "/conversations/v1/Services/" + service + "/Bindings"}) {
    EXPECT_EQ(other.get(path).body, not_found_body(path)) << "GET " << path;
  }
  for (const auto& path : {cred_path, service_path, binding_path, conv_path}) {
    EXPECT_EQ(other.del(path).body, not_found_body(path)) << "DELETE " << path;
  }
  EXPECT_EQ(other.post_form(cred_path, {{"FriendlyName", "x"}}).body, not_found_body(cred_path));
  EXPECT_EQ(other.post_form(service_path, {{"FriendlyName", "x"}}).body, not_found_body(service_path));
  EXPECT_EQ(other
                .post_form(service_path + "/Bindings",
                           {{"Identity", "mallory"}, {"BindingType", "fcm"}, {"Address", fcm_token(2)}})
                .body,
            not_found_body(service_path + "/Bindings"));
  // The other account cannot use the credential either: to it, the credential does not exist.
  auto r = other.post_form("/v1/Services", {{"FcmCredentialSid", credential}});
  EXPECT_TRUE(IsTwilioError(r, 400, 52002));
  // The other account's lists do not show them.
  EXPECT_TRUE(array_at(object_of(other.get("/v1/Credentials")), "credentials").empty());
  EXPECT_TRUE(array_at(object_of(other.get("/v1/Services")), "services").empty());

  // Nothing was changed for the owner.
  EXPECT_EQ(c.get(cred_path).status, 200u);
  auto s = c.get(service_path);
  EXPECT_EQ(s.status, 200u);
  EXPECT_TRUE(is_null(object_of(s), "friendly_name"));
  EXPECT_EQ(c.get(binding_path).status, 200u);
}

TEST_F(ApiTest, NonCanonicalPathsAre404) {
  auto c = client();
  auto service = create_service(c);
  const std::string ok = "/v1/Services/" + service;
  ASSERT_EQ(c.get(ok).status, 200u);
  for (const std::string& path : std::vector<std::string>{
           "/v1/Services/" + service + "/", "/v1//Services/" + service, "//v1/Services/" + service,
           "/v1/./Services/" + service, "/v1/Services/./" + service, "/v1/Services/../Services/" + service,
           "/v1/Services/" + service + "/.", "/v1/Services//", "/v1/Services/", "/v1/services/" + service,
           "/V1/Services/" + service, "/v1/Services/" + service + "/Bindings/", "/v1", "/"}) {
    auto r = c.get(path);
    EXPECT_EQ(r.status, 404u) << path << ": " << r.body;
    EXPECT_EQ(r.body, not_found_body(path));
  }
}

TEST_F(ApiTest, WrongMethodIs405WithAllow) {
  auto c = client();
  auto service = create_service(c);
  auto binding = create_binding(c, service, "alice", "sms", phone(1));
  const std::string s = "/v1/Services/" + service;
  struct Case {
    std::string method, path;
    std::set<std::string> allow;
  };
  const std::vector<Case> cases = {
      {"PUT", "/v1/Services", {"GET", "POST"}},
      {"DELETE", "/v1/Services", {"GET", "POST"}},
      {"PATCH", s, {"GET", "POST", "DELETE"}},
      {"PUT", "/v1/Credentials", {"GET", "POST"}},
      {"PUT", "/v1/Credentials/CR" + std::string(32, 'a'), {"GET", "POST", "DELETE"}},
      {"DELETE", s + "/Bindings", {"GET", "POST"}},
      {"POST", s + "/Bindings/" + binding, {"GET", "DELETE"}},
      {"POST", "/conversations/v1/Services/" + service + "/Bindings", {"GET"}},
      {"DELETE", "/conversations/v1/Services/" + service + "/Bindings", {"GET"}},
      {"POST", "/conversations/v1/Services/" + service + "/Bindings/" + binding, {"GET", "DELETE"}},
  };
  for (const auto& k : cases) {
    HttpRequest req;
    req.method = k.method;
    req.target = k.path;
    auto r = c.send(req);
    EXPECT_TRUE(IsTwilioError(r, 405, 20004)) << k.method << " " << k.path;
    std::set<std::string> allow;
    std::string header = r.header("Allow");
    std::size_t pos = 0;
    while (pos < header.size()) {
      auto comma = header.find(',', pos);
      if (comma == std::string::npos) comma = header.size();
      auto item = header.substr(pos, comma - pos);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (!item.empty()) allow.insert(item);
      pos = comma + 1;
    }
    EXPECT_EQ(allow, k.allow) << k.method << " " << k.path << ": Allow: " << header;
  }
  // The binding is still there: POST on it changed nothing.
  EXPECT_EQ(c.get(s + "/Bindings/" + binding).status, 200u);
}

TEST_F(ApiTest, UnknownBodyParameterIs400AndChangesNothing) {
  auto c = client();
  EXPECT_TRUE(
      IsTwilioError(c.post_form("/v1/Services", {{"FriendlyName", "x"}, {"Colour", "blue"}}), 400, 20001));
  EXPECT_TRUE(IsTwilioError(
      c.post_form("/v1/Credentials", {{"Type", "fcm"}, {"Secret", service_account()}, {"Sandbox2", "true"}}),
      400, 20001));
  auto service = create_service(c);
  EXPECT_TRUE(IsTwilioError(
      post_binding(c, service,
                   {{"Identity", "alice"}, {"BindingType", "sms"}, {"Address", phone(1)}, {"Tags", "vip"}}),
      400, 20001));
  // Parameters are case-sensitive, as in Twilio.
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services/" + service, {{"friendlyname", "x"}}), 400, 20001));
  // Type is fixed at create: on update it is an unknown parameter.
  auto credential = fcm_credential(c);
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials/" + credential, {{"Type", "gcm"}}), 400, 20001));

  EXPECT_EQ(array_at(object_of(c.get("/v1/Services")), "services").size(), 1u);
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Services/" + service + "/Bindings")), "bindings").empty());
  EXPECT_TRUE(is_null(object_of(c.get("/v1/Services/" + service)), "friendly_name"));
  // Unknown query parameters are ignored.
  EXPECT_EQ(c.get("/v1/Services?Colour=blue").status, 200u);
}

TEST_F(ApiTest, InvalidFormEncodingOrUtf8Is400) {
  auto c = client();
  auto raw_post = [&](const std::string& target, const std::string& body) {
    HttpRequest req;
    req.method = "POST";
    req.target = target;
    req.body = body;
    req.content_type = "application/x-www-form-urlencoded";
    return c.send(req);
  };
  const std::vector<std::string> bodies = {
      "FriendlyName=%zz",           // not a percent escape
      "FriendlyName=abc%2",         // truncated escape
      "FriendlyName=%C3%28",        // invalid continuation byte
      "FriendlyName=%C0%AF",        // overlong '/'
      "FriendlyName=%ED%A0%80",     // UTF-16 surrogate
      "FriendlyName=%F4%90%80%80",  // past U+10FFFF
      "FriendlyName=%FF",
      "Friendly%FFName=x",     // in a key
      "FriendlyName=caf\xC3",  // raw truncated sequence
  };
  for (const auto& body : bodies) {
    EXPECT_TRUE(IsTwilioError(raw_post("/v1/Services", body), 400, 20001)) << body;
  }
  for (const std::string& query :
       std::vector<std::string>{"?PageSize=%zz", "?FriendlyName=%C3%28", "?FriendlyName=%ED%A0%80"}) {
    EXPECT_TRUE(IsTwilioError(c.get("/v1/Services" + query), 400, 20001)) << query;
  }
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Services")), "services").empty())
      << "a bad request created something";

  // Valid UTF-8, '+' as space and escaped reserved characters round-trip.
  auto ok = raw_post("/v1/Services", "FriendlyName=Caf%C3%A9+%E2%98%95+%26+%F0%9F%93%B1%3D1");
  ASSERT_EQ(ok.status, 201u) << ok.body;
  EXPECT_EQ(str(object_of(ok), "friendly_name"), "Caf\xC3\xA9 \xE2\x98\x95 & \xF0\x9F\x93\xB1=1");
}

TEST_F(ApiTest, OversizedBodyIsTwilio413) {
  auto c = client();
  HttpRequest req;
  req.method = "POST";
  req.target = "/v1/Services";
  req.body = "FriendlyName=" + std::string(config()->server.max_body_bytes, 'x');
  req.content_type = "application/x-www-form-urlencoded";
  auto r = c.send(req);
  EXPECT_TRUE(IsTwilioError(r, 413, 20413));
  auto list = client().get("/v1/Services");
  EXPECT_TRUE(array_at(object_of(list), "services").empty());
}

// ---------------------------------------------------------------- credentials

void expect_credential_shape(const json::object& o, const std::string& base_url, std::string_view type) {
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"sid", "account_sid", "friendly_name", "type", "sandbox",
                                               "date_created", "date_updated", "url"}))
      << json::serialize(o);
  EXPECT_TRUE(is_sid_of(o, "sid", "CR")) << json::serialize(o);
  EXPECT_EQ(str(o, "account_sid"), ApiFixture::kAccountSid);
  EXPECT_EQ(str(o, "type"), type);
  EXPECT_TRUE(o.at("sandbox").is_string()) << json::serialize(o);
  EXPECT_TRUE(is_date(o, "date_created")) << json::serialize(o);
  EXPECT_TRUE(is_date(o, "date_updated")) << json::serialize(o);
  EXPECT_EQ(str(o, "url"), base_url + "/v1/Credentials/" + str(o, "sid"));
}

// No secret material anywhere in a response body.
void expect_no_secrets(const HttpResponse& r) {
  for (const std::string& needle :
       std::vector<std::string>{"certificate", "private_key", "secret", "api_key", "BEGIN", "PRIVATE",
                                "client_email", "notifyd-test@", "token_uri", "-----"}) {
    EXPECT_EQ(r.body.find(needle), std::string::npos) << needle << " in " << r.body;
  }
}

TEST_F(ApiTest, CreatesApnCertificateCredentialWithoutEchoingSecrets) {
  auto c = client();
  auto r = c.post_form("/v1/Credentials", {{"Type", "apn"},
                                           {"FriendlyName", "ios prod"},
                                           {"Certificate", apn_pair().certificate_pem},
                                           {"PrivateKey", apn_pair().private_key_pem},
                                           {"Sandbox", "true"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto& o = object_of(r);
  expect_credential_shape(o, base_url(), "apn");
  EXPECT_EQ(str(o, "friendly_name"), "ios prod");
  EXPECT_EQ(str(o, "sandbox"), "true");
  expect_no_secrets(r);
  const auto sid = str(o, "sid");

  auto fetched = c.get("/v1/Credentials/" + sid);
  ASSERT_EQ(fetched.status, 200u);
  expect_credential_shape(object_of(fetched), base_url(), "apn");
  EXPECT_EQ(str(object_of(fetched), "sandbox"), "true");
  expect_no_secrets(fetched);

  // Sandbox defaults to "false"; a key in the traditional PKCS#1 encoding is accepted too.
  auto second =
      c.post_form("/v1/Credentials", {{"Type", "apn"},
                                      {"Certificate", other_apn_pair().certificate_pem},
                                      {"PrivateKey", to_traditional_pem(other_apn_pair().private_key_pem)}});
  ASSERT_EQ(second.status, 201u) << second.body;
  EXPECT_EQ(str(object_of(second), "sandbox"), "false");
  EXPECT_TRUE(is_null(object_of(second), "friendly_name"));

  auto list = c.get("/v1/Credentials");
  ASSERT_EQ(list.status, 200u);
  const auto& items = array_at(object_of(list), "credentials");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(str(items[0].as_object(), "sid"), sid);
  for (const auto& item : items) expect_credential_shape(item.as_object(), base_url(), "apn");
  expect_no_secrets(list);
  EXPECT_EQ(str(meta_of(list), "key"), "credentials");
}

TEST_F(ApiTest, CreatesApnTokenAuthCredential) {
  auto c = client();
  auto r = c.post_form("/v1/Credentials", {{"Type", "apn"},
                                           {"PrivateKey", p8_key()},
                                           {"ApnKeyId", "ABC123DEFG"},
                                           {"ApnTeamId", "TEAM123456"},
                                           {"ApnTopic", "com.example.notifyd"},
                                           {"Sandbox", "False"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  expect_credential_shape(object_of(r), base_url(), "apn");
  EXPECT_EQ(str(object_of(r), "sandbox"), "false");
  expect_no_secrets(r);
  EXPECT_EQ(r.body.find("ABC123DEFG"), std::string::npos) << "key id echoed: " << r.body;

  // Each of the token fields is required, and a certificate excludes token auth.
  const Form full = {{"Type", "apn"},
                     {"PrivateKey", p8_key()},
                     {"ApnKeyId", "ABC123DEFG"},
                     {"ApnTeamId", "TEAM123456"},
                     {"ApnTopic", "com.example.notifyd"}};
  for (std::size_t drop = 1; drop < full.size(); ++drop) {
    Form f = full;
    f.erase(f.begin() + static_cast<std::ptrdiff_t>(drop));
    EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", f), 400, 20001))
        << "without " << full[drop].first;
  }
  Form with_cert = full;
  with_cert.emplace_back("Certificate", apn_pair().certificate_pem);
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", with_cert), 400, 20001));
  Form bad_key_id = full;
  bad_key_id[2].second = "short";
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", bad_key_id), 400, 20001));
  EXPECT_EQ(array_at(object_of(c.get("/v1/Credentials")), "credentials").size(), 1u);
}

TEST_F(ApiTest, CreatesFcmAndGcmCredentials) {
  auto c = client();
  auto fcm = c.post_form("/v1/Credentials",
                         {{"Type", "fcm"}, {"FriendlyName", "android"}, {"Secret", service_account()}});
  ASSERT_EQ(fcm.status, 201u) << fcm.body;
  expect_credential_shape(object_of(fcm), base_url(), "fcm");
  EXPECT_EQ(str(object_of(fcm), "friendly_name"), "android");
  expect_no_secrets(fcm);

  auto gcm = c.post_form("/v1/Credentials", {{"Type", "gcm"}, {"ApiKey", service_account()}});
  ASSERT_EQ(gcm.status, 201u) << gcm.body;
  expect_credential_shape(object_of(gcm), base_url(), "gcm");
  expect_no_secrets(gcm);

  // The field belongs to the type: fcm takes Secret, gcm takes ApiKey.
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", {{"Type", "fcm"}, {"ApiKey", service_account()}}),
                            400, 20001));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", {{"Type", "gcm"}, {"Secret", service_account()}}),
                            400, 20001));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials", {{"Type", "fcm"},
                                                            {"Secret", service_account()},
                                                            {"Certificate", apn_pair().certificate_pem}}),
                            400, 20001));
}

TEST_F(ApiTest, InvalidCredentialMaterialIs400) {
  auto c = client();
  const std::string garbage_pem =
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
  const std::vector<std::pair<std::string, Form>> cases = {
      {"no Type", {{"Secret", service_account()}}},
      {"bad Type", {{"Type", "pigeon"}, {"Secret", service_account()}}},
      {"apn without Certificate", {{"Type", "apn"}, {"PrivateKey", apn_pair().private_key_pem}}},
      {"apn without PrivateKey", {{"Type", "apn"}, {"Certificate", apn_pair().certificate_pem}}},
      {"apn garbage certificate",
       {{"Type", "apn"}, {"Certificate", garbage_pem}, {"PrivateKey", apn_pair().private_key_pem}}},
      {"apn not PEM", {{"Type", "apn"}, {"Certificate", "hello"}, {"PrivateKey", "world"}}},
      {"apn mismatched key",
       {{"Type", "apn"},
        {"Certificate", apn_pair().certificate_pem},
        {"PrivateKey", other_apn_pair().private_key_pem}}},
      {"apn bad Sandbox",
       {{"Type", "apn"},
        {"Certificate", apn_pair().certificate_pem},
        {"PrivateKey", apn_pair().private_key_pem},
        {"Sandbox", "yes"}}},
      {"fcm without Secret", {{"Type", "fcm"}}},
      {"fcm Secret not JSON", {{"Type", "fcm"}, {"Secret", "AIzaSyLegacyServerKey"}}},
      {"fcm Secret empty object", {{"Type", "fcm"}, {"Secret", "{}"}}},
      {"gcm ApiKey not JSON", {{"Type", "gcm"}, {"ApiKey", "AAAA:legacy"}}},
  };
  for (const auto& [name, form] : cases) {
    auto r = c.post_form("/v1/Credentials", form);
    EXPECT_TRUE(IsTwilioError(r, 400, 20001)) << name;
    // Error messages may name the field, never echo its value.
    for (const std::string& needle : std::vector<std::string>{"BEGIN", "-----", "MII", "notifyd-test@",
                                                              "AIzaSy", "AAAA:legacy", "hello"}) {
      EXPECT_EQ(r.body.find(needle), std::string::npos) << name << ": " << needle << " in " << r.body;
    }
  }
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Credentials")), "credentials").empty());
}

TEST_F(ApiTest, UpdatesCredentialFriendlyNameAndRefusesBadMaterial) {
  auto c = client();
  auto token = create_credential(c, {{"Type", "apn"},
                                     {"PrivateKey", p8_key()},
                                     {"ApnKeyId", "ABC123DEFG"},
                                     {"ApnTeamId", "TEAM123456"},
                                     {"ApnTopic", "com.example.notifyd"}});
  for (const auto& sid : {apn_credential(c), fcm_credential(c), gcm_credential(c), token}) {
    ASSERT_FALSE(sid.empty());
    const std::string path = "/v1/Credentials/" + sid;
    auto before = object_of(c.get(path));
    auto r = c.post_form(path, {{"FriendlyName", "renamed"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto& o = object_of(r);
    EXPECT_EQ(str(o, "friendly_name"), "renamed");
    EXPECT_EQ(str(o, "type"), str(before, "type"));
    EXPECT_EQ(str(o, "date_created"), str(before, "date_created"));
    EXPECT_GE(str(o, "date_updated"), str(before, "date_updated"));
    expect_no_secrets(r);
    EXPECT_EQ(str(object_of(c.get(path)), "friendly_name"), "renamed");
  }
  // Bad material on update is refused and changes nothing (the stored secret still validates).
  auto apn = apn_credential(c);
  EXPECT_TRUE(IsTwilioError(
      c.post_form("/v1/Credentials/" + apn, {{"Certificate", "garbage"}, {"FriendlyName", "x"}}), 400,
      20001));
  auto fcm = fcm_credential(c);
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Credentials/" + fcm, {{"Secret", "{}"}}), 400, 20001));
  EXPECT_TRUE(is_null(object_of(c.get("/v1/Credentials/" + apn)), "friendly_name"));
  auto again = c.post_form("/v1/Credentials/" + apn, {{"Sandbox", "true"}});
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(str(object_of(again), "sandbox"), "true");
}

TEST_F(ApiTest, DeletesCredentialWith204ThenAnswers404) {
  auto c = client();
  auto sid = fcm_credential(c);
  auto service = create_service(c, {{"FcmCredentialSid", sid}});
  auto binding = create_binding(c, service, "alice", "fcm", fcm_token(1), {{"CredentialSid", sid}});
  const std::string path = "/v1/Credentials/" + sid;
  auto r = c.del(path);
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty()) << r.body;
  EXPECT_EQ(c.get(path).body, not_found_body(path));
  EXPECT_EQ(c.del(path).body, not_found_body(path));
  EXPECT_EQ(c.post_form(path, {{"FriendlyName", "x"}}).body, not_found_body(path));
  // The service no longer refers to it.
  auto s = c.get("/v1/Services/" + service);
  ASSERT_EQ(s.status, 200u);
  EXPECT_TRUE(is_null(object_of(s), "fcm_credential_sid")) << s.body;
  // Neither does the binding (it stays, and delivers with the service's credential).
  auto b = c.get("/v1/Services/" + service + "/Bindings/" + binding);
  ASSERT_EQ(b.status, 200u);
  EXPECT_TRUE(is_null(object_of(b), "credential_sid")) << b.body;
}

// ---------------------------------------------------------------- services

TEST_F(ApiTest, ServiceDefaultsAndTypes) {
  auto c = client();
  auto r = c.post_form("/v1/Services", {});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto& o = object_of(r);
  EXPECT_EQ(keys_of(o), (std::set<std::string>{"sid",
                                               "account_sid",
                                               "friendly_name",
                                               "date_created",
                                               "date_updated",
                                               "apn_credential_sid",
                                               "gcm_credential_sid",
                                               "fcm_credential_sid",
                                               "messaging_service_sid",
                                               "facebook_messenger_page_id",
                                               "default_apn_notification_protocol_version",
                                               "default_gcm_notification_protocol_version",
                                               "default_fcm_notification_protocol_version",
                                               "log_enabled",
                                               "url",
                                               "links",
                                               "alexa_skill_id",
                                               "default_alexa_notification_protocol_version",
                                               "delivery_callback_url",
                                               "delivery_callback_enabled"}));
  EXPECT_TRUE(is_sid_of(o, "sid", "IS"));
  EXPECT_EQ(str(o, "account_sid"), kAccountSid);
  EXPECT_TRUE(is_date(o, "date_created"));
  EXPECT_TRUE(is_date(o, "date_updated"));
  for (auto key :
       {"friendly_name", "apn_credential_sid", "gcm_credential_sid", "fcm_credential_sid",
        "messaging_service_sid", "facebook_messenger_page_id", "alexa_skill_id", "delivery_callback_url"}) {
    EXPECT_TRUE(is_null(o, key)) << key;
  }
  for (auto key :
       {"default_apn_notification_protocol_version", "default_gcm_notification_protocol_version",
        "default_fcm_notification_protocol_version", "default_alexa_notification_protocol_version"}) {
    EXPECT_EQ(str(o, key), "3") << key;
  }
  ASSERT_TRUE(o.at("log_enabled").is_bool());
  EXPECT_TRUE(o.at("log_enabled").as_bool());
  ASSERT_TRUE(o.at("delivery_callback_enabled").is_bool());
  EXPECT_FALSE(o.at("delivery_callback_enabled").as_bool());
  const std::string url = base_url() + "/v1/Services/" + str(o, "sid");
  EXPECT_EQ(str(o, "url"), url);
  const auto& links = o.at("links").as_object();
  EXPECT_EQ(keys_of(links), (std::set<std::string>{"bindings", "notifications", "segments", "users"}));
  EXPECT_EQ(str(links, "bindings"), url + "/Bindings");
  EXPECT_EQ(str(links, "notifications"), url + "/Notifications");
  EXPECT_EQ(str(links, "segments"), url + "/Segments");
  EXPECT_EQ(str(links, "users"), url + "/Users");
}

TEST_F(ApiTest, EveryServiceParameterRoundTrips) {
  auto c = client();
  auto apn = apn_credential(c);
  auto gcm = gcm_credential(c);
  auto fcm = fcm_credential(c);
  const std::string mg = "MG" + std::string(32, 'c');
  const Form form = {{"FriendlyName", "every field"},
                     {"ApnCredentialSid", apn},
                     {"GcmCredentialSid", gcm},
                     {"FcmCredentialSid", fcm},
                     {"MessagingServiceSid", mg},
                     {"FacebookMessengerPageId", "4242"},
                     {"DefaultApnNotificationProtocolVersion", "4"},
                     {"DefaultGcmNotificationProtocolVersion", "4"},
                     {"DefaultFcmNotificationProtocolVersion", "4"},
                     {"LogEnabled", "false"},
                     {"AlexaSkillId", "amzn1.ask.skill.0000"},
                     {"DefaultAlexaNotificationProtocolVersion", "4"},
                     {"DeliveryCallbackUrl", "https://callbacks.example.com/notify?x=1"},
                     {"DeliveryCallbackEnabled", "true"}};
  auto created = c.post_form("/v1/Services", form);
  ASSERT_EQ(created.status, 201u) << created.body;
  const auto sid = str(object_of(created), "sid");
  auto fetched = c.get("/v1/Services/" + sid);
  ASSERT_EQ(fetched.status, 200u);
  for (const auto* r : {&created, &fetched}) {
    const auto& o = object_of(*r);
    EXPECT_EQ(str(o, "friendly_name"), "every field");
    EXPECT_EQ(str(o, "apn_credential_sid"), apn);
    EXPECT_EQ(str(o, "gcm_credential_sid"), gcm);
    EXPECT_EQ(str(o, "fcm_credential_sid"), fcm);
    EXPECT_EQ(str(o, "messaging_service_sid"), mg);
    EXPECT_EQ(str(o, "facebook_messenger_page_id"), "4242");
    EXPECT_EQ(str(o, "default_apn_notification_protocol_version"), "4");
    EXPECT_EQ(str(o, "default_gcm_notification_protocol_version"), "4");
    EXPECT_EQ(str(o, "default_fcm_notification_protocol_version"), "4");
    EXPECT_EQ(str(o, "default_alexa_notification_protocol_version"), "4");
    ASSERT_TRUE(o.at("log_enabled").is_bool());
    EXPECT_FALSE(o.at("log_enabled").as_bool());
    EXPECT_EQ(str(o, "alexa_skill_id"), "amzn1.ask.skill.0000");
    EXPECT_EQ(str(o, "delivery_callback_url"), "https://callbacks.example.com/notify?x=1");
    ASSERT_TRUE(o.at("delivery_callback_enabled").is_bool());
    EXPECT_TRUE(o.at("delivery_callback_enabled").as_bool());
  }

  // Update: a few fields change, the rest stay; an empty value clears an optional one.
  auto updated = c.post_form("/v1/Services/" + sid, {{"FriendlyName", "renamed"},
                                                     {"LogEnabled", "True"},
                                                     {"ApnCredentialSid", ""},
                                                     {"DefaultFcmNotificationProtocolVersion", "3"}});
  ASSERT_EQ(updated.status, 200u) << updated.body;
  const auto& u = object_of(updated);
  EXPECT_EQ(str(u, "friendly_name"), "renamed");
  EXPECT_TRUE(u.at("log_enabled").as_bool());
  EXPECT_TRUE(is_null(u, "apn_credential_sid"));
  EXPECT_EQ(str(u, "default_fcm_notification_protocol_version"), "3");
  EXPECT_EQ(str(u, "gcm_credential_sid"), gcm);
  EXPECT_EQ(str(u, "messaging_service_sid"), mg);
  EXPECT_EQ(str(u, "date_created"), str(object_of(created), "date_created"));

  // Bad values are 400 and change nothing.
  for (const Form& bad : std::vector<Form>{{{"LogEnabled", "maybe"}},
                                           {{"DefaultApnNotificationProtocolVersion", "5"}},
                                           {{"MessagingServiceSid", "MGxyz"}},
                                           {{"DeliveryCallbackUrl", "ftp://example.com/x"}},
                                           {{"DeliveryCallbackEnabled", "1"}}}) {
    EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services/" + sid, bad), 400, 20001)) << bad[0].first;
    EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", bad), 400, 20001)) << bad[0].first;
  }
  EXPECT_EQ(c.get("/v1/Services/" + sid).body, c.get("/v1/Services/" + sid).body);
  EXPECT_EQ(str(object_of(c.get("/v1/Services/" + sid)), "friendly_name"), "renamed");
  EXPECT_EQ(array_at(object_of(c.get("/v1/Services")), "services").size(), 1u);
}

TEST_F(ApiTest, ServiceCredentialMustExistAndMatchType) {
  auto c = client();
  auto apn = apn_credential(c);
  auto fcm = fcm_credential(c);
  const std::string unknown = "CR" + std::string(32, 'e');
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"ApnCredentialSid", unknown}}), 400, 52002));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"FcmCredentialSid", unknown}}), 400, 52002));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"ApnCredentialSid", fcm}}), 400, 52003));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"FcmCredentialSid", apn}}), 400, 52003));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"GcmCredentialSid", fcm}}), 400, 52003));
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services", {{"ApnCredentialSid", "CR123"}}), 400, 20001));
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Services")), "services").empty());

  auto service = create_service(c, {{"ApnCredentialSid", apn}});
  EXPECT_TRUE(IsTwilioError(c.post_form("/v1/Services/" + service, {{"ApnCredentialSid", fcm}}), 400, 52003));
  EXPECT_TRUE(
      IsTwilioError(c.post_form("/v1/Services/" + service, {{"GcmCredentialSid", unknown}}), 400, 52002));
  EXPECT_EQ(str(object_of(c.get("/v1/Services/" + service)), "apn_credential_sid"), apn);
}

TEST_F(ApiTest, ListsServicesByFriendlyName) {
  auto c = client();
  auto a1 = create_service(c, {{"FriendlyName", "alpha"}});
  create_service(c, {{"FriendlyName", "beta"}});
  auto a2 = create_service(c, {{"FriendlyName", "alpha"}});
  create_service(c);

  auto r = c.get("/v1/Services?FriendlyName=alpha");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto& items = array_at(object_of(r), "services");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(str(items[0].as_object(), "sid"), a1);
  EXPECT_EQ(str(items[1].as_object(), "sid"), a2);
  const auto& meta = meta_of(r);
  EXPECT_EQ(str(meta, "key"), "services");
  EXPECT_NE(str(meta, "url").find("FriendlyName=alpha"), std::string::npos) << str(meta, "url");
  EXPECT_TRUE(str(meta, "first_page_url").starts_with(base_url() + "/v1/Services?"))
      << str(meta, "first_page_url");
  EXPECT_NE(str(meta, "first_page_url").find("FriendlyName=alpha"), std::string::npos);
  EXPECT_TRUE(is_null(meta, "next_page_url"));
  EXPECT_TRUE(is_null(meta, "previous_page_url"));
  EXPECT_EQ(meta.at("page").as_int64(), 0);
  EXPECT_EQ(meta.at("page_size").as_int64(), 50);

  EXPECT_EQ(array_at(object_of(c.get("/v1/Services")), "services").size(), 4u);
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Services?FriendlyName=gamma")), "services").empty());

  // Paging services with a filter carries the filter.
  int pages = 0;
  auto sids = follow_pages(c, "/v1/Services?FriendlyName=alpha&PageSize=1", "services",
                           {"FriendlyName=alpha"}, &pages);
  EXPECT_EQ(sids, (std::vector<std::string>{a1, a2}));
  EXPECT_EQ(pages, 2);
}

TEST_F(ApiTest, DeletesServiceWithItsBindings) {
  auto c = client();
  auto service = create_service(c);
  auto binding = create_binding(c, service, "alice", "sms", phone(1));
  auto r = c.del("/v1/Services/" + service);
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(c.get("/v1/Services/" + service).status, 404u);
  const std::string bpath = "/v1/Services/" + service + "/Bindings/" + binding;
  EXPECT_EQ(c.get(bpath).body, not_found_body(bpath));
}

// ---------------------------------------------------------------- bindings

TEST_F(ApiTest, CreatesBindingWithEverySchemaField) {
  auto c = client();
  auto apn = apn_credential(c);
  auto service = create_service(c, {{"ApnCredentialSid", apn}});
  auto r = post_binding(c, service,
                        {{"Identity", "alice@example.com"},
                         {"BindingType", "apn"},
                         {"Address", apn_token(1)},
                         {"Tag", "vip"},
                         {"Tag", "beta tester"},
                         {"NotificationProtocolVersion", "4"},
                         {"CredentialSid", apn},
                         {"Endpoint", "endpoint-1"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto& o = object_of(r);
  EXPECT_EQ(keys_of(o),
            (std::set<std::string>{"sid", "account_sid", "service_sid", "credential_sid", "date_created",
                                   "date_updated", "notification_protocol_version", "endpoint", "identity",
                                   "binding_type", "address", "tags", "url", "links"}));
  EXPECT_TRUE(is_sid_of(o, "sid", "BS"));
  EXPECT_EQ(str(o, "account_sid"), kAccountSid);
  EXPECT_EQ(str(o, "service_sid"), service);
  EXPECT_EQ(str(o, "credential_sid"), apn);
  EXPECT_TRUE(is_date(o, "date_created"));
  EXPECT_TRUE(is_date(o, "date_updated"));
  EXPECT_EQ(str(o, "notification_protocol_version"), "4");
  EXPECT_EQ(str(o, "endpoint"), "endpoint-1");
  EXPECT_EQ(str(o, "identity"), "alice@example.com");
  EXPECT_EQ(str(o, "binding_type"), "apn");
  EXPECT_EQ(str(o, "address"), apn_token(1));
  std::set<std::string> tags;
  for (const auto& t : array_at(o, "tags")) tags.emplace(t.as_string());
  EXPECT_EQ(tags, (std::set<std::string>{"vip", "beta tester"}));
  const std::string url = base_url() + "/v1/Services/" + service + "/Bindings/" + str(o, "sid");
  EXPECT_EQ(str(o, "url"), url);
  ASSERT_TRUE(o.at("links").is_object());
  for (const auto& link : o.at("links").as_object()) {
    ASSERT_TRUE(link.value().is_string());
    EXPECT_TRUE(
        std::string(link.value().as_string()).starts_with(base_url() + "/v1/Services/" + service + "/"))
        << link.value();
  }

  auto fetched = c.get(url);
  ASSERT_EQ(fetched.status, 200u);
  EXPECT_EQ(object_of(fetched), o);

  // Absent optional values are null.
  auto plain = post_binding(c, service, {{"Identity", "bob"}, {"BindingType", "sms"}, {"Address", phone(2)}});
  ASSERT_EQ(plain.status, 201u) << plain.body;
  EXPECT_TRUE(is_null(object_of(plain), "credential_sid"));
  EXPECT_TRUE(is_null(object_of(plain), "endpoint"));
  EXPECT_TRUE(array_at(object_of(plain), "tags").empty());
}

TEST_F(ApiTest, BindingProtocolVersionDefaultsFromService) {
  auto c = client();
  auto service = create_service(
      c, {{"DefaultFcmNotificationProtocolVersion", "4"}, {"DefaultApnNotificationProtocolVersion", "4"}});
  auto fcm = post_binding(c, service, {{"Identity", "a"}, {"BindingType", "fcm"}, {"Address", fcm_token(1)}});
  ASSERT_EQ(fcm.status, 201u) << fcm.body;
  EXPECT_EQ(str(object_of(fcm), "notification_protocol_version"), "4");
  auto apn = post_binding(c, service, {{"Identity", "a"}, {"BindingType", "apn"}, {"Address", apn_token(1)}});
  EXPECT_EQ(str(object_of(apn), "notification_protocol_version"), "4");
  auto gcm = post_binding(c, service, {{"Identity", "a"}, {"BindingType", "gcm"}, {"Address", fcm_token(2)}});
  EXPECT_EQ(str(object_of(gcm), "notification_protocol_version"), "3");
  auto explicit3 = post_binding(c, service,
                                {{"Identity", "a"},
                                 {"BindingType", "fcm"},
                                 {"Address", fcm_token(3)},
                                 {"NotificationProtocolVersion", "3"}});
  EXPECT_EQ(str(object_of(explicit3), "notification_protocol_version"), "3");
  // Changing the service's default later does not rewrite existing bindings.
  ASSERT_EQ(c.post_form("/v1/Services/" + service, {{"DefaultFcmNotificationProtocolVersion", "3"}}).status,
            200u);
  EXPECT_EQ(str(object_of(c.get(str(object_of(fcm), "url"))), "notification_protocol_version"), "4");
}

TEST_F(ApiTest, BindingValidationErrors) {
  auto c = client();
  auto apn = apn_credential(c);
  auto fcm = fcm_credential(c);
  auto service = create_service(c);
  const Form base = {{"Identity", "alice"}, {"BindingType", "apn"}, {"Address", apn_token(1)}};
  auto without = [&](std::string_view key) {
    Form f;
    for (const auto& kv : base) {
      if (kv.first != key) f.push_back(kv);
    }
    return f;
  };
  auto with = [&](Form extra) {
    Form f = base;
    f.insert(f.end(), extra.begin(), extra.end());
    return f;
  };
  Form tags21 = base;
  for (int i = 0; i < 21; ++i) tags21.emplace_back("Tag", "t" + std::to_string(i));
  struct Case {
    std::string name;
    Form form;
    int code;
  };
  const std::vector<Case> cases = {
      {"missing Identity", without("Identity"), 20001},
      {"missing BindingType", without("BindingType"), 20001},
      {"missing Address", without("Address"), 20001},
      {"empty Identity", {{"Identity", ""}, {"BindingType", "apn"}, {"Address", apn_token(1)}}, 20001},
      {"bad BindingType", {{"Identity", "alice"}, {"BindingType", "pigeon"}, {"Address", "x"}}, 20001},
      {"21 tags", tags21, 20001},
      {"bad CredentialSid pattern", with({{"CredentialSid", "CR1234"}}), 20001},
      {"CredentialSid not CR", with({{"CredentialSid", "XX" + std::string(32, 'a')}}), 20001},
      {"CredentialSid with junk", with({{"CredentialSid", apn + "0"}}), 20001},
      {"unknown credential", with({{"CredentialSid", "CR" + std::string(32, 'f')}}), 52002},
      {"credential of another type", with({{"CredentialSid", fcm}}), 52003},
      {"bad NotificationProtocolVersion", with({{"NotificationProtocolVersion", "7"}}), 20001},
      {"apn address not hex",
       {{"Identity", "a"}, {"BindingType", "apn"}, {"Address", std::string(64, 'z')}},
       20001},
      {"sms address not E.164", {{"Identity", "a"}, {"BindingType", "sms"}, {"Address", "0415 555"}}, 20001},
  };
  for (const auto& k : cases) {
    EXPECT_TRUE(IsTwilioError(post_binding(c, service, k.form), 400, k.code)) << k.name;
  }
  EXPECT_TRUE(array_at(object_of(c.get("/v1/Services/" + service + "/Bindings")), "bindings").empty());

  // 20 tags are fine; a matching credential is fine.
  Form tags20 = base;
  for (int i = 0; i < 20; ++i) tags20.emplace_back("Tag", "t" + std::to_string(i));
  auto ok = post_binding(c, service, tags20);
  ASSERT_EQ(ok.status, 201u) << ok.body;
  EXPECT_EQ(array_at(object_of(ok), "tags").size(), 20u);
  EXPECT_EQ(post_binding(c, service, with({{"CredentialSid", apn}, {"Address", apn_token(2)}})).status, 201u);
}

TEST_F(ApiTest, SameAddressReplacesTheBindingUnderANewSid) {
  auto c = client();
  auto service = create_service(c);
  auto other_service = create_service(c);
  auto first = create_binding(c, service, "alice", "fcm", fcm_token(1), {{"Tag", "old"}});
  auto elsewhere = create_binding(c, other_service, "alice", "fcm", fcm_token(1));
  auto second = create_binding(c, service, "bob", "fcm", fcm_token(1), {{"Tag", "new"}});
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_NE(first, second);

  const std::string base = "/v1/Services/" + service + "/Bindings/";
  EXPECT_EQ(c.get(base + first).body, not_found_body(base + first));
  auto now = c.get(base + second);
  ASSERT_EQ(now.status, 200u);
  EXPECT_EQ(str(object_of(now), "identity"), "bob");
  EXPECT_EQ(array_at(object_of(now), "tags"), (json::array{"new"}));
  auto listed = c.get("/v1/Services/" + service + "/Bindings");
  const auto& items = array_at(object_of(listed), "bindings");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(str(items[0].as_object(), "sid"), second);
  // The other service's binding with that address is untouched.
  EXPECT_EQ(c.get("/v1/Services/" + other_service + "/Bindings/" + elsewhere).status, 200u);
  // The same address under another type is a different binding.
  auto gcm = create_binding(c, service, "bob", "gcm", fcm_token(1));
  EXPECT_NE(gcm, second);
  EXPECT_EQ(c.get(base + second).status, 200u);
  EXPECT_EQ(array_at(object_of(c.get("/v1/Services/" + service + "/Bindings")), "bindings").size(), 2u);
}

TEST_F(ApiTest, TwentyFirstBindingOfAnIdentityEvictsTheOldest) {
  auto c = client();
  auto service = create_service(c);
  std::vector<std::string> sids;
  for (int i = 0; i < 21; ++i) sids.push_back(create_binding(c, service, "alice", "sms", phone(i)));
  const std::string base = "/v1/Services/" + service + "/Bindings/";
  EXPECT_EQ(c.get(base + sids[0]).status, 404u);
  for (int i = 1; i < 21; ++i) EXPECT_EQ(c.get(base + sids[i]).status, 200u) << i;
  auto list = c.get("/v1/Services/" + service + "/Bindings?Identity=alice&PageSize=100");
  EXPECT_EQ(array_at(object_of(list), "bindings").size(), 20u);
}

TEST_F(ApiTest, ListsBindingsWithFiltersAndKeysetPaging) {
  auto c = client();
  auto service = create_service(c);
  std::vector<std::string> alice, alice_vip, bob, all;
  for (int i = 0; i < 7; ++i) {
    Form tags = {{"Tag", "t" + std::to_string(i)}};
    if (i % 2 == 0) tags.emplace_back("Tag", "vip");
    auto sid = create_binding(c, service, "alice", "sms", phone(i), tags);
    alice.push_back(sid);
    all.push_back(sid);
    if (i % 2 == 0) alice_vip.push_back(sid);
    auto b = create_binding(c, service, "bob", "fcm", fcm_token(i), {{"Tag", "vip"}});
    bob.push_back(b);
    all.push_back(b);
  }
  const std::string list = "/v1/Services/" + service + "/Bindings";

  // Everything, three at a time, following next_page_url verbatim.
  int pages = 0;
  EXPECT_EQ(follow_pages(c, list + "?PageSize=3", "bindings", {"PageSize=3"}, &pages), all);
  EXPECT_EQ(pages, 5);
  // Identity filter, carried across pages.
  EXPECT_EQ(
      follow_pages(c, list + "?Identity=alice&PageSize=2", "bindings", {"Identity=alice", "PageSize=2"}),
      alice);
  // Identity is any-of.
  auto both = follow_pages(c, list + "?Identity=alice&Identity=bob&PageSize=4", "bindings",
                           {"Identity=alice", "Identity=bob"});
  EXPECT_EQ(both, all);
  // Tag is all-of, and carried across pages.
  EXPECT_EQ(follow_pages(c, list + "?Identity=alice&Tag=vip&PageSize=1", "bindings",
                         {"Identity=alice", "Tag=vip"}, &pages),
            alice_vip);
  EXPECT_EQ(pages, 4) << "an exact multiple of PageSize must not end with an empty page";
  EXPECT_EQ(follow_pages(c, list + "?Tag=vip&Tag=t2", "bindings", {}), std::vector<std::string>{alice[2]});
  // Implicit tags: `all` and the binding type.
  EXPECT_EQ(follow_pages(c, list + "?Tag=all&PageSize=7", "bindings", {"Tag=all"}, &pages), all);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(follow_pages(c, list + "?Tag=fcm&PageSize=5", "bindings", {"Tag=fcm"}), bob);
  // An Identity with characters to escape is carried correctly.
  auto odd = create_binding(c, service, "a&b=c d", "sms", phone(50));
  create_binding(c, service, "a&b=c d", "sms", phone(51));
  auto odd_list =
      follow_pages(c, list + "?Identity=a%26b%3Dc+d&PageSize=1", "bindings", {"Identity=a%26b%3Dc"});
  ASSERT_EQ(odd_list.size(), 2u);
  EXPECT_EQ(odd_list[0], odd);

  // Going back: previous_page_url from the third page gives the second page again.
  auto p1 = c.get(list + "?PageSize=3");
  auto p2 = c.get(std::string(meta_of(p1).at("next_page_url").as_string()));
  auto p3 = c.get(std::string(meta_of(p2).at("next_page_url").as_string()));
  ASSERT_EQ(p3.status, 200u);
  EXPECT_EQ(meta_of(p3).at("page").as_int64(), 2);
  const auto& prev = meta_of(p3).at("previous_page_url");
  ASSERT_TRUE(prev.is_string()) << p3.body;
  auto back = c.get(std::string(prev.as_string()));
  ASSERT_EQ(back.status, 200u) << back.body;
  EXPECT_EQ(array_at(object_of(back), "bindings"), array_at(object_of(p2), "bindings"));
  EXPECT_EQ(meta_of(back).at("page").as_int64(), 1);
  // From there, forward again reaches the third page, and back again the first.
  auto forward = c.get(std::string(meta_of(back).at("next_page_url").as_string()));
  ASSERT_EQ(forward.status, 200u) << forward.body;
  EXPECT_EQ(array_at(object_of(forward), "bindings"), array_at(object_of(p3), "bindings"));
  const auto& prev1 = meta_of(back).at("previous_page_url");
  ASSERT_TRUE(prev1.is_string()) << back.body;
  auto first = c.get(std::string(prev1.as_string()));
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(array_at(object_of(first), "bindings"), array_at(object_of(p1), "bindings"));
  EXPECT_TRUE(is_null(meta_of(first), "previous_page_url")) << first.body;
  EXPECT_TRUE(is_null(meta_of(p1), "previous_page_url"));
  EXPECT_EQ(str(meta_of(p1), "url"), str(meta_of(p1), "first_page_url"));
  EXPECT_TRUE(str(meta_of(p1), "first_page_url").starts_with(base_url() + list + "?")) << p1.body;
}

TEST_F(ApiTest, BindingListDateFiltersAndLimits) {
  auto c = client();
  auto service = create_service(c);
  create_binding(c, service, "alice", "sms", phone(1));
  auto r = c.get("/v1/Services/" + service + "/Bindings");
  ASSERT_EQ(r.status, 200u);
  const std::string created = str(array_at(object_of(r), "bindings")[0].as_object(), "date_created");
  const std::string today = created.substr(0, 10);
  const std::string tomorrow = next_day(created);
  const std::string list = "/v1/Services/" + service + "/Bindings";
  EXPECT_EQ(array_at(object_of(c.get(list + "?StartDate=" + today + "&EndDate=" + today)), "bindings").size(),
            1u);
  EXPECT_TRUE(array_at(object_of(c.get(list + "?StartDate=" + tomorrow)), "bindings").empty());
  auto filtered = c.get(list + "?StartDate=" + today);
  EXPECT_NE(str(meta_of(filtered), "url").find("StartDate=" + today), std::string::npos) << filtered.body;
  EXPECT_TRUE(IsTwilioError(c.get(list + "?StartDate=2024-13-01"), 400, 20001));
  EXPECT_TRUE(IsTwilioError(c.get(list + "?EndDate=yesterday"), 400, 20001));
  EXPECT_TRUE(IsTwilioError(c.get(list + "?Tag=a&Tag=b&Tag=c&Tag=d&Tag=e&Tag=f"), 400, 20001));
}

TEST_F(ApiTest, PageSizeIsClampedAboveTheMaximumAndRefusedBelowOne) {
  auto c = client();
  auto service = create_service(c);
  const std::string list = "/v1/Services/" + service + "/Bindings";
  auto r = c.get(list + "?PageSize=5000");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(meta_of(r).at("page_size").as_int64(), 1000);
  EXPECT_NE(str(meta_of(r), "url").find("PageSize=1000"), std::string::npos);
  EXPECT_EQ(meta_of(c.get("/v1/Services?PageSize=1001")).at("page_size").as_int64(), 1000);
  EXPECT_EQ(meta_of(c.get("/v1/Credentials?PageSize=99999999")).at("page_size").as_int64(), 1000);
  EXPECT_EQ(meta_of(c.get(list)).at("page_size").as_int64(), 50);
  for (const std::string& bad : std::vector<std::string>{"0", "-1", "abc", "", "1.5"}) {
    EXPECT_TRUE(IsTwilioError(c.get(list + "?PageSize=" + bad), 400, 20001)) << "PageSize=" << bad;
  }
  EXPECT_TRUE(IsTwilioError(c.get(list + "?PageToken=garbage"), 400, 20001));
}

// ---------------------------------------------------------------- Conversations view

TEST_F(ApiTest, ConversationsViewShowsPushBindingsOnly) {
  auto c = client();
  auto service = create_service(c);
  auto apn = create_binding(c, service, "alice", "apn", apn_token(1));
  auto gcm = create_binding(c, service, "alice", "gcm", fcm_token(1));
  auto fcm = create_binding(c, service, "bob", "fcm", fcm_token(2));
  auto sms = create_binding(c, service, "alice", "sms", phone(1));
  const std::string conv = "/conversations/v1/Services/" + service + "/Bindings";

  auto r = c.get(conv);
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto& items = array_at(object_of(r), "bindings");
  ASSERT_EQ(items.size(), 3u);
  std::vector<std::string> sids;
  for (const auto& item : items) {
    const auto& o = item.as_object();
    sids.push_back(str(o, "sid"));
    EXPECT_EQ(keys_of(o), (std::set<std::string>{"sid", "account_sid", "chat_service_sid", "credential_sid",
                                                 "date_created", "date_updated", "endpoint", "identity",
                                                 "binding_type", "message_types", "url"}))
        << json::serialize(o);
    EXPECT_EQ(str(o, "chat_service_sid"), service);
    EXPECT_EQ(str(o, "account_sid"), kAccountSid);
    EXPECT_TRUE(is_date(o, "date_created"));
    EXPECT_TRUE(is_date(o, "date_updated"));
    EXPECT_EQ(str(o, "url"), base_url() + conv + "/" + str(o, "sid"));
    const auto& types = array_at(o, "message_types");
    std::set<std::string> got;
    for (const auto& t : types) got.emplace(t.as_string());
    EXPECT_EQ(got,
              (std::set<std::string>{"new_message", "added_to_conversation", "removed_from_conversation"}));
  }
  EXPECT_EQ(sids, (std::vector<std::string>{apn, gcm, fcm}));
  EXPECT_EQ(str(meta_of(r), "key"), "bindings");
  EXPECT_TRUE(str(meta_of(r), "url").starts_with(base_url() + conv + "?")) << r.body;

  // Filters: BindingType (repeatable) and Identity, carried across pages.
  EXPECT_EQ(follow_pages(c, conv + "?BindingType=apn&BindingType=fcm&PageSize=1", "bindings",
                         {"BindingType=apn", "BindingType=fcm"}),
            (std::vector<std::string>{apn, fcm}));
  EXPECT_EQ(follow_pages(c, conv + "?Identity=alice&PageSize=1", "bindings", {"Identity=alice"}),
            (std::vector<std::string>{apn, gcm}));
  EXPECT_TRUE(array_at(object_of(c.get(conv + "?BindingType=twilsock")), "bindings").empty());
  EXPECT_TRUE(IsTwilioError(c.get(conv + "?BindingType=sms"), 400, 20001));

  // PageSize is clamped to 100 here.
  EXPECT_EQ(meta_of(c.get(conv + "?PageSize=5000")).at("page_size").as_int64(), 100);
  EXPECT_TRUE(IsTwilioError(c.get(conv + "?PageSize=0"), 400, 20001));

  // Fetch: a push binding is there, an sms binding is not.
  auto fetched = c.get(conv + "/" + gcm);
  ASSERT_EQ(fetched.status, 200u);
  EXPECT_EQ(str(object_of(fetched), "binding_type"), "gcm");
  EXPECT_EQ(c.get(conv + "/" + sms).body, not_found_body(conv + "/" + sms));
  EXPECT_EQ(c.del(conv + "/" + sms).body, not_found_body(conv + "/" + sms));
  EXPECT_EQ(c.get("/v1/Services/" + service + "/Bindings/" + sms).status, 200u) << "sms binding was deleted";
}

TEST_F(ApiTest, ConversationsDeleteRemovesTheBindingForBothViews) {
  auto c = client();
  auto service = create_service(c);
  auto apn = create_binding(c, service, "alice", "apn", apn_token(1));
  const std::string conv = "/conversations/v1/Services/" + service + "/Bindings/" + apn;
  const std::string notify = "/v1/Services/" + service + "/Bindings/" + apn;
  ASSERT_EQ(c.get(notify).status, 200u);
  auto r = c.del(conv);
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(c.get(notify).body, not_found_body(notify));
  EXPECT_EQ(c.get(conv).body, not_found_body(conv));
  // And the other way round.
  auto fcm = create_binding(c, service, "alice", "fcm", fcm_token(1));
  EXPECT_EQ(c.del("/v1/Services/" + service + "/Bindings/" + fcm).status, 204u);
  EXPECT_EQ(c.get("/conversations/v1/Services/" + service + "/Bindings/" + fcm).status, 404u);
}

TEST_F(ApiTest, DeletesBindingWith204Then404) {
  auto c = client();
  auto service = create_service(c);
  auto binding = create_binding(c, service, "alice", "sms", phone(1));
  const std::string path = "/v1/Services/" + service + "/Bindings/" + binding;
  auto r = c.del(path);
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(c.get(path).body, not_found_body(path));
  EXPECT_EQ(c.del(path).body, not_found_body(path));
  // The client kept one keep-alive connection throughout.
  EXPECT_EQ(c.connections_opened(), 1);
}

}  // namespace
}  // namespace notifyd::test
