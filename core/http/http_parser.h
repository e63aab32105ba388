// HTTP/1 parsing over llhttp with strict framing. The parser stops at two points of every
// message, the end of the head and the end of the message, so the caller can forward the body's
// raw bytes (chunk framing included) without re-encoding them; anything ambiguous is an error.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/http/chunk_framing.h"
#include "core/http/http_head.h"

namespace sluice::core {

struct ParseLimits {
  uint32_t request_line_bytes = 8192;
  uint32_t header_bytes = 32768;
  uint32_t header_count = 100;
};

enum class ParseEvent : uint8_t {
  kNeedMore,  // every byte consumed; the message goes on
  kHead,      // the head is complete (bytes up to and including its blank line consumed)
  kEnd,       // the message is complete; bytes after it belong to the next message
  kUpgrade,   // after the kEnd of a message that switches protocols (next execute, 0 bytes
              // consumed): the rest of the connection is another protocol
  kError,     // malformed: error_status() says which answer a client gets
};

struct ParseStep {
  ParseEvent event;
  size_t consumed;  // bytes of the input that belong to what was reported
};

class HttpParser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };

  HttpParser(Kind kind, HeadPool& heads, const ParseLimits& limits);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Forgets any message in progress, as on a fresh connection.
  void reset();

  // Parses from `data`; stops at the first event. Call again with the rest after kHead/kEnd.
  ParseStep execute(const char* data, size_t length);
  // Data bytes of the chunked body being read, chunk framing excluded.
  uint64_t chunk_data_bytes() const { return chunks_.data_bytes(); }
  // Tells the parser the peer closed; completes a message delimited by close. Returns kEnd or
  // kError (truncated message).
  ParseStep finish();

  // De-chunking: body bytes (without chunk framing) go to `sink` as they are parsed. Used when
  // a chunked response goes to an HTTP/1.0 client, which cannot read chunked coding.
  using BodySink = void (*)(void* context, const char* data, size_t length);
  void set_body_sink(BodySink sink, void* context) {
    body_sink_ = sink;
    body_context_ = context;
  }

  // For requests: the message ended in kUpgrade but the backend did not switch protocols (no
  // 101), so the bytes after it are the next HTTP request after all.
  void decline_upgrade();
  // For responses: the request was HEAD, so the next response has no body whatever it says.
  void expect_no_body() { no_body_ = true; }
  // The head of the message being parsed (valid from kHead until release_head()).
  MessageHead* head() { return head_.get(); }
  std::unique_ptr<MessageHead> release_head() { return std::move(head_); }
  bool in_body() const { return state_ == State::kBody; }
  bool between_messages() const { return state_ == State::kIdle || state_ == State::kDone; }
  // 400, 414 or 431 for requests; 502 for responses.
  int error_status() const { return error_status_; }
  const char* error_reason() const { return error_reason_; }
  void set_limits(const ParseLimits& limits) { limits_ = limits; }
  // For requests on a forward proxy: CONNECT host:port is a request like any other (elsewhere it
  // is answered 405). Its head's host() is the target's authority.
  void allow_connect(bool allowed) { connect_allowed_ = allowed; }

 private:
  enum class State : uint8_t { kIdle, kHead, kBody, kDone, kFailed };

  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t n);
  static int on_status(llhttp_t* p, const char* at, size_t n);
  static int on_header_field(llhttp_t* p, const char* at, size_t n);
  static int on_header_value(llhttp_t* p, const char* at, size_t n);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t n);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  int fail(int status, const char* reason);
  int check_head_size(size_t added);
  bool scan_head_bytes(const char* data, size_t length, bool head_complete);
  int decide_framing();
  int check_request_fields();
  int check_target_and_host(size_t host_index);
  void drop_h2c_upgrade();
  ParseStep execute_chunked(const char* data, size_t length);
  ParseStep failure(size_t consumed);

  llhttp_t llhttp_;
  HeadPool& heads_;
  ParseLimits limits_;
  std::unique_ptr<MessageHead> head_;
  ChunkFraming chunks_;        // checks every byte of a chunked body before llhttp sees it
  bool chunked_body_ = false;  // kept here: the caller may take the head away at kHead
  BodySink body_sink_ = nullptr;
  void* body_context_ = nullptr;
  State state_ = State::kIdle;
  bool no_body_ = false;
  bool upgrade_declined_ = false;  // resume as HTTP when llhttp pauses for the upgrade
  bool in_value_ = false;
  bool connect_allowed_ = false;
  size_t field_bytes_ = 0;           // header names and values, plus 4 per field for ": " and CRLF
  size_t raw_head_bytes_ = 0;        // every byte of the head, whitespace included
  bool line_start_pending_ = false;  // the previous read ended a head line
  int error_status_ = 0;
  const char* error_reason_ = "";
  Kind kind_;
};

}  // namespace sluice::core
