#include "transport/tls.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/log.hpp"

// SPEC §3 "Transports and security" on OpenSSL 3.0. Contexts are configured once here
// and never changed afterwards, so sessions on any thread may share them.
namespace flowsec::transport {
namespace {

constexpr std::string_view kLog = "tls";
// Certificate and key files are small; a cap keeps a mistaken path (/dev/zero) harmless.
constexpr std::size_t kMaxPemFileBytes = 1024 * 1024;
constexpr std::size_t kCookieSecretBytes = 32;
constexpr unsigned char kSessionIdContext[] = "flowsec";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct AddrFree {
  void operator()(BIO_ADDR* a) const { BIO_ADDR_free(a); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
using AddrPtr = std::unique_ptr<BIO_ADDR, AddrFree>;

// Takes every pending OpenSSL error off this thread's queue; returns the first in words.
std::string drain_errors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    if (!text.empty()) continue;
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    text = buf.data();
  }
  return text.empty() ? std::string("unknown OpenSSL error") : text;
}

std::string quoted(std::string_view option, const std::string& path) {
  std::string s(option);
  s += " \"";
  s += path;
  s += '"';
  return s;
}

tl::unexpected<std::string> fail(std::string_view option, const std::string& path,
                                 std::string_view what) {
  return unexpected(quoted(option, path) + ": " + std::string(what));
}

// Reads a whole PEM file, so that "missing" and "unreadable" name the file with the
// system's reason, before OpenSSL sees the bytes.
Expected<std::string, std::string> read_pem_file(std::string_view option, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return fail(option, path, std::error_code(errno, std::generic_category()).message());
  }
  std::string data;
  std::array<char, 4096> buf{};
  bool error = false;
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    data.append(buf.data(), n);
    if (data.size() > kMaxPemFileBytes) break;
    if (n < buf.size()) {
      error = std::ferror(f) != 0;
      break;
    }
  }
  const int saved = errno;
  std::fclose(f);
  if (error) return fail(option, path, std::error_code(saved, std::generic_category()).message());
  if (data.size() > kMaxPemFileBytes) return fail(option, path, "too large for a PEM file");
  return data;
}

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Never prompt on the terminal for a pass phrase: an encrypted key is a start-up error.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

std::string asn1_time_text(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print_ex(bio.get(), t, ASN1_DTFLGS_ISO8601) != 1) return "?";
  char* p = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<std::size_t>(n));
}

std::string subject_text(const X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  if (X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0) return {};
  char* p = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<std::size_t>(n));
}

// Own certificate (chain): leaf first, then intermediates, as SSL_CTX_use_certificate_chain_file.
Expected<X509Ptr, std::string> load_certificate(SSL_CTX* ctx, TlsRole role,
                                                const std::string& path) {
  constexpr std::string_view kOpt = "--tls-cert";
  auto data = read_pem_file(kOpt, path);
  if (!data) return unexpected(std::move(data.error()));
  BioPtr bio = memory_bio(*data);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, no_passphrase, nullptr));
  if (!leaf) {
    ERR_clear_error();
    return fail(kOpt, path, "no PEM certificate in it");
  }
  // SPEC §3 collector 1: an expired server certificate would fail every handshake.
  if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0) {
    const std::string what =
        "certificate expired on " + asn1_time_text(X509_get0_notAfter(leaf.get()));
    if (role == TlsRole::server) return fail(kOpt, path, what);
    log::warning(kLog, quoted(kOpt, path) + ": " + what + "; collectors will refuse it");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) > 0) {
    log::warning(kLog, quoted(kOpt, path) + ": certificate not valid before " +
                           asn1_time_text(X509_get0_notBefore(leaf.get())) +
                           "; peers will refuse it until then");
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    return fail(kOpt, path, "cannot use the certificate: " + drain_errors());
  }
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return fail(kOpt, path, "cannot use a chain certificate: " + drain_errors());
    }
  }
  ERR_clear_error();  // the loop ends on "no start line"
  return leaf;
}

