// The TLS stream tests' loop, byte helpers and accepted stream (test/tls/tls_stream_fixture.h).
#include "test/tls/tls_stream_fixture.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <thread>

#include "conf/config.h"
#include "core/io/log.h"

namespace sluice::test::tls_stream {

Loop::Loop() {
  core::set_log_level(core::LogLevel::kError);  // refusals and failures are what tests do
  uv_loop_init(&loop_);
}

Loop::~Loop() {
  for (int i = 0; i < 100 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop_) == 0);
  core::set_log_level(core::LogLevel::kInfo);
}

bool Loop::run_until(const std::function<bool()>& done, uint64_t limit_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  for (;;) {
    pump();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int write_slices(core::Stream& stream, core::BlockPool& pool,
                 const std::vector<std::string>& parts) {
  std::vector<core::Slice> slices;
  for (const std::string& part : parts) {
    core::Block* block = pool.acquire(part.size());
    std::memcpy(block->data(), part.data(), part.size());
    slices.push_back(core::Slice{block, block->data(), part.size()});
  }
  const int r = stream.write(slices.data(), slices.size());
  for (core::Slice& s : slices) core::block_unref(s.block);
  return r;
}

std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return out;
}

Accepted::Accepted(const AcceptSetup& setup) {
  conf::ListenerTlsConfig config;
  config.certificates.push_back({leaf_.cert, leaf_.key, ""});
  config.handshake_timeout_ms = setup.timeout_ms;
  if (setup.client_ca) config.client_ca = pki_.ca_cert();
  std::vector<std::string> errors, warnings;
  context_ = tls::ServerContext::load(config, "/listeners/0/tls", &errors, &warnings);
  REQUIRE(context_ != nullptr);
  core::Stream* transport = MemoryStream::make(loop.get(), loop.pool(), &peer_);
  if (setup.breakable) transport = breakable = new BreakableStream(transport);
  stream = tls::TlsStream::accept(loop.get(), loop.pool(), transport, context_->new_session(),
                                  context_, context_->handshake_timeout_ms());
  REQUIRE(stream != nullptr);
  stream->set_handler(&handler);
  if (setup.read_at_once) stream->read_start();
  client_ctx_ = client_context(pki_.ca_cert());
  client = std::make_unique<SslEnd>(SSL_new(client_ctx_.get()), Role::kClient);
  SSL_set_tlsext_host_name(client->ssl(), "app.test");
  static constexpr unsigned char kAlpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(client->ssl(), kAlpn, sizeof kAlpn - 1);
}

void Accepted::exchange() {
  for (int i = 0; i < 100; ++i) {
    const std::string out = client->drain();
    if (!out.empty()) peer_->send(out);
    loop.pump();
    const std::string in = peer_->take_received();
    client->feed(in);
    if (out.empty() && in.empty()) return;
  }
  FAIL("bytes kept flowing");
}

void Accepted::handshake() {
  for (int i = 0; i < 10 && client->handshake() == 0; ++i) exchange();
  INFO("client: " << client->error());
  REQUIRE(client->done());
  exchange();
  CHECK(client->read().empty());
  exchange();
  REQUIRE(stream->transport() != nullptr);
  REQUIRE_FALSE(stream->transport()->version.empty());
}

void Accepted::client_done_but_finished_unsent() {
  for (int i = 0; i < 10 && client->handshake() == 0; ++i) {
    const std::string out = client->drain();
    if (!out.empty()) peer_->send(out);
    loop.pump();
    client->feed(peer_->take_received());
  }
  REQUIRE(client->done());
}

}  // namespace sluice::test::tls_stream
