#pragma once
// ApiFixture: the real API stack for one test: a Config built in code (two accounts, one API key), a
// SqliteStore on a temp file, api::Router, http::Server on 127.0.0.1 port 0 (public_url set to the bound
// port), and an io_context run by two threads. SetUp throws (failing the test) if any of it cannot start;
// TearDown stops the server (bounded wait), joins the threads and removes the temp directory.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/config/config.hpp"
#include "tests/support/http_client.hpp"

namespace notifyd::test {

class ApiFixture : public ::testing::Test {
 public:
  static constexpr std::string_view kAccountSid = "AC0123456789abcdef0123456789abcdef";
  static constexpr std::string_view kAuthToken = "token-of-account-one";
  static constexpr std::string_view kApiKeySid = "SKfedcba9876543210fedcba9876543210";
  static constexpr std::string_view kApiKeySecret = "secret-of-api-key";
  static constexpr std::string_view kOtherAccountSid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  static constexpr std::string_view kOtherAuthToken = "token-of-account-two";

 protected:
  ApiFixture();
  ~ApiFixture() override;
  void SetUp() override;
  void TearDown() override;

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port>": the public_url the router renders.
  const std::string& base_url() const { return base_url_; }
  std::shared_ptr<const Config> config() const { return config_; }

  // A client authenticated as the first account (its auth token).
  HttpClient client() const;
  // A client authenticated as the second account.
  HttpClient other_client() const;
  // A client with no credentials.
  HttpClient anonymous_client() const;

  // /healthz answers 200 only while ready (SetUp makes it ready).
  void set_ready(bool ready);

  // Creates a service (201 expected, else the test fails) and returns its SID.
  std::string create_service(HttpClient& c, const Form& form = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const Config> config_;
  std::uint16_t port_ = 0;
  std::string base_url_;
};

}  // namespace notifyd::test