Expected<void, std::string> load_private_key(SSL_CTX* ctx, const X509* leaf,
                                             const std::string& cert_path,
                                             const std::string& path) {
  constexpr std::string_view kOpt = "--tls-priv-key";
  auto data = read_pem_file(kOpt, path);
  if (!data) return unexpected(std::move(data.error()));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    log::warning(kLog, quoted(kOpt, path) +
                           ": private key is accessible by group or others (mode " + mode.data() +
                           "); chmod 600 it");
  }
  BioPtr bio = memory_bio(*data);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    if (data->find("ENCRYPTED") != std::string::npos) {
      return fail(kOpt, path, "private key is encrypted; flowsec needs it without a pass phrase");
    }
    return fail(kOpt, path, "no PEM private key in it");
  }
  const std::string mismatch = quoted(kOpt, path) + " does not match " +
                               quoted("--tls-cert", cert_path) +
                               " (the key is not the certificate's private key)";
  // SSL_CTX_use_PrivateKey itself refuses a key of the certificate's type that does not match.
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return unexpected(mismatch);
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    return fail(kOpt, path, "cannot use the private key: " + drain_errors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return unexpected(mismatch);
  }
  return {};
}

// Trust anchors; on a server also the CA names sent in CertificateRequest.
Expected<void, std::string> load_ca(SSL_CTX* ctx, TlsRole role, const std::string& path) {
  constexpr std::string_view kOpt = "--tls-ca";
  auto data = read_pem_file(kOpt, path);
  if (!data) return unexpected(std::move(data.error()));
  BioPtr bio = memory_bio(*data);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509Ptr ca{PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)}) {
    if (X509_STORE_add_cert(store, ca.get()) != 1) {
      return fail(kOpt, path, "cannot add a CA certificate: " + drain_errors());
    }
    if (role == TlsRole::server && SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      return fail(kOpt, path, "cannot add a CA name: " + drain_errors());
    }
    ++count;
  }
  ERR_clear_error();
  if (count == 0) return fail(kOpt, path, "no PEM certificate in it");
  return {};
}

// ---- DTLS cookies (RFC 6347 §4.2.1) ----

int peer_index() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
         void* /*argp*/) { delete static_cast<std::string*>(ptr); });
  return index;
}

const std::array<unsigned char, kCookieSecretBytes>* cookie_secret() {
  static const auto secret = [] {
    std::optional<std::array<unsigned char, kCookieSecretBytes>> s;
    std::array<unsigned char, kCookieSecretBytes> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1) s = bytes;
    return s;
  }();
  return secret ? &*secret : nullptr;
}

std::string peer_key(const IpAddress& address, std::uint16_t port) {
  std::string key;
  key += static_cast<char>(address.is_v6() ? 6 : 4);
  for (std::uint8_t b : address.bytes()) key += static_cast<char>(b);
  key += static_cast<char>(port >> 8);
  key += static_cast<char>(port & 0xff);
  return key;
}

std::optional<std::string> cookie_peer(SSL* ssl) {
  if (const auto* stored = static_cast<const std::string*>(SSL_get_ex_data(ssl, peer_index()))) {
    return *stored;
  }
  BIO* rbio = SSL_get_rbio(ssl);
  if (rbio == nullptr || BIO_method_type(rbio) != BIO_TYPE_DGRAM) return std::nullopt;
  AddrPtr addr(BIO_ADDR_new());
  if (!addr || BIO_dgram_get_peer(rbio, addr.get()) <= 0) return std::nullopt;
  std::array<unsigned char, 16> raw{};
  std::size_t len = 0;
  if (BIO_ADDR_rawaddress(addr.get(), nullptr, &len) != 1 || len > raw.size() ||
      BIO_ADDR_rawaddress(addr.get(), raw.data(), &len) != 1) {
    return std::nullopt;
  }
  std::string key;
  key += static_cast<char>(len == 16 ? 6 : 4);
  key.append(reinterpret_cast<const char*>(raw.data()), len);
  const unsigned short port = BIO_ADDR_rawport(addr.get());  // network order: fine for a MAC
  key.append(reinterpret_cast<const char*>(&port), sizeof port);
  return key;
}

