// TLS/DTLS contexts and the certificate rules of SPEC §3, with handshakes run in memory:
// two SSL objects joined by a BIO pair, SSL_do_handshake pumped on both until neither
// moves. No sockets, no clock of our own (OpenSSL checks validity dates against the real
// time, which is why the fixture certificates lie in 2020 and 2099).
//
// Certificates: scripts/make-test-certs.sh FLOWSEC_TEST_CERTS (the ctest fixture
// "test_certs" runs it; by hand: scripts/make-test-certs.sh build/<dir>/test-certs).
// Subjects are CN only, so peer_identity() of exporter1 is "CN=exporter1.flowsec.test".
#include "transport/tls.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

#ifndef FLOWSEC_TEST_CERTS
#error "FLOWSEC_TEST_CERTS must name the directory made by scripts/make-test-certs.sh"
#endif

namespace flowsec::transport {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kCerts = FLOWSEC_TEST_CERTS;
std::string pem(const std::string& name) {
  return kCerts + "/" + name + ".pem";
}
std::string key(const std::string& name) {
  return kCerts + "/" + name + ".key";
}

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
using ContextPtr = std::shared_ptr<const TlsContext>;

TlsSettings own(const std::string& name) {
  TlsSettings s;
  s.cert_file = pem(name);
  s.key_file = key(name);
  return s;
}

TlsSettings trusting(const std::string& ca = "ca") {
  TlsSettings s;
  s.ca_file = pem(ca);
  return s;
}

ContextPtr make(TlsRole role, const TlsSettings& settings,
                TlsProtocol protocol = TlsProtocol::tls) {
  auto r = TlsContext::create(role, protocol, settings);
  EXPECT_TRUE(r.has_value()) << r.error();
  return r ? *r : nullptr;
}

// One side of a handshake after pumping.
struct Side {
  bool done = false;
  bool failed = false;
  TlsRefusal refusal = TlsRefusal::other;
};
struct Outcome {
  Side client;
  Side server;
};

void step(SSL* ssl, Side& side) {
  if (side.done || side.failed) return;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl);
  if (r == 1) {
    side.done = true;
    return;
  }
  const int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  side.failed = true;
  side.refusal = classify_handshake_failure(ssl);
}

Outcome pump(SSL* client, SSL* server) {
  Outcome o;
  for (int round = 0; round < 64; ++round) {
    step(client, o.client);
    step(server, o.server);
    const bool c_end = o.client.done || o.client.failed;
    const bool s_end = o.server.done || o.server.failed;
    if (c_end && s_end) break;
  }
  return o;
}

// Joins client and server through a BIO pair (each SSL owns its half) and handshakes.
Outcome handshake(SSL* client, SSL* server) {
  BIO* c_bio = nullptr;
  BIO* s_bio = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c_bio, 0, &s_bio, 0), 1);
  SSL_set_bio(client, c_bio, c_bio);
  SSL_set_bio(server, s_bio, s_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  return pump(client, server);
}

// After a TLS 1.3 handshake the client is done before the server has checked the client
// certificate (RFC 8446 §4.4.2); the server's verdict arrives as an alert on the next read.
std::optional<TlsRefusal> refusal_on_read(SSL* ssl) {
  ERR_clear_error();
  std::array<char, 16> buf{};
  const int r = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
  if (r > 0) return std::nullopt;
  const int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ) return std::nullopt;
  return classify_handshake_failure(ssl);
}

// A server SSL from a valid server context whose certificate is replaced by a fixture
// that TlsContext::create would refuse at start-up (expired) or that is wrong on purpose.
SslPtr server_with(const ContextPtr& ctx, const std::string& name) {
  SslPtr ssl(ctx->new_ssl());
  EXPECT_EQ(SSL_use_certificate_chain_file(ssl.get(), pem(name).c_str()), 1);
  EXPECT_EQ(SSL_use_PrivateKey_file(ssl.get(), key(name).c_str(), SSL_FILETYPE_PEM), 1);
  return ssl;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kCerts + "/.complete"))
        << "no test certificates in " << kCerts << "; run scripts/make-test-certs.sh " << kCerts;
    ERR_clear_error();
    server_ = make(TlsRole::server, own("server"));
    ASSERT_NE(server_, nullptr);
  }

  // A client of `settings` dialling `host` against a server presenting fixture `name`.
  Outcome dial(const TlsSettings& settings, const std::string& host, const std::string& name,
               TlsProtocol protocol = TlsProtocol::tls) {
    auto client_ctx = make(TlsRole::client, settings, protocol);
    auto server_ctx =
        protocol == TlsProtocol::tls ? server_ : make(TlsRole::server, own("server"), protocol);
    if (!client_ctx || !server_ctx) return {};
    client_.reset(client_ctx->new_ssl(host));
    server_ssl_ = server_with(server_ctx, name);
    if (protocol == TlsProtocol::dtls)
      set_dtls_peer(server_ssl_.get(), *IpAddress::parse("127.0.0.1"), 40000);
    return handshake(client_.get(), server_ssl_.get());
  }

  ContextPtr server_;
  SslPtr client_;
  SslPtr server_ssl_;
};

