#pragma once
// TLS and DTLS contexts with the certificate rules of SPEC §3 (OpenSSL 3).
//
// Exporter (client) side: SNI = host; the peer's chain is verified against
// --tls-ca or the system trust store, with its validity period, and the
// certificate must name the host (DNS subjectAltName; an IP literal needs an
// IP subjectAltName). --tls-insecure skips verification but still encrypts.
// A client certificate is presented when cert and key are given (mutual TLS).
// Collector (server) side: cert and key are required; with --tls-ca every
// peer must present a certificate signed by it; with --tls-peer its name must
// also be on the list (RFC 7011 §11.3). Versions: TLS 1.2 and 1.3, DTLS 1.2.
//
// Contexts are immutable once built and shared (shared_ptr) by the sessions
// that use them, so a reload (SIGHUP) swaps in a new context for new sessions
// without touching established ones. TlsContextSource is thread-safe.
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.hpp"
#include "common/result.hpp"

namespace flowsec::transport {

struct TlsSettings {
  std::string cert_file;  // --tls-cert
  std::string key_file;   // --tls-priv-key
  std::string ca_file;    // --tls-ca: trust anchors; on a collector it turns on mutual TLS
  bool insecure = false;  // --tls-insecure (exporter): accept any certificate, still encrypt
  std::vector<std::string> peers;  // --tls-peer (collector): allowed certificate names
};

enum class TlsRole : std::uint8_t { client, server };
enum class TlsProtocol : std::uint8_t { tls, dtls };

// Why a handshake was refused, in the words an operator needs (SPEC §3, issue 3).
enum class TlsRefusal : std::uint8_t {
  expired,                // peer certificate past its notAfter
  not_yet_valid,          // peer certificate before its notBefore
  self_signed,            // self-signed certificate (leaf or in the chain) not trusted
  unknown_ca,             // chain does not lead to a trusted CA
  name_mismatch,          // certificate does not name the host / IP we connected to
  no_client_certificate,  // mutual TLS required but the client sent none
  not_on_allow_list,      // valid certificate whose name is not on --tls-peer
  protocol_version,       // no common protocol version (e.g. TLS 1.1 offered)
  not_tls,                // plaintext or another protocol on a TLS port
  handshake_timeout,      // handshake not finished in time (SPEC §3: 10 s)
  bad_certificate,        // any other certificate verification failure
  connection_closed,      // peer went away during the handshake
  other,                  // anything else OpenSSL reported
};
inline constexpr std::size_t kTlsRefusalCount = static_cast<std::size_t>(TlsRefusal::other) + 1;
[[nodiscard]] std::string_view describe(TlsRefusal r);

class TlsContext {
 public:
  // Start-up errors name the file: missing, unreadable, not PEM, key not matching the
  // certificate, server certificate expired. A private key readable by group or others
  // is accepted with a logged warning.
  static Expected<std::shared_ptr<const TlsContext>, std::string> create(
      TlsRole role, TlsProtocol protocol, const TlsSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  [[nodiscard]] SSL_CTX* native() const { return ctx_; }
  [[nodiscard]] TlsRole role() const { return role_; }
  [[nodiscard]] TlsProtocol protocol() const { return protocol_; }
  [[nodiscard]] const TlsSettings& settings() const { return settings_; }

  // A new SSL for one connection (owned by the caller, free with SSL_free). On a client
  // context `host` is the name or IP literal dialled: it becomes SNI (names only,
  // RFC 6066 §3) and the verified identity, unless settings().insecure.
  // nullptr if OpenSSL fails (out of memory, unusable host string).
  [[nodiscard]] SSL* new_ssl(const std::string& host = {}) const;
  // The per-connection setup new_ssl() does, for an SSL created elsewhere from
  // native() (e.g. by asio::ssl::stream). False if OpenSSL refused the host.
  [[nodiscard]] bool prepare_ssl(SSL* ssl, const std::string& host = {}) const;

 private:
  TlsContext(TlsRole role, TlsProtocol protocol, TlsSettings settings, SSL_CTX* ctx)
      : role_(role), protocol_(protocol), settings_(std::move(settings)), ctx_(ctx) {}
  TlsRole role_;
  TlsProtocol protocol_;
  TlsSettings settings_;
  SSL_CTX* ctx_;
};

// Holds the current context and rebuilds it from the same files on reload().
class TlsContextSource {
 public:
  static Expected<std::shared_ptr<TlsContextSource>, std::string> create(
      TlsRole role, TlsProtocol protocol, const TlsSettings& settings);
  [[nodiscard]] std::shared_ptr<const TlsContext> current() const;
  // SIGHUP (SPEC §3.5): on success later sessions use the new files; on failure the old
  // context stays and the error names the file.
  Expected<void, std::string> reload();

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const TlsContext> current_;
};

// Classifies a failed handshake on `ssl` from its verify result and the OpenSSL error
// queue (call before clearing it). `timed_out` when the caller's timer fired. The
// calling thread's error queue is empty afterwards.
[[nodiscard]] TlsRefusal classify_handshake_failure(const SSL* ssl, bool timed_out = false);
// The same from one error code already taken off the queue, e.g. the value of an
// asio::error_code in asio::error::get_ssl_category() (asio stores ERR_get_error()).
// 0 means no OpenSSL error (EOF or a socket error): connection_closed unless the verify
// result says otherwise.
[[nodiscard]] TlsRefusal classify_handshake_error(const SSL* ssl, unsigned long openssl_error);

// DTLS server (RFC 6347 §4.2.1, SPEC §3 "cookie exchange on"): DTLS server contexts
// have SSL_OP_COOKIE_EXCHANGE and cookie callbacks that compute an HMAC-SHA256, under a
// random per-process secret, over the client's address and port. The callbacks take the
// peer from this call when it was made on the SSL (needed with memory or custom BIOs);
// otherwise from BIO_dgram_get_peer() on the read BIO (BIO_s_datagram, DTLSv1_listen).
// With neither, no cookie can be made and the handshake fails. Call before the first
// DTLSv1_listen / SSL_accept / SSL_do_handshake on the SSL.
void set_dtls_peer(SSL* ssl, const IpAddress& address, std::uint16_t port);

// The authenticated peer identity handed to callers (SPEC §3.3): the certificate subject
// in RFC 2253 form, e.g. "CN=exporter1.example.org,O=Example". Empty without a peer cert,
// and when the certificate was not verified (no --tls-ca on a collector, an insecure client
// facing a bad chain): an unverified subject is no identity.
[[nodiscard]] std::string peer_identity(const SSL* ssl);

// --tls-peer: true when the list is empty, or the peer certificate names one entry
// (subjectAltName DNS/IP, or the subject CN when the certificate has no DNS SAN). False
// when a list is given and the certificate is missing or unverified. DNS names compare
// case-insensitively; wildcard certificates never match an entry (an entry names one
// exporter).
[[nodiscard]] bool peer_allowed(const SSL* ssl, const std::vector<std::string>& peers);

}  // namespace flowsec::transport