bool compute_cookie(SSL* ssl, unsigned char* out, unsigned int* out_len) {
  const auto* secret = cookie_secret();
  const auto peer = cookie_peer(ssl);
  if (secret == nullptr || !peer) return false;
  return HMAC(EVP_sha256(), secret->data(), static_cast<int>(secret->size()),
              reinterpret_cast<const unsigned char*>(peer->data()), peer->size(), out,
              out_len) != nullptr;
}

int generate_cookie(SSL* ssl, unsigned char* cookie, unsigned int* cookie_len) {
  // DTLS1_COOKIE_LENGTH (255) bytes are available; SHA-256 gives 32.
  return compute_cookie(ssl, cookie, cookie_len) ? 1 : 0;
}

int verify_cookie(SSL* ssl, const unsigned char* cookie, unsigned int cookie_len) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> expected{};
  unsigned int len = 0;
  if (!compute_cookie(ssl, expected.data(), &len)) return 0;
  return len == cookie_len && CRYPTO_memcmp(expected.data(), cookie, len) == 0 ? 1 : 0;
}

// ---- handshake failure classification ----

std::optional<TlsRefusal> from_verify_result(long v) {
  switch (v) {
    case X509_V_OK:
      return std::nullopt;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return TlsRefusal::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsRefusal::not_yet_valid;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return TlsRefusal::self_signed;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return TlsRefusal::unknown_ca;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return TlsRefusal::name_mismatch;
    default:
      return TlsRefusal::bad_certificate;
  }
}

std::optional<TlsRefusal> from_error(unsigned long e) {
  if (ERR_GET_LIB(e) == ERR_LIB_SYS) return TlsRefusal::connection_closed;  // reset, EPIPE
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return std::nullopt;
  switch (ERR_GET_REASON(e)) {
    // Mutual TLS required and the client sent no certificate (TLS 1.2 and 1.3 server side;
    // the TLS 1.3 certificate_required alert on the client side, RFC 8446 §6.2).
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return TlsRefusal::no_client_certificate;
    // Bytes that are not TLS records: plaintext IPFIX, HTTP, a proxy request (SPEC §3.4).
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_BAD_RECORD_TYPE:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_BAD_PROTOCOL_VERSION_NUMBER:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_RECORD_TOO_SMALL:
      return TlsRefusal::not_tls;
    // No common version: we speak TLS 1.2-1.3 and DTLS 1.2 only (SPEC §3).
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_TLSV1_ALERT_INAPPROPRIATE_FALLBACK:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      return TlsRefusal::protocol_version;
    // Alerts from a peer that refused our certificate (RFC 8446 §6.2).
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return TlsRefusal::expired;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return TlsRefusal::unknown_ca;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return TlsRefusal::bad_certificate;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return TlsRefusal::connection_closed;
    default:
      return std::nullopt;
  }
}

// The verify result speaks only for the side that verified (SSL_VERIFY_PEER); an
// insecure client's result is recorded but was not enforced.
std::optional<TlsRefusal> verified_failure(const SSL* ssl) {
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) return std::nullopt;
  return from_verify_result(SSL_get_verify_result(ssl));
}

bool is_ip_literal(std::string_view host) {
  return IpAddress::parse(host).has_value();
}

}  // namespace

std::string_view describe(TlsRefusal r) {
  switch (r) {
    case TlsRefusal::expired:
      return "certificate expired";
    case TlsRefusal::not_yet_valid:
      return "certificate not yet valid";
    case TlsRefusal::self_signed:
      return "self-signed certificate";
    case TlsRefusal::unknown_ca:
      return "unknown CA";
    case TlsRefusal::name_mismatch:
      return "name mismatch";
    case TlsRefusal::no_client_certificate:
      return "no client certificate";
    case TlsRefusal::not_on_allow_list:
      return "not on the allow-list";
    case TlsRefusal::protocol_version:
      return "protocol version";
    case TlsRefusal::not_tls:
      return "not TLS";
    case TlsRefusal::handshake_timeout:
      return "handshake timeout";
    case TlsRefusal::bad_certificate:
      return "bad certificate";
    case TlsRefusal::connection_closed:
      return "connection closed";
    case TlsRefusal::other:
      return "handshake failed";
  }
  return "handshake failed";
}