// ---- exporter side: the server certificate matrix (SPEC §3 exporter 1 and 2) ----

TEST_F(TlsTest, ValidCertificateIsAcceptedByName) {
  const Outcome o = dial(trusting(), "localhost", "server");
  EXPECT_TRUE(o.client.done);
  EXPECT_TRUE(o.server.done);
  EXPECT_EQ(SSL_version(client_.get()), TLS1_3_VERSION);
  // SNI = host (SPEC §3 exporter 1).
  const char* sni = SSL_get_servername(server_ssl_.get(), TLSEXT_NAMETYPE_host_name);
  ASSERT_NE(sni, nullptr);
  EXPECT_STREQ(sni, "localhost");
  EXPECT_EQ(peer_identity(client_.get()), "CN=localhost");
}

TEST_F(TlsTest, ValidCertificateIsAcceptedByIpLiteralWithoutSni) {
  for (const std::string host : {"127.0.0.1", "::1", "[::1]"}) {
    const Outcome o = dial(trusting(), host, "server");
    EXPECT_TRUE(o.client.done) << host;
    EXPECT_TRUE(o.server.done) << host;
    // RFC 6066 §3: no IP literals in SNI.
    EXPECT_EQ(SSL_get_servername(server_ssl_.get(), TLSEXT_NAMETYPE_host_name), nullptr) << host;
  }
}

TEST_F(TlsTest, Tls12IsAcceptedToo) {
  auto client_ctx = make(TlsRole::client, trusting());
  client_.reset(client_ctx->new_ssl("localhost"));
  SSL_set_max_proto_version(client_.get(), TLS1_2_VERSION);
  server_ssl_.reset(server_->new_ssl());
  const Outcome o = handshake(client_.get(), server_ssl_.get());
  EXPECT_TRUE(o.client.done);
  EXPECT_TRUE(o.server.done);
  EXPECT_EQ(SSL_version(server_ssl_.get()), TLS1_2_VERSION);
}

struct BadServerCase {
  const char* fixture;
  const char* host;
  TlsRefusal refusal;
};

void PrintTo(const BadServerCase& c, std::ostream* os) {
  *os << c.fixture << ".pem dialled as " << c.host << " -> " << describe(c.refusal);
}

class BadServerTest : public TlsTest, public ::testing::WithParamInterface<BadServerCase> {};

TEST_P(BadServerTest, RefusedWithTheReason) {
  const auto& c = GetParam();
  const Outcome o = dial(trusting(), c.host, c.fixture);
  EXPECT_TRUE(o.client.failed);
  EXPECT_FALSE(o.server.done);
  EXPECT_EQ(o.client.refusal, c.refusal)
      << describe(o.client.refusal) << " instead of " << describe(c.refusal);
}

TEST_P(BadServerTest, InsecureAcceptsButStillEncrypts) {
  const auto& c = GetParam();
  TlsSettings s = trusting();
  s.insecure = true;
  const Outcome o = dial(s, c.host, c.fixture);
  EXPECT_TRUE(o.client.done);
  EXPECT_TRUE(o.server.done);
  EXPECT_NE(SSL_get_current_cipher(client_.get()), nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, BadServerTest,
    ::testing::Values(BadServerCase{"expired", "localhost", TlsRefusal::expired},
                      BadServerCase{"not-yet-valid", "localhost", TlsRefusal::not_yet_valid},
                      BadServerCase{"self-signed", "localhost", TlsRefusal::self_signed},
                      BadServerCase{"ca2-server", "localhost", TlsRefusal::unknown_ca},
                      BadServerCase{"other-name", "localhost", TlsRefusal::name_mismatch},
                      // An IP literal needs an IP subjectAltName: DNS:localhost is not enough.
                      BadServerCase{"no-ip-san", "127.0.0.1", TlsRefusal::name_mismatch},
                      BadServerCase{"server", "other.example", TlsRefusal::name_mismatch},
                      BadServerCase{"server", "10.0.0.1", TlsRefusal::name_mismatch}),
    [](const ::testing::TestParamInfo<BadServerCase>& param_info) {
      std::string n = std::string(param_info.param.fixture) + "_" + param_info.param.host;
      for (char& ch : n) {
        if (std::isalnum(static_cast<unsigned char>(ch)) == 0) ch = '_';
      }
      return n;
    });

TEST_F(TlsTest, UnverifiedPeerHasNoIdentity) {
  TlsSettings s = trusting();
  s.insecure = true;
  const Outcome o = dial(s, "localhost", "self-signed");
  ASSERT_TRUE(o.client.done);
  EXPECT_NE(SSL_get0_peer_certificate(client_.get()), nullptr);
  EXPECT_EQ(peer_identity(client_.get()), "");  // a subject nobody vouched for is no identity
  EXPECT_FALSE(peer_allowed(client_.get(), {"localhost"}));
}

TEST_F(TlsTest, CertificateWithoutIpSanIsFineByName) {
  const Outcome o = dial(trusting(), "localhost", "no-ip-san");
  EXPECT_TRUE(o.client.done);
  EXPECT_TRUE(o.server.done);
}

TEST_F(TlsTest, RefusedServerLearnsWhyFromTheAlert) {
  const Outcome o = dial(trusting(), "localhost", "expired");
  ASSERT_TRUE(o.client.failed);
  ASSERT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::expired);  // certificate_expired alert
  dial(trusting(), "localhost", "ca2-server");
  const Outcome u = dial(trusting(), "localhost", "ca2-server");
  EXPECT_EQ(u.server.refusal, TlsRefusal::unknown_ca);  // unknown_ca alert
}

