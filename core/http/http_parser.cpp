// Strict HTTP/1 framing on top of llhttp. llhttp already rejects most malformed input (bad
// chunk sizes, bare CR, CL together with TE, duplicate lengths); the checks here close the
// gaps it leaves open for a proxy: obs-fold, whitespace before the colon, Host and target rules,
// limits, and chunked framing, which Debian's non-strict llhttp checks only loosely.
#include "core/http/http_parser.h"

#include <cstring>

#include "core/http/request_target.h"

namespace sluice::core {
namespace {

HttpParser& self(llhttp_t* p) {
  return *static_cast<HttpParser*>(p->data);
}

// The last coding must be chunked and chunked must appear once: anything else leaves the body
// length to interpretation, which is how request smuggling starts.
bool transfer_coding_is_chunked(const MessageHead& head) {
  int chunked = 0;
  std::string_view last;
  for (size_t i = 0; i < head.field_count(); ++i) {
    if (head.kind(i) != FieldKind::kTransferEncoding) continue;
    std::string_view list = head.value(i), item;
    while (next_list_item(&list, &item)) {
      if (item.empty()) continue;
      last = item;
      if (equals_ignore_case(item, "chunked")) ++chunked;
    }
  }
  return chunked == 1 && equals_ignore_case(last, "chunked");
}

// An Upgrade offering nothing but h2c asks to speak HTTP/2 on this connection, which is not the
// proxy's to pass on to an HTTP/1.1 backend; RFC 9113 3.2 lets a server ignore the offer and
// answer in HTTP/1.1. A list naming other protocols too stays an upgrade (the head writer drops
// h2c from it), so a WebSocket handshake that also offers h2c still works.
bool offers_only_h2c(const MessageHead& head) {
  bool offered = false;
  for (size_t i = 0; i < head.field_count(); ++i) {
    if (head.kind(i) != FieldKind::kUpgrade) continue;
    std::string_view list = head.value(i), item;
    while (next_list_item(&list, &item)) {
      if (item.empty()) continue;
      if (!equals_ignore_case(item, "h2c")) return false;
      offered = true;
    }
  }
  return offered;
}

}  // namespace

const llhttp_settings_t* HttpParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t init;
    llhttp_settings_init(&init);
    init.on_message_begin = &HttpParser::on_message_begin;
    init.on_url = &HttpParser::on_url;
    init.on_status = &HttpParser::on_status;
    init.on_header_field = &HttpParser::on_header_field;
    init.on_header_value = &HttpParser::on_header_value;
    init.on_headers_complete = &HttpParser::on_headers_complete;
    init.on_message_complete = &HttpParser::on_message_complete;
    init.on_body = &HttpParser::on_body;
    return init;
  }();
  return &s;
}

HttpParser::HttpParser(Kind kind, HeadPool& heads, const ParseLimits& limits)
    : heads_(heads), limits_(limits), kind_(kind) {
  llhttp_init(&llhttp_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, settings());
  llhttp_.data = this;
}

void HttpParser::reset() {
  llhttp_init(&llhttp_, kind_ == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, settings());
  llhttp_.data = this;
  state_ = State::kIdle;
  error_status_ = 0;
  error_reason_ = "";
  no_body_ = false;
  upgrade_declined_ = false;
  body_sink_ = nullptr;
}

int HttpParser::fail(int status, const char* reason) {
  if (error_status_ == 0) {
    error_status_ = kind_ == Kind::kRequest ? status : 502;
    error_reason_ = reason;
  }
  return -1;
}

int HttpParser::check_head_size(size_t added) {
  field_bytes_ += added;
  if (field_bytes_ > limits_.header_bytes) return fail(431, "request header fields too large");
  return 0;
}