Expected<std::shared_ptr<const TlsContext>, std::string> TlsContext::create(
    TlsRole role, TlsProtocol protocol, const TlsSettings& settings) {
  const bool dtls = protocol == TlsProtocol::dtls;
  CtxPtr ctx(SSL_CTX_new(dtls ? DTLS_method() : TLS_method()));
  if (!ctx) return unexpected("cannot create a TLS context: " + drain_errors());

  // SPEC §3: TLS 1.2 and 1.3, DTLS 1.2 (OpenSSL 3.0 has no DTLS 1.3).
  if (SSL_CTX_set_min_proto_version(ctx.get(), dtls ? DTLS1_2_VERSION : TLS1_2_VERSION) != 1) {
    return unexpected("cannot set the minimum TLS version: " + drain_errors());
  }
  // Renegotiation buys nothing for flow export and has a history of attacks (RFC 5746).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  // TLS 1.3: the same three AEAD suites as OpenSSL's default, AES-128-GCM first (with
  // AES-NI it is about 1.4x as fast as AES-256-GCM, docs/benchmarks.md). The client
  // offers this order and OpenSSL servers follow the client's preference.
  if (!dtls && SSL_CTX_set_ciphersuites(ctx.get(),
                                        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                        "TLS_CHACHA20_POLY1305_SHA256") != 1) {
    return unexpected("cannot set the TLS 1.3 cipher suites: " + drain_errors());
  }
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);

  const bool has_cert = !settings.cert_file.empty();
  const bool has_key = !settings.key_file.empty();
  if (role == TlsRole::server) {
    // SPEC §3 collector 1.
    if (!has_cert) return unexpected(std::string("a TLS/DTLS listener needs --tls-cert"));
    if (!has_key) return unexpected(std::string("a TLS/DTLS listener needs --tls-priv-key"));
    if (!settings.peers.empty() && settings.ca_file.empty()) {
      return unexpected(std::string(
          "--tls-peer needs --tls-ca: peer names are checked on client certificates, which "
          "are asked for only with --tls-ca (mutual TLS)"));
    }
  } else if (has_cert != has_key) {
    return unexpected(std::string(has_cert ? "--tls-cert needs --tls-priv-key"
                                           : "--tls-priv-key needs --tls-cert"));
  }

  if (has_cert) {
    auto leaf = load_certificate(ctx.get(), role, settings.cert_file);
    if (!leaf) return unexpected(std::move(leaf.error()));
    auto key = load_private_key(ctx.get(), leaf->get(), settings.cert_file, settings.key_file);
    if (!key) return unexpected(std::move(key.error()));
  }

  if (!settings.ca_file.empty()) {
    auto ca = load_ca(ctx.get(), role, settings.ca_file);
    if (!ca) return unexpected(std::move(ca.error()));
  } else if (role == TlsRole::client && !settings.insecure) {
    // SPEC §3 exporter 1: the system trust store when no --tls-ca.
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return unexpected("cannot load the system trust store: " + drain_errors());
    }
  }

  if (role == TlsRole::client) {
    // SPEC §3 exporter 2: --tls-insecure still encrypts but verifies nothing.
    SSL_CTX_set_verify(ctx.get(), settings.insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  } else {
    // SPEC §3 collector 2: with --tls-ca every exporter must present a certificate
    // chaining to it (RFC 7011 §11.1 mutual authentication).
    SSL_CTX_set_verify(ctx.get(),
                       settings.ca_file.empty() ? SSL_VERIFY_NONE
                                                : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
    // Needed for session resumption with client certificates.
    SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof kSessionIdContext - 1);
    if (dtls) {
      // SPEC §3 DTLS "cookie exchange on" (RFC 6347 §4.2.1).
      if (cookie_secret() == nullptr) {
        return unexpected("cannot make the DTLS cookie secret: " + drain_errors());
      }
      SSL_CTX_set_options(ctx.get(), SSL_OP_COOKIE_EXCHANGE);
      SSL_CTX_set_cookie_generate_cb(ctx.get(), generate_cookie);
      SSL_CTX_set_cookie_verify_cb(ctx.get(), verify_cookie);
    }
  }

  return std::shared_ptr<const TlsContext>(new TlsContext(role, protocol, settings, ctx.release()));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

SSL* TlsContext::new_ssl(const std::string& host) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  if (!prepare_ssl(ssl, host)) {
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

bool TlsContext::prepare_ssl(SSL* ssl, const std::string& host_arg) const {
  if (ssl == nullptr) return false;
  if (role_ != TlsRole::client || host_arg.empty()) return true;
  std::string host = host_arg;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const bool ip = is_ip_literal(host);
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
  if (!ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
    ERR_clear_error();
    return false;
  }
  if (settings_.insecure) return true;
  // SPEC §3 exporter 1: the certificate must name the host; an IP literal must match an
  // IP subjectAltName (RFC 6125 §6.2 / RFC 5280 §4.2.1.6), never a DNS name or the CN.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  int ok = 0;
  if (ip) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  if (ok != 1) ERR_clear_error();
  return ok == 1;
}

Expected<std::shared_ptr<TlsContextSource>, std::string> TlsContextSource::create(
    TlsRole role, TlsProtocol protocol, const TlsSettings& settings) {
  auto ctx = TlsContext::create(role, protocol, settings);
  if (!ctx) return unexpected(std::move(ctx.error()));
  auto source = std::make_shared<TlsContextSource>();
  source->current_ = std::move(*ctx);
  return source;
}

std::shared_ptr<const TlsContext> TlsContextSource::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

Expected<void, std::string> TlsContextSource::reload() {
  // Build outside the lock: reading files must not stall sessions asking for current().
  const auto old = current();
  auto fresh = TlsContext::create(old->role(), old->protocol(), old->settings());
  if (!fresh) return unexpected(std::move(fresh.error()));
  std::lock_guard lock(mutex_);
  current_ = std::move(*fresh);
  return {};
}

TlsRefusal classify_handshake_failure(const SSL* ssl, bool timed_out) {
  std::optional<TlsRefusal> from_queue;
  bool any_error = false;
  while (const unsigned long e = ERR_get_error()) {
    any_error = true;
    if (!from_queue) from_queue = from_error(e);
  }
  if (timed_out) return TlsRefusal::handshake_timeout;
  if (const auto v = ssl != nullptr ? verified_failure(ssl) : std::nullopt) return *v;
  if (from_queue) return *from_queue;
  // Nothing from OpenSSL: the peer closed or reset the connection (SSL_ERROR_SYSCALL).
  return any_error ? TlsRefusal::other : TlsRefusal::connection_closed;
}

TlsRefusal classify_handshake_error(const SSL* ssl, unsigned long openssl_error) {
  if (const auto v = ssl != nullptr ? verified_failure(ssl) : std::nullopt) return *v;
  if (openssl_error == 0) return TlsRefusal::connection_closed;
  return from_error(openssl_error).value_or(TlsRefusal::other);
}

void set_dtls_peer(SSL* ssl, const IpAddress& address, std::uint16_t port) {
  if (ssl == nullptr) return;
  auto* key = new std::string(peer_key(address, port));
  auto* old = static_cast<std::string*>(SSL_get_ex_data(ssl, peer_index()));
  if (SSL_set_ex_data(ssl, peer_index(), key) != 1) {
    delete key;
    return;
  }
  delete old;
}

std::string peer_identity(const SSL* ssl) {
  if (ssl == nullptr) return {};
  const X509* cert = SSL_get0_peer_certificate(ssl);
  // Only an identity that was verified is an identity (SPEC §3.3).
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  return subject_text(cert);
}

bool peer_allowed(const SSL* ssl, const std::vector<std::string>& peers) {
  if (peers.empty()) return true;
  if (ssl == nullptr) return false;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return false;
  // RFC 7011 §11.3 allow-list. X509_check_host falls back to the subject CN only when the
  // certificate has no DNS subjectAltName (RFC 6125 §6.4.4). Wildcard certificates do not
  // match: an allow-list entry names one exporter.
  for (const std::string& name : peers) {
    const int r = is_ip_literal(name) ? X509_check_ip_asc(cert, name.c_str(), 0)
                                      : X509_check_host(cert, name.data(), name.size(),
                                                        X509_CHECK_FLAG_NO_WILDCARDS, nullptr);
    if (r == 1) return true;
  }
  ERR_clear_error();
  return false;
}

}  // namespace flowsec::transport