TEST_F(TlsTest, SystemTrustStoreDoesNotKnowTheTestCa) {
  const Outcome o = dial(TlsSettings{}, "localhost", "server");
  EXPECT_TRUE(o.client.failed);
  EXPECT_EQ(o.client.refusal, TlsRefusal::unknown_ca);
}

// ---- collector side: mutual TLS and the allow-list (SPEC §3 collector 2, RFC 7011 §11) ----

class MutualTlsTest : public TlsTest {
 protected:
  Outcome connect(const std::string& client_cert, std::vector<std::string> peers = {},
                  int max_version = 0) {
    TlsSettings ss = own("server");
    ss.ca_file = pem("ca");
    ss.peers = std::move(peers);
    mtls_ = make(TlsRole::server, ss);
    TlsSettings cs = client_cert.empty() ? TlsSettings{} : own(client_cert);
    cs.ca_file = pem("ca");
    auto client_ctx = make(TlsRole::client, cs);
    if (!mtls_ || !client_ctx) return {};
    client_.reset(client_ctx->new_ssl("localhost"));
    if (max_version != 0) SSL_set_max_proto_version(client_.get(), max_version);
    server_ssl_.reset(mtls_->new_ssl());
    return handshake(client_.get(), server_ssl_.get());
  }
  ContextPtr mtls_;
};

TEST_F(MutualTlsTest, NoClientCertificate) {
  const Outcome o = connect("");
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::no_client_certificate);
  // TLS 1.3: the client hears it as a certificate_required alert (RFC 8446 §4.4.2.4).
  EXPECT_EQ(refusal_on_read(client_.get()), TlsRefusal::no_client_certificate);
}

TEST_F(MutualTlsTest, NoClientCertificateTls12) {
  const Outcome o = connect("", {}, TLS1_2_VERSION);
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::no_client_certificate);
  EXPECT_TRUE(o.client.failed);  // TLS 1.2: during the handshake
}

TEST_F(MutualTlsTest, ClientCertificateFromAnotherCa) {
  // ca2-client even carries exporter1's name: the CA decides, not the name.
  const Outcome o = connect("ca2-client", {"exporter1.flowsec.test"});
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::unknown_ca);
  EXPECT_EQ(refusal_on_read(client_.get()), TlsRefusal::unknown_ca);
}

TEST_F(MutualTlsTest, ServerCertificateUsedAsClientCertificate) {
  // server.pem has extendedKeyUsage serverAuth only: any other failure is bad_certificate.
  const Outcome o = connect("server");
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::bad_certificate);
}

TEST_F(MutualTlsTest, AllowedPeer) {
  const Outcome o = connect("exporter1", {"exporter2.flowsec.test", "exporter1.flowsec.test"});
  ASSERT_TRUE(o.server.done);
  ASSERT_TRUE(o.client.done);
  EXPECT_TRUE(peer_allowed(server_ssl_.get(), mtls_->settings().peers));
  EXPECT_EQ(peer_identity(server_ssl_.get()), "CN=exporter1.flowsec.test");
  EXPECT_EQ(refusal_on_read(client_.get()), std::nullopt);
}

TEST_F(MutualTlsTest, PeerNotOnTheAllowList) {
  const Outcome o = connect("exporter2", {"exporter1.flowsec.test"});
  ASSERT_TRUE(o.server.done);  // CA-valid: the listener checks the list after the handshake
  EXPECT_FALSE(peer_allowed(server_ssl_.get(), {"exporter1.flowsec.test"}));
  EXPECT_FALSE(peer_allowed(server_ssl_.get(), {"EXPORTER1.flowsec.test", "127.0.0.1"}));
  EXPECT_FALSE(peer_allowed(server_ssl_.get(), {"flowsec.test", "*.flowsec.test"}));
  EXPECT_TRUE(peer_allowed(server_ssl_.get(), {"EXPORTER2.flowsec.test"}));  // DNS: no case
  EXPECT_TRUE(peer_allowed(server_ssl_.get(), {}));                          // no list
  EXPECT_EQ(peer_identity(server_ssl_.get()), "CN=exporter2.flowsec.test");
}

