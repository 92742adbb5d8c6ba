#include "transports/http2/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace notifyd::http2 {

namespace asio = boost::asio;

namespace {

// TLS 1.2+, peer verification, ALPN h2; no trust store yet.
std::shared_ptr<asio::ssl::context> base_context() {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS: cannot require TLS 1.2");
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(native, kAlpn, sizeof kAlpn) != 0) {  // 0 is success here
    throw std::runtime_error("TLS: cannot set ALPN h2");
  }
  return ctx;
}

void use_client_certificate(asio::ssl::context& ctx, const std::string& client_cert_pem,
                            const std::string& client_key_pem) {
  if (client_cert_pem.empty() != client_key_pem.empty()) {
    throw std::runtime_error("TLS: a client certificate needs both the certificate and its private key");
  }
  if (client_cert_pem.empty()) return;
  boost::system::error_code ec;
  ctx.use_certificate_chain(asio::buffer(client_cert_pem), ec);
  if (ec) throw std::runtime_error("TLS: invalid client certificate PEM: " + ec.message());
  ctx.use_private_key(asio::buffer(client_key_pem), asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS: invalid client private key PEM");
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TLS: the client private key does not match the certificate");
  }
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_client_tls_context(std::string ca_file, std::string client_cert_pem,
                                                            std::string client_key_pem) {
  auto ctx = base_context();
  boost::system::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec) throw std::runtime_error("TLS: cannot load the system CA paths: " + ec.message());
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("TLS: cannot load ca_file " + ca_file + ": " + ec.message());
  }
  use_client_certificate(*ctx, client_cert_pem, client_key_pem);
  return ctx;
}

std::shared_ptr<asio::ssl::context> make_client_tls_context(const asio::ssl::context& trust,
                                                            std::string client_cert_pem,
                                                            std::string client_key_pem) {
  auto ctx = base_context();
  // X509_STORE is reference-counted and locks its own lookups: shared, it serves both contexts.
  X509_STORE* store = SSL_CTX_get_cert_store(const_cast<asio::ssl::context&>(trust).native_handle());
  SSL_CTX_set1_cert_store(ctx->native_handle(), store);
  use_client_certificate(*ctx, client_cert_pem, client_key_pem);
  return ctx;
}

}  // namespace notifyd::http2