// llhttp joins obs-fold continuation lines silently, and skips whitespace without reporting it,
// so the raw head bytes are checked here: no line may start with SP or HT, and padding cannot
// grow a head past the limits.
bool HttpParser::scan_head_bytes(const char* data, size_t length, bool head_complete) {
  raw_head_bytes_ += length;
  if (raw_head_bytes_ > size_t{limits_.request_line_bytes} + limits_.header_bytes + 1024) {
    fail(431, "request header fields too large");
    return false;
  }
  // A folded response field reaches us unfolded (llhttp joins the pieces), so only requests,
  // where the framing decision is at stake, are scanned.
  if (length == 0 || kind_ == Kind::kResponse) return true;
  if (line_start_pending_ && (data[0] == ' ' || data[0] == '\t')) {
    fail(400, "obsolete line folding in a header");
    return false;
  }
  for (const char* p = data;
       (p = static_cast<const char*>(std::memchr(p, '\n', data + length - p)));) {
    ++p;
    if (p == data + length) break;
    if (*p == ' ' || *p == '\t') {
      fail(400, "obsolete line folding in a header");
      return false;
    }
  }
  line_start_pending_ = !head_complete && data[length - 1] == '\n';
  return true;
}

int HttpParser::on_message_begin(llhttp_t* p) {
  HttpParser& me = self(p);
  if (!me.head_)
    me.head_ = me.heads_.acquire();
  else
    me.head_->clear();
  me.state_ = State::kHead;
  me.chunked_body_ = false;
  me.field_bytes_ = 0;
  me.raw_head_bytes_ = 0;
  me.line_start_pending_ = false;
  me.in_value_ = false;
  return 0;
}

int HttpParser::on_url(llhttp_t* p, const char* at, size_t n) {
  HttpParser& me = self(p);
  me.head_->append_target(at, n);
  if (me.head_->target().size() > me.limits_.request_line_bytes)
    return me.fail(414, "request line too long");
  return 0;
}

int HttpParser::on_status(llhttp_t* p, const char* at, size_t n) {
  self(p).head_->append_target(at, n);
  return 0;
}

int HttpParser::on_header_field(llhttp_t* p, const char* at, size_t n) {
  HttpParser& me = self(p);
  // llhttp rejects whitespace inside a name but lets "Name :" through, handing us "Name ".
  // The space can only end a piece, so checking each piece's last byte is enough.
  if (n > 0 && (at[n - 1] == ' ' || at[n - 1] == '\t'))
    return me.fail(400, "whitespace in a header name or before its colon");
  // Trailers: checked by ChunkFraming, not kept. The head may be gone by now (the caller can
  // take it at kHead), so nothing here may touch it.
  if (me.state_ == State::kBody) return 0;
  const bool starts = me.in_value_ || me.head_->field_count() == 0;
  if (starts && me.head_->field_count() >= me.limits_.header_count)
    return me.fail(431, "too many header fields");
  me.head_->append_name(at, n, starts);
  me.in_value_ = false;
  return me.check_head_size(n + 4);
}

int HttpParser::on_header_value(llhttp_t* p, const char* at, size_t n) {
  HttpParser& me = self(p);
  if (me.state_ == State::kBody) return 0;
  me.head_->append_value(at, n, !me.in_value_);
  me.in_value_ = true;
  return me.check_head_size(n);
}

int HttpParser::on_headers_complete(llhttp_t* p) {
  HttpParser& me = self(p);
  MessageHead& head = *me.head_;
  head.finalize();
  head.method = p->method;
  head.version_major = p->http_major;
  head.version_minor = p->http_minor;
  head.status = p->status_code;
  head.keep_alive = llhttp_should_keep_alive(p) != 0;
  head.upgrade = p->upgrade != 0;
  if (me.kind_ == Kind::kRequest && me.check_request_fields() != 0) return -1;
  if (me.decide_framing() != 0) return -1;
  me.state_ = State::kBody;
  me.in_value_ = false;
  return HPE_PAUSED;
}