TEST_F(MutualTlsTest, CommonNameCountsOnlyWithoutDnsSubjectAltName) {
  // exporter3 has no subjectAltName: its CN is its name (RFC 6125 §6.4.4).
  const Outcome o = connect("exporter3", {"exporter3.flowsec.test"});
  ASSERT_TRUE(o.server.done);
  EXPECT_TRUE(peer_allowed(server_ssl_.get(), {"exporter3.flowsec.test"}));
  EXPECT_EQ(peer_identity(server_ssl_.get()), "CN=exporter3.flowsec.test");
  // exporter1 has a DNS SAN equal to its CN; a CN-only look-up of another name fails.
  EXPECT_FALSE(peer_allowed(server_ssl_.get(), {"exporter1.flowsec.test"}));
}

TEST_F(MutualTlsTest, WithoutCaNoClientCertificateIsAsked) {
  server_ssl_.reset(server_->new_ssl());
  auto client_ctx = make(TlsRole::client, [] {
    TlsSettings s = own("exporter1");
    s.ca_file = pem("ca");
    return s;
  }());
  client_.reset(client_ctx->new_ssl("localhost"));
  const Outcome o = handshake(client_.get(), server_ssl_.get());
  ASSERT_TRUE(o.server.done);
  EXPECT_EQ(peer_identity(server_ssl_.get()), "");
  EXPECT_FALSE(peer_allowed(server_ssl_.get(), {"exporter1.flowsec.test"}));
}

TEST(PeerAllowedTest, IpEntriesMatchIpSubjectAltNames) {
  // peer_allowed() reads whichever certificate the SSL verified: here the client's view
  // of server.pem (DNS:localhost IP:127.0.0.1 IP:::1).
  ASSERT_TRUE(fs::exists(kCerts + "/.complete"));
  auto server_ctx = make(TlsRole::server, own("server"));
  auto client_ctx = make(TlsRole::client, trusting());
  SslPtr client(client_ctx->new_ssl("localhost"));
  SslPtr server(server_ctx->new_ssl());
  const Outcome o = handshake(client.get(), server.get());
  ASSERT_TRUE(o.client.done);
  EXPECT_TRUE(peer_allowed(client.get(), {"127.0.0.1"}));
  EXPECT_TRUE(peer_allowed(client.get(), {"::1"}));
  EXPECT_TRUE(peer_allowed(client.get(), {"localhost"}));
  EXPECT_FALSE(peer_allowed(client.get(), {"127.0.0.2", "other.example", "::2"}));
  EXPECT_FALSE(peer_allowed(nullptr, {"localhost"}));
  EXPECT_FALSE(peer_allowed(server.get(), {"localhost"}));  // the client sent no certificate
}

// ---- what is not a good TLS client ----

TEST_F(TlsTest, PlaintextOnATlsPortIsNotTls) {
  const std::vector<std::string> inputs = {
      // An IPFIX message header (RFC 7011 §3.1): version 10, length 16, ...
      std::string("\x00\x0a\x00\x10\x65\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", 16),
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "CONNECT collector:4740 HTTP/1.1\r\n\r\n",
      // NetFlow v9 header: version 9
      std::string("\x00\x09\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16),
  };
  for (const std::string& input : inputs) {
    SslPtr server(server_->new_ssl());
    BIO* s_bio = nullptr;
    BIO* raw = nullptr;
    ASSERT_EQ(BIO_new_bio_pair(&s_bio, 0, &raw, 0), 1);
    SSL_set_bio(server.get(), s_bio, s_bio);
    SSL_set_accept_state(server.get());
    ASSERT_EQ(BIO_write(raw, input.data(), static_cast<int>(input.size())),
              static_cast<int>(input.size()));
    Side side;
    step(server.get(), side);
    EXPECT_TRUE(side.failed) << input;
    EXPECT_EQ(side.refusal, TlsRefusal::not_tls) << describe(side.refusal) << " for " << input;
    BIO_free(raw);
  }
}

TEST_F(TlsTest, PeerGoneDuringTheHandshakeIsConnectionClosed) {
  SslPtr server(server_->new_ssl());
  BIO* s_bio = nullptr;
  BIO* raw = nullptr;
  ASSERT_EQ(BIO_new_bio_pair(&s_bio, 0, &raw, 0), 1);
  SSL_set_bio(server.get(), s_bio, s_bio);
  SSL_set_accept_state(server.get());
  // The first bytes of a TLS record, then EOF.
  ASSERT_EQ(BIO_write(raw, "\x16\x03\x01\x00", 4), 4);
  ASSERT_EQ(BIO_shutdown_wr(raw), 1);
  Side side;
  step(server.get(), side);
  EXPECT_TRUE(side.failed);
  EXPECT_EQ(side.refusal, TlsRefusal::connection_closed) << describe(side.refusal);
  BIO_free(raw);
}

CtxPtr old_tls_context(bool server) {
  CtxPtr ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_security_level(ctx.get(), 0);  // TLS 1.1 needs SHA-1/MD5, below level 1
  SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_1_VERSION);
  if (server) {
    SSL_CTX_use_certificate_chain_file(ctx.get(), pem("server").c_str());
    SSL_CTX_use_PrivateKey_file(ctx.get(), key("server").c_str(), SSL_FILETYPE_PEM);
  }
  return ctx;
}

