#include "transports/registry/registry.hpp"

#include "transports/apns/apns_transport.hpp"
#include "transports/fcm/fcm_transport.hpp"
#include "transports/messenger/unsupported_transport.hpp"
#include "transports/sms/sms_transport.hpp"

namespace notifyd::transport {

struct TransportRegistry::Impl {
  std::unique_ptr<ApnsTransport> apns;
  std::unique_ptr<FcmTransport> fcm;
  std::unique_ptr<sms::SmsTransport> sms;
  std::unique_ptr<messenger::UnsupportedTransport> messenger;
  std::unique_ptr<messenger::UnsupportedTransport> alexa;
  std::unique_ptr<messenger::UnsupportedTransport> unknown;
};

TransportRegistry::TransportRegistry(boost::asio::any_io_executor executor, const Config& config)
    : impl_(std::make_unique<Impl>()) {
  ApnsOptions apns;
  apns.production_url = config.apns.production_url;
  apns.sandbox_url = config.apns.sandbox_url;
  apns.ca_file = config.apns.ca_file;
  impl_->apns = std::make_unique<ApnsTransport>(executor, std::move(apns));
  FcmOptions fcm;
  fcm.url = config.fcm.url;
  fcm.ca_file = config.fcm.ca_file;
  impl_->fcm = std::make_unique<FcmTransport>(executor, std::move(fcm));
  sms::SmsOptions sms;
  sms.url = config.sms.url;
  sms.account_sid = config.sms.account_sid;
  sms.auth_token = config.sms.auth_token;
  impl_->sms = std::make_unique<sms::SmsTransport>(executor, std::move(sms));
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