int HttpParser::check_request_fields() {
  MessageHead& head = *head_;
  if (head.method == HTTP_CONNECT && !connect_allowed_)
    return fail(405, "CONNECT is not supported");
  int hosts = 0;
  size_t host_index = head.field_count();
  for (size_t i = 0; i < head.field_count(); ++i) {
    if (head.kind(i) != FieldKind::kHost) continue;
    ++hosts;
    host_index = i;
  }
  if (hosts > 1) return fail(400, "more than one Host header");
  const bool http11 = head.version_major == 1 && head.version_minor >= 1;
  if (http11 && hosts == 0) return fail(400, "missing Host header");
  if (check_target_and_host(host_index) != 0) return -1;
  if (head.upgrade && offers_only_h2c(head)) drop_h2c_upgrade();
  std::string_view expect;
  if (head.find(FieldKind::kExpect, &expect))
    head.expect_continue = equals_ignore_case(expect, "100-continue");
  return 0;
}

// The Host field must be valid even when an absolute-form target overrides it (RFC 9112 3.2),
// and the target's authority, which the backend gets as Host, is held to the same syntax.
int HttpParser::check_target_and_host(size_t host_index) {
  MessageHead& head = *head_;
  if (host_index < head.field_count()) {
    const std::string_view host = head.value(host_index);
    if (!valid_host(host)) return fail(400, "invalid Host header");
    head.set_host(host);
  }
  const std::string_view target = head.target();
  if (head.method == HTTP_CONNECT) {  // authority-form: host and port, nothing else
    std::string_view host;
    uint16_t port = 0;
    if (!split_authority(target, 0, &host, &port))
      return fail(400, "a CONNECT target must be host:port");
    head.set_absolute_form(target, {});
    return 0;
  }
  if (target.empty() || target.front() == '/' || target == "*") return 0;
  AbsoluteTarget absolute;
  if (const char* why = parse_absolute_form(target, &absolute)) return fail(400, why);
  head.set_absolute_form(absolute.authority, absolute.rest);
  return 0;
}

// llhttp reads its own `upgrade` after this callback to decide whether to pause for a protocol
// switch, so clearing it makes the request an ordinary one for llhttp as well.
void HttpParser::drop_h2c_upgrade() {
  llhttp_.upgrade = 0;
  head_->upgrade = false;
}

int HttpParser::decide_framing() {
  MessageHead& head = *head_;
  const bool response = kind_ == Kind::kResponse;
  const bool bodiless_status =
      response && (head.status < 200 || head.status == 204 || head.status == 304);
  if (llhttp_.flags & F_TRANSFER_ENCODING) {
    if (!transfer_coding_is_chunked(head))
      return fail(400, "transfer coding other than a final chunked");
    if (!response && head.version_major == 1 && head.version_minor == 0)
      return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
  }
  if ((response && no_body_) || bodiless_status) {
    llhttp_.flags |= F_SKIPBODY;  // honoured by llhttp once we resume
    head.framing = Framing::kNone;
  } else if (llhttp_.flags & F_CHUNKED) {
    head.framing = Framing::kChunked;
    chunked_body_ = true;
    chunks_.begin(limits_.header_bytes);
  } else if (llhttp_.flags & F_CONTENT_LENGTH) {
    head.framing = llhttp_.content_length ? Framing::kLength : Framing::kNone;
    head.content_length = llhttp_.content_length;
  } else {
    head.framing = response && !head.upgrade ? Framing::kUntilClose : Framing::kNone;
  }
  if (head.framing == Framing::kUntilClose) head.keep_alive = false;
  return 0;
}

int HttpParser::on_body(llhttp_t* p, const char* at, size_t n) {
  HttpParser& me = self(p);
  if (me.body_sink_) me.body_sink_(me.body_context_, at, n);
  return 0;
}

int HttpParser::on_message_complete(llhttp_t* p) {
  HttpParser& me = self(p);
  if (me.kind_ == Kind::kResponse && me.head_ && me.head_->status >= 200) me.no_body_ = false;
  me.state_ = State::kDone;
  me.body_sink_ = nullptr;
  return HPE_PAUSED;
}