TEST_F(TlsTest, Tls11ClientIsRefusedForProtocolVersion) {
  CtxPtr old = old_tls_context(false);
  SslPtr client(SSL_new(old.get()));
  SslPtr server(server_->new_ssl());
  const Outcome o = handshake(client.get(), server.get());
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::protocol_version) << describe(o.server.refusal);
  EXPECT_TRUE(o.client.failed);
  EXPECT_EQ(o.client.refusal, TlsRefusal::protocol_version) << describe(o.client.refusal);
}

TEST_F(TlsTest, Tls11ServerIsRefusedForProtocolVersion) {
  CtxPtr old = old_tls_context(true);
  auto client_ctx = make(TlsRole::client, trusting());
  client_.reset(client_ctx->new_ssl("localhost"));
  SslPtr server(SSL_new(old.get()));
  const Outcome o = handshake(client_.get(), server.get());
  EXPECT_TRUE(o.client.failed);
  EXPECT_EQ(o.client.refusal, TlsRefusal::protocol_version) << describe(o.client.refusal);
}

TEST(ClassifyTest, TimeoutWinsAndEmptiesTheQueue) {
  ERR_raise(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER);
  EXPECT_EQ(classify_handshake_failure(nullptr, true), TlsRefusal::handshake_timeout);
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_EQ(classify_handshake_failure(nullptr), TlsRefusal::connection_closed);
  ERR_raise(ERR_LIB_SSL, SSL_R_HTTP_REQUEST);
  EXPECT_EQ(classify_handshake_failure(nullptr), TlsRefusal::not_tls);
  ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
  EXPECT_EQ(classify_handshake_failure(nullptr), TlsRefusal::other);
}

TEST(ClassifyTest, FromOneErrorCode) {
  // What asio hands over: ERR_get_error() in an error_code of its ssl category.
  auto code = [](int reason) {
    ERR_raise(ERR_LIB_SSL, reason);
    return ERR_get_error();
  };
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_WRONG_VERSION_NUMBER)),
            TlsRefusal::not_tls);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_TLSV1_ALERT_UNKNOWN_CA)),
            TlsRefusal::unknown_ca);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED)),
            TlsRefusal::expired);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_UNSUPPORTED_PROTOCOL)),
            TlsRefusal::protocol_version);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)),
            TlsRefusal::no_client_certificate);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_UNEXPECTED_EOF_WHILE_READING)),
            TlsRefusal::connection_closed);
  EXPECT_EQ(classify_handshake_error(nullptr, 0), TlsRefusal::connection_closed);
  EXPECT_EQ(classify_handshake_error(nullptr, code(SSL_R_NO_SHARED_CIPHER)), TlsRefusal::other);
}

TEST_F(TlsTest, FromOneErrorCodeUsesTheVerifyResult) {
  const Outcome o = dial(trusting(), "localhost", "not-yet-valid");
  ASSERT_TRUE(o.client.failed);
  ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
  EXPECT_EQ(classify_handshake_error(client_.get(), ERR_get_error()), TlsRefusal::not_yet_valid);
}

TEST(DescribeTest, EveryRefusalHasItsOwnWords) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < kTlsRefusalCount; ++i) {
    const std::string words(describe(static_cast<TlsRefusal>(i)));
    EXPECT_FALSE(words.empty());
    EXPECT_TRUE(seen.insert(words).second) << words;
  }
  EXPECT_EQ(describe(TlsRefusal::expired), "certificate expired");
  EXPECT_EQ(describe(TlsRefusal::not_yet_valid), "certificate not yet valid");
  EXPECT_EQ(describe(TlsRefusal::self_signed), "self-signed certificate");
  EXPECT_EQ(describe(TlsRefusal::unknown_ca), "unknown CA");
  EXPECT_EQ(describe(TlsRefusal::name_mismatch), "name mismatch");
  EXPECT_EQ(describe(TlsRefusal::no_client_certificate), "no client certificate");
  EXPECT_EQ(describe(TlsRefusal::not_on_allow_list), "not on the allow-list");
  EXPECT_EQ(describe(TlsRefusal::protocol_version), "protocol version");
  EXPECT_EQ(describe(TlsRefusal::not_tls), "not TLS");
  EXPECT_EQ(describe(TlsRefusal::handshake_timeout), "handshake timeout");
}

