// Specification of a listener's TLS context, part three: session tickets, which resume across
// contexts loaded from the same config (other workers, reloads) and across key rotations, until
// the key that sealed them is no longer kept, and which session_tickets false turns off.
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <memory>

#include "test/tls/server_context_fixture.h"
#include "tls/server_context.h"
#include "tls/ticket_keys.h"

using namespace sluice::test;
using namespace sluice::test::listener_tls;
using sluice::conf::ListenerTlsConfig;
using sluice::tls::Owned;
using sluice::tls::ServerContext;
using sluice::tls::TicketKeys;

namespace {

// A session the client got from `context`, for resuming; fails the test when there is none.
SSL_SESSION* session_from(const ServerContext& context, SSL_CTX* client_ctx) {
  auto client = client_of(client_ctx, "www.example.com");
  auto server = server_of(context);
  REQUIRE(shake_hands(*client, *server));
  SSL_SESSION* session = SSL_get1_session(client->ssl());
  REQUIRE(session != nullptr);
  client->shutdown();  // a connection freed without it marks its session unfit to resume
  return session;
}

// Whether a client offering `session` resumes it with `context` (both ends must agree).
bool resumes(const ServerContext& context, SSL_CTX* client_ctx, SSL_SESSION* session) {
  auto client = client_of(client_ctx, "www.example.com");
  REQUIRE(SSL_set_session(client->ssl(), session) == 1);
  auto server = server_of(context);
  REQUIRE(shake_hands(*client, *server));
  CHECK(SSL_session_reused(client->ssl()) == SSL_session_reused(server->ssl()));
  client->shutdown();
  return SSL_session_reused(server->ssl()) == 1;
}

struct TicketSetup {
  TestPki pki;
  ListenerTlsConfig config;
  std::shared_ptr<const ServerContext> context;
  Owned<SSL_CTX> client_ctx;
  TicketSetup() {
    config = config_of({pki.leaf({"www.example.com"})});
    context = load_ok(config);
    client_ctx = client_context(pki.ca_cert());
  }
};

}  // namespace

TEST_CASE("a ticket from one context resumes on another loaded from the same config",
          "[tls][tickets]") {
  TicketSetup s;
  auto other = load_ok(s.config);  // as another worker, or after a reload
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_has_ticket(session) == 1);
  CHECK(resumes(*other, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a TLS 1.2 ticket from one context resumes on another", "[tls][tickets]") {
  TicketSetup s;
  SSL_CTX_set_max_proto_version(s.client_ctx.get(), TLS1_2_VERSION);
  auto other = load_ok(s.config);
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_has_ticket(session) == 1);
  CHECK(resumes(*other, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a ticket still resumes after one and after two key rotations", "[tls][tickets]") {
  TicketSetup s;
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  TicketKeys::process().rotate();
  CHECK(resumes(*s.context, s.client_ctx.get(), session));
  TicketKeys::process().rotate();
  CHECK(resumes(*s.context, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("a ticket no longer resumes after kKept key rotations", "[tls][tickets]") {
  TicketSetup s;
  SSL_SESSION* session = session_from(*s.context, s.client_ctx.get());
  CHECK(SSL_SESSION_is_resumable(session) == 1);
  for (size_t i = 0; i < TicketKeys::kKept; ++i) TicketKeys::process().rotate();
  CHECK_FALSE(resumes(*s.context, s.client_ctx.get(), session));
  SSL_SESSION_free(session);
}

TEST_CASE("rotation keeps kKept keys, the newest first", "[tls][tickets]") {
  const auto before = TicketKeys::process().keys();
  TicketKeys::process().rotate();
  const auto after = TicketKeys::process().keys();
  REQUIRE_FALSE(after->empty());
  CHECK(after->size() <= TicketKeys::kKept);
  CHECK(after->front().name != before->front().name);
  REQUIRE(after->size() >= 2);
  CHECK((*after)[1].name == before->front().name);
  for (size_t i = 0; i < TicketKeys::kKept; ++i) TicketKeys::process().rotate();
  CHECK(TicketKeys::process().keys()->size() == TicketKeys::kKept);
}

TEST_CASE("with session_tickets false no ticket is issued and nothing resumes", "[tls][tickets]") {
  TicketSetup s;
  s.config.session_tickets = false;
  auto context = load_ok(s.config);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    INFO("version " << std::hex << version);
    SSL_CTX_set_max_proto_version(s.client_ctx.get(), version);
    SSL_SESSION* session = session_from(*context, s.client_ctx.get());
    CHECK(SSL_SESSION_has_ticket(session) == 0);
    CHECK_FALSE(resumes(*context, s.client_ctx.get(), session));
    SSL_SESSION_free(session);
  }
}
