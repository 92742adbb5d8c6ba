#include "transports/http2/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace notifyd::http2 {

namespace asio = boost::asio;

std::shared_ptr<asio::ssl::context> make_client_tls_context(std::string ca_file, std::string client_cert_pem,
                                                            std::string client_key_pem) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS: cannot require TLS 1.2");
  }
  boost::system::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec) throw std::runtime_error("TLS: cannot load the system CA paths: " + ec.message());
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("TLS: cannot load ca_file " + ca_file + ": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(native, kAlpn, sizeof kAlpn) != 0) {  // 0 is success here
    throw std::runtime_error("TLS: cannot set ALPN h2");
  }
  if (client_cert_pem.empty() != client_key_pem.empty()) {
    throw std::runtime_error("TLS: a client certificate needs both the certificate and its private key");
  }
  if (!client_cert_pem.empty()) {
    ctx->use_certificate_chain(asio::buffer(client_cert_pem), ec);
    if (ec) throw std::runtime_error("TLS: invalid client certificate PEM: " + ec.message());
    ctx->use_private_key(asio::buffer(client_key_pem), asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("TLS: invalid client private key PEM");
    if (SSL_CTX_check_private_key(native) != 1) {
      ERR_clear_error();
      throw std::runtime_error("TLS: the client private key does not match the certificate");
    }
  }
  return ctx;
}

}  // namespace notifyd::http2