// ---- DTLS 1.2 (SPEC §3 DTLS), over the same in-memory pair ----

TEST_F(TlsTest, DtlsHandshakeWithCookieExchange) {
  const Outcome o = dial(trusting(), "localhost", "server", TlsProtocol::dtls);
  EXPECT_TRUE(o.client.done);
  EXPECT_TRUE(o.server.done);
  EXPECT_EQ(SSL_version(client_.get()), DTLS1_2_VERSION);
  EXPECT_TRUE(SSL_get_options(server_ssl_.get()) & SSL_OP_COOKIE_EXCHANGE);
}

TEST_F(TlsTest, DtlsRefusalsAreClassifiedToo) {
  const Outcome o = dial(trusting(), "localhost", "expired", TlsProtocol::dtls);
  EXPECT_TRUE(o.client.failed);
  EXPECT_EQ(o.client.refusal, TlsRefusal::expired);
  const Outcome n = dial(trusting(), "127.0.0.1", "no-ip-san", TlsProtocol::dtls);
  EXPECT_EQ(n.client.refusal, TlsRefusal::name_mismatch);
}

TEST_F(TlsTest, DtlsWithoutPeerAddressMakesNoCookie) {
  auto server_ctx = make(TlsRole::server, own("server"), TlsProtocol::dtls);
  auto client_ctx = make(TlsRole::client, trusting(), TlsProtocol::dtls);
  SslPtr client(client_ctx->new_ssl("localhost"));
  SslPtr server(server_ctx->new_ssl());  // no set_dtls_peer, memory BIO: no peer to hash
  const Outcome o = handshake(client.get(), server.get());
  EXPECT_TRUE(o.server.failed);
  EXPECT_EQ(o.server.refusal, TlsRefusal::other);  // cookie generation callback failure
  EXPECT_FALSE(o.client.done);
}

// Steps a DTLS handshake by hand: ClientHello, HelloVerifyRequest (cookie for
// 192.0.2.1:40000), then the rest with the server told the peer is now `later_port`.
Outcome dtls_with_peer_port_change(std::uint16_t later_port) {
  auto server_ctx = make(TlsRole::server, own("server"), TlsProtocol::dtls);
  auto client_ctx = make(TlsRole::client, trusting(), TlsProtocol::dtls);
  SslPtr client(client_ctx->new_ssl("localhost"));
  SslPtr server(server_ctx->new_ssl());
  const IpAddress peer = *IpAddress::parse("192.0.2.1");
  set_dtls_peer(server.get(), peer, 40000);
  BIO* c_bio = nullptr;
  BIO* s_bio = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c_bio, 0, &s_bio, 0), 1);
  SSL_set_bio(client.get(), c_bio, c_bio);
  SSL_set_bio(server.get(), s_bio, s_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  Outcome o;
  step(client.get(), o.client);  // ClientHello
  step(server.get(), o.server);  // HelloVerifyRequest
  set_dtls_peer(server.get(), peer, later_port);
  Outcome rest = pump(client.get(), server.get());
  return rest;
}

TEST_F(TlsTest, DtlsCookieIsBoundToThePeerAddress) {
  const Outcome same = dtls_with_peer_port_change(40000);
  EXPECT_TRUE(same.client.done);
  EXPECT_TRUE(same.server.done);
  // The second ClientHello echoes the cookie but seems to come from another port.
  const Outcome moved = dtls_with_peer_port_change(40001);
  EXPECT_FALSE(moved.server.done);
  EXPECT_FALSE(moved.client.done);
}

// ---- start-up errors (SPEC §3 collector 1) ----

using flowsec::test::TempDir;

// <dir>/<name> with permissions `mode`: `text` written there, or a copy of file `from`.
std::string write_with_mode(const TempDir& dir, const std::string& name, const std::string& text,
                            fs::perms mode) {
  const std::string p = dir.write(name, text);
  fs::permissions(p, mode);
  return p;
}
std::string copy_with_mode(const TempDir& dir, const std::string& from, const std::string& name,
                           fs::perms mode) {
  const std::string p = dir / name;
  fs::copy_file(from, p, fs::copy_options::overwrite_existing);
  fs::permissions(p, mode);
  return p;
}

constexpr fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;

std::string create_error(TlsRole role, const TlsSettings& s,
                         TlsProtocol protocol = TlsProtocol::tls) {
  auto r = TlsContext::create(role, protocol, s);
  EXPECT_FALSE(r.has_value());
  if (r) return {};
  EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  return r.error();
}