ParseStep HttpParser::failure(size_t consumed) {
  state_ = State::kFailed;
  if (error_status_ == 0) {
    fail(400, llhttp_get_error_reason(&llhttp_));
    if (llhttp_get_errno(&llhttp_) == HPE_INVALID_METHOD && kind_ == Kind::kRequest)
      error_reason_ = "invalid method";
  }
  return {ParseEvent::kError, consumed};
}

// llhttp pauses for the upgrade on the next execute() after the message's end, so the decline
// may come before or after that pause.
void HttpParser::decline_upgrade() {
  if (llhttp_get_errno(&llhttp_) == HPE_PAUSED_UPGRADE)
    llhttp_resume_after_upgrade(&llhttp_);
  else
    upgrade_declined_ = true;
}

ParseStep HttpParser::execute(const char* data, size_t length) {
  if (state_ == State::kFailed) return {ParseEvent::kError, 0};
  if (state_ == State::kDone) state_ = State::kIdle;
  if (state_ == State::kBody && chunked_body_) return execute_chunked(data, length);
  const bool reading_head = state_ != State::kBody;
  const llhttp_errno_t err = llhttp_execute(&llhttp_, data, length);
  const char* pos = llhttp_get_error_pos(&llhttp_);
  const size_t consumed = pos ? static_cast<size_t>(pos - data) : length;
  if (err == HPE_PAUSED_UPGRADE && upgrade_declined_) {
    upgrade_declined_ = false;
    llhttp_resume_after_upgrade(&llhttp_);
    ParseStep rest = execute(data + consumed, length - consumed);
    rest.consumed += consumed;
    return rest;
  }
  switch (err) {
    case HPE_OK:
      if (state_ == State::kHead && !scan_head_bytes(data, length, false)) return failure(length);
      return {ParseEvent::kNeedMore, length};
    case HPE_PAUSED:
      llhttp_resume(&llhttp_);
      if (state_ == State::kBody) {
        if (reading_head && !scan_head_bytes(data, consumed, true)) return failure(consumed);
        return {ParseEvent::kHead, consumed};
      }
      return {ParseEvent::kEnd, consumed};
    case HPE_PAUSED_UPGRADE:
      state_ = State::kDone;
      return {ParseEvent::kUpgrade, consumed};
    default:
      return failure(consumed);
  }
}

// llhttp gets only the bytes the checker accepted, so nothing it reports (de-chunked bytes to
// the sink, the message's end) rests on framing the checker refused; and the two must agree on
// where the body ends.
ParseStep HttpParser::execute_chunked(const char* data, size_t length) {
  size_t checked = 0;
  const ChunkFraming::Status status = chunks_.scan(data, length, &checked);
  if (status == ChunkFraming::Status::kError) {
    fail(400, chunks_.error());
    return failure(checked);
  }
  const bool ended = status == ChunkFraming::Status::kEnd;
  const llhttp_errno_t err = llhttp_execute(&llhttp_, data, checked);
  if (err == HPE_OK && !ended) return {ParseEvent::kNeedMore, length};
  const char* pos = llhttp_get_error_pos(&llhttp_);
  const size_t consumed = pos ? static_cast<size_t>(pos - data) : checked;
  if (err == HPE_PAUSED && ended && state_ == State::kDone && consumed == checked) {
    llhttp_resume(&llhttp_);
    return {ParseEvent::kEnd, consumed};
  }
  if (err == HPE_OK || err == HPE_PAUSED) fail(400, "chunked body ends where llhttp does not");
  return failure(err == HPE_OK ? checked : consumed);
}

ParseStep HttpParser::finish() {
  if (state_ == State::kFailed) return {ParseEvent::kError, 0};
  if (state_ == State::kIdle || state_ == State::kDone) return {ParseEvent::kEnd, 0};
  const llhttp_errno_t err = llhttp_finish(&llhttp_);
  if ((err == HPE_OK || err == HPE_PAUSED) && state_ == State::kDone) {
    llhttp_resume(&llhttp_);
    return {ParseEvent::kEnd, 0};
  }
  fail(400, "connection closed in the middle of a message");
  state_ = State::kFailed;
  return {ParseEvent::kError, 0};
}

}  // namespace sluice::core
