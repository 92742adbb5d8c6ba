#include "transports/registry/registry.hpp"

#include <mutex>
#include <stdexcept>

#include "transports/apns/apns_transport.hpp"
#include "transports/fcm/fcm_transport.hpp"
#include "transports/messenger/unsupported_transport.hpp"
#include "transports/sms/sms_transport.hpp"

namespace notifyd::transport {
namespace {

ApnsOptions apns_options(const Config& config) {
  ApnsOptions apns;
  apns.production_url = config.apns.production_url;
  apns.sandbox_url = config.apns.sandbox_url;
  apns.ca_file = config.apns.ca_file;
  return apns;
}

FcmOptions fcm_options(const Config& config) {
  FcmOptions fcm;
  fcm.url = config.fcm.url;
  fcm.ca_file = config.fcm.ca_file;
  return fcm;
}

sms::SmsOptions sms_options(const Config& config) {
  sms::SmsOptions sms;
  sms.url = config.sms.url;
  sms.account_sid = config.sms.account_sid;
  sms.auth_token = config.sms.auth_token;
  return sms;
}

}  // namespace

struct TransportRegistry::Impl {
  std::mutex reconfigure_mu;  // one reload at a time: a transport's stage() and commit() must not interleave
  std::unique_ptr<ApnsTransport> apns;
  std::unique_ptr<FcmTransport> fcm;
  std::unique_ptr<sms::SmsTransport> sms;
  std::unique_ptr<messenger::UnsupportedTransport> messenger;
  std::unique_ptr<messenger::UnsupportedTransport> alexa;
  std::unique_ptr<messenger::UnsupportedTransport> unknown;
};

TransportRegistry::TransportRegistry(boost::asio::any_io_executor executor, const Config& config)
    : impl_(std::make_unique<Impl>()) {
  impl_->apns = std::make_unique<ApnsTransport>(executor, apns_options(config));
  impl_->fcm = std::make_unique<FcmTransport>(executor, fcm_options(config));
  impl_->sms = std::make_unique<sms::SmsTransport>(executor, sms_options(config));
  impl_->messenger = std::make_unique<messenger::UnsupportedTransport>("facebook-messenger");
  impl_->alexa = std::make_unique<messenger::UnsupportedTransport>("alexa");
  impl_->unknown = std::make_unique<messenger::UnsupportedTransport>("this binding type");
}

TransportRegistry::~TransportRegistry() = default;

Transport& TransportRegistry::for_binding_type(std::string_view type) {
  if (type == "apn") return *impl_->apns;
  if (type == "fcm" || type == "gcm") return *impl_->fcm;
  if (type == "sms") return *impl_->sms;
  if (type == "facebook-messenger") return *impl_->messenger;
  if (type == "alexa") return *impl_->alexa;
  return *impl_->unknown;
}

std::optional<std::string> TransportRegistry::reconfigure(const Config& config) {
  std::lock_guard lk(impl_->reconfigure_mu);
  // Everything is built before anything is swapped: a problem in [sms] leaves [apns] untouched too.
  auto apns = ApnsTransport::stage(apns_options(config));
  if (!apns) return apns.error();
  auto fcm = FcmTransport::stage(fcm_options(config));
  if (!fcm) return fcm.error();
  auto sms = impl_->sms->stage(sms_options(config));
  if (!sms) return sms.error();
  impl_->apns->commit(std::move(*apns));
  impl_->fcm->commit(std::move(*fcm));
  impl_->sms->commit(std::move(*sms));
  return std::nullopt;
}

boost::asio::awaitable<void> TransportRegistry::drain() {
  co_await impl_->apns->drain();
  co_await impl_->fcm->drain();
  co_await impl_->sms->drain();
}

std::vector<TransportStats> TransportRegistry::stats() const {
  return {{"apns", impl_->apns->pool_count(), impl_->apns->stats(), impl_->apns->token_mints()},
          {"fcm", impl_->fcm->pool_count(), impl_->fcm->stats(), impl_->fcm->token_fetches()}};
}

}  // namespace notifyd::transport