TEST_F(TlsTest, ServerNeedsCertificateAndKey) {
  EXPECT_THAT(create_error(TlsRole::server, TlsSettings{}), HasSubstr("--tls-cert"));
  TlsSettings s;
  s.cert_file = pem("server");
  EXPECT_THAT(create_error(TlsRole::server, s), HasSubstr("--tls-priv-key"));
  EXPECT_THAT(create_error(TlsRole::server, s, TlsProtocol::dtls), HasSubstr("--tls-priv-key"));
}

TEST_F(TlsTest, ClientCertificateNeedsItsKey) {
  TlsSettings s;
  s.cert_file = pem("exporter1");
  EXPECT_THAT(create_error(TlsRole::client, s), HasSubstr("--tls-priv-key"));
  TlsSettings k;
  k.key_file = key("exporter1");
  EXPECT_THAT(create_error(TlsRole::client, k), HasSubstr("--tls-cert"));
}

TEST_F(TlsTest, MissingFilesAreNamed) {
  TlsSettings s = own("server");
  s.cert_file = kCerts + "/nonexistent.pem";
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-cert \"" + s.cert_file + "\": No such file or directory");
  s = own("server");
  s.key_file = kCerts + "/nonexistent.key";
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-priv-key \"" + s.key_file + "\": No such file or directory");
  s = own("server");
  s.ca_file = kCerts + "/nonexistent-ca.pem";
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-ca \"" + s.ca_file + "\": No such file or directory");
  TlsSettings c = trusting("nonexistent-ca");
  EXPECT_THAT(create_error(TlsRole::client, c), HasSubstr("nonexistent-ca.pem"));
}

TEST_F(TlsTest, UnreadableAndNotPemFilesAreNamed) {
  TempDir dir("tls-test");
  TlsSettings s = own("server");
  s.cert_file = dir / "";  // a directory
  EXPECT_THAT(create_error(TlsRole::server, s), HasSubstr("Is a directory"));
  s.cert_file = write_with_mode(dir, "garbage.pem", "not a certificate\n", kOwnerOnly);
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-cert \"" + s.cert_file + "\": no PEM certificate in it");
  s = own("server");
  s.key_file = pem("server");  // a certificate where the key should be
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-priv-key \"" + s.key_file + "\": no PEM private key in it");
  s = own("server");
  s.ca_file = key("ca");  // a key where the CA certificate should be
  EXPECT_EQ(create_error(TlsRole::server, s),
            "--tls-ca \"" + s.ca_file + "\": no PEM certificate in it");
}

TEST_F(TlsTest, KeyNotMatchingTheCertificateNamesBoth) {
  TlsSettings s = own("server");
  s.key_file = key("exporter1");
  const std::string e = create_error(TlsRole::server, s);
  EXPECT_THAT(e, HasSubstr(key("exporter1")));
  EXPECT_THAT(e, HasSubstr(pem("server")));
  EXPECT_THAT(e, HasSubstr("does not match"));
  EXPECT_THAT(create_error(TlsRole::client, s), HasSubstr("does not match"));
}

TEST_F(TlsTest, EncryptedKeyIsRefusedWithoutPrompting) {
  TempDir dir("tls-test");
  const std::string path = dir / "encrypted.key";
  {
    BIO* in = BIO_new_file(key("server").c_str(), "r");
    ASSERT_NE(in, nullptr);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
    BIO_free(in);
    ASSERT_NE(pkey, nullptr);
    BIO* out = BIO_new_file(path.c_str(), "w");
    char pass[] = "secret";
    ASSERT_EQ(
        PEM_write_bio_PKCS8PrivateKey(out, pkey, EVP_aes_256_cbc(), pass, 6, nullptr, nullptr), 1);
    BIO_free(out);
    EVP_PKEY_free(pkey);
  }
  fs::permissions(path, kOwnerOnly);
  TlsSettings s = own("server");
  s.key_file = path;
  EXPECT_THAT(create_error(TlsRole::server, s), HasSubstr("encrypted"));
}

TEST_F(TlsTest, ExpiredServerCertificateIsAStartUpError) {
  const std::string e = create_error(TlsRole::server, own("expired"));
  EXPECT_THAT(e, HasSubstr("--tls-cert \"" + pem("expired") + "\""));
  EXPECT_THAT(e, HasSubstr("expired on 2021-01-01"));
}

TEST_F(TlsTest, ExpiredClientCertificateOnlyWarns) {
  ::testing::internal::CaptureStderr();
  auto r = TlsContext::create(TlsRole::client, TlsProtocol::tls, own("expired"));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.has_value());
  EXPECT_THAT(err, HasSubstr("WARNING"));
  EXPECT_THAT(err, HasSubstr(pem("expired")));
}

