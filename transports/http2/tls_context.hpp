#pragma once
// make_client_tls_context: the TLS client context every HTTP/2 connection of a pool shares. Built once per
// pool (per credential); immutable afterwards, so any number of connections/threads may use it.
// Invalid input (unreadable ca_file, bad PEM, key not matching the certificate) throws std::runtime_error
// naming the problem (never the secret): it is a configuration error, caught where the pool is built.
#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace notifyd::http2 {

// TLS 1.2+, peer verification always on (system default paths plus `ca_file` when not empty), ALPN "h2",
// and the client certificate/key (PEM strings, e.g. an APNs certificate credential) when both are given.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(std::string ca_file,
                                                                   std::string client_cert_pem = {},
                                                                   std::string client_key_pem = {});
// The same, trusting exactly what `trust` trusts: its certificate store is shared, not read again (reading
// the system CA bundle takes tens of milliseconds: too long to repeat for each credential's first send).
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const boost::asio::ssl::context& trust,
                                                                   std::string client_cert_pem,
                                                                   std::string client_key_pem);

}  // namespace notifyd::http2