TEST_F(TlsTest, GroupReadableKeyWarnsAndNamesTheFile) {
  TempDir dir("tls-test");
  TlsSettings s = own("server");
  s.key_file = copy_with_mode(dir, key("server"), "server.key",
                              kOwnerOnly | fs::perms::group_read);  // 0640
  ::testing::internal::CaptureStderr();
  auto r = TlsContext::create(TlsRole::server, TlsProtocol::tls, s);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.has_value());
  EXPECT_THAT(err, HasSubstr("WARNING"));
  EXPECT_THAT(err, HasSubstr("\"" + s.key_file + "\""));
  EXPECT_THAT(err, HasSubstr("0640"));

  fs::permissions(s.key_file, kOwnerOnly);  // 0600: silent
  ::testing::internal::CaptureStderr();
  r = TlsContext::create(TlsRole::server, TlsProtocol::tls, s);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.has_value());
  EXPECT_THAT(err, Not(HasSubstr(s.key_file)));
}

TEST_F(TlsTest, PeerListNeedsCa) {
  TlsSettings s = own("server");
  s.peers = {"exporter1.flowsec.test"};
  EXPECT_THAT(create_error(TlsRole::server, s), HasSubstr("--tls-peer needs --tls-ca"));
}

TEST_F(TlsTest, ContextsRememberTheirSettings) {
  TlsSettings s = own("server");
  s.ca_file = pem("ca");
  s.peers = {"exporter1.flowsec.test"};
  auto ctx = make(TlsRole::server, s, TlsProtocol::dtls);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->role(), TlsRole::server);
  EXPECT_EQ(ctx->protocol(), TlsProtocol::dtls);
  EXPECT_EQ(ctx->settings().peers, s.peers);
  EXPECT_NE(ctx->native(), nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->native()), DTLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->native()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  auto tls = make(TlsRole::client, trusting());
  EXPECT_EQ(SSL_CTX_get_min_proto_version(tls->native()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(tls->native()), SSL_VERIFY_PEER);
  TlsSettings insecure;
  insecure.insecure = true;
  EXPECT_EQ(SSL_CTX_get_verify_mode(make(TlsRole::client, insecure)->native()), SSL_VERIFY_NONE);
}

// ---- reload (SIGHUP, SPEC §3.5) ----

bool serves(const ContextPtr& server_ctx, const std::string& host) {
  auto client_ctx = make(TlsRole::client, trusting());
  SslPtr client(client_ctx->new_ssl(host));
  SslPtr server(server_ctx->new_ssl());
  const Outcome o = handshake(client.get(), server.get());
  return o.client.done && o.server.done;
}

TEST_F(TlsTest, ReloadSwapsTheContextForNewSessions) {
  TempDir dir("tls-test");
  TlsSettings s;
  s.cert_file = copy_with_mode(dir, pem("server"), "cert.pem", kOwnerOnly);
  s.key_file = copy_with_mode(dir, key("server"), "key.pem", kOwnerOnly);
  auto source = TlsContextSource::create(TlsRole::server, TlsProtocol::tls, s);
  ASSERT_TRUE(source.has_value()) << source.error();
  const auto before = (*source)->current();
  EXPECT_TRUE(serves(before, "localhost"));
  EXPECT_FALSE(serves(before, "other.example"));

  copy_with_mode(dir, pem("other-name"), "cert.pem", kOwnerOnly);
  copy_with_mode(dir, key("other-name"), "key.pem", kOwnerOnly);
  ASSERT_TRUE((*source)->reload().has_value());
  const auto after = (*source)->current();
  EXPECT_NE(after, before);
  EXPECT_EQ(after->role(), TlsRole::server);
  EXPECT_EQ(after->settings().cert_file, s.cert_file);
  EXPECT_TRUE(serves(after, "other.example"));
  EXPECT_FALSE(serves(after, "localhost"));
  EXPECT_TRUE(serves(before, "localhost"));  // the old context is untouched
}

TEST_F(TlsTest, FailedReloadKeepsTheOldContext) {
  TempDir dir("tls-test");
  TlsSettings s;
  s.cert_file = copy_with_mode(dir, pem("server"), "cert.pem", kOwnerOnly);
  s.key_file = copy_with_mode(dir, key("server"), "key.pem", kOwnerOnly);
  auto source = TlsContextSource::create(TlsRole::server, TlsProtocol::tls, s);
  ASSERT_TRUE(source.has_value()) << source.error();
  const auto before = (*source)->current();

  // Half-finished certificate rotation.
  copy_with_mode(dir, key("exporter1"), "key.pem", kOwnerOnly);
  auto r = (*source)->reload();
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr(s.key_file));
  EXPECT_EQ((*source)->current(), before);
  EXPECT_TRUE(serves((*source)->current(), "localhost"));

  fs::remove(s.cert_file);
  r = (*source)->reload();
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr(s.cert_file));
  EXPECT_EQ((*source)->current(), before);
}

TEST_F(TlsTest, SourceCreateReportsErrors) {
  auto r = TlsContextSource::create(TlsRole::server, TlsProtocol::tls, own("expired"));
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("expired"));
}

}  // namespace
}  // namespace flowsec::transport
