// Answers made from a stored response: the whole of it, its head alone for HEAD, 304 for a
// client whose validators still hold, 206 for one byte range, 416 for a range past its end
// (RFC 9110 14, 15.4.5). The head goes through the proxy's head writer with Age, Content-Length
// and Cache-Status added; the body goes out as slices of the stored blocks, never copied.
#pragma once

#include <memory>
#include <string_view>

#include "core/cache/stored_response.h"
#include "core/proxy/client_side.h"
#include "core/proxy/response_cache.h"

namespace sluice::core::cache {

// Sends the answer `query` gets from `stored` to `client`; `status_text` is the Cache-Status
// value ("sluice; hit"). Returns what went.
CachedAnswer answer(const std::shared_ptr<const StoredResponse>& stored, const CacheQuery& query,
                    ClientSide& client, std::string_view status_text, int64_t now);

// Sends `stored`'s head alone as the start of a response whose body follows as it arrives:
// with Content-Length when `length` is known (>= 0), else chunked (HTTP/1.1 clients) or up to
// the close. Sets *chunked when the body must go chunked.
CachedAnswer answer_head(const StoredResponse& stored, const CacheQuery& query, ClientSide& client,
                         std::string_view status_text, int64_t length, int64_t now, bool* chunked);

// Sends body bytes [from, to) of `stored` (chunk-framed when `chunked`). Returns bytes sent.
uint64_t answer_body(const std::shared_ptr<const StoredResponse>& stored, uint64_t from,
                     uint64_t to, bool chunked, ClientSide& client, BlockPool& blocks);
// The last chunk of a chunked body.
uint64_t answer_last_chunk(ClientSide& client, BlockPool& blocks);

// One byte range of a "Range: bytes=..." value against a body of `size` bytes (RFC 9110
// 14.1.2): kNone for anything this answers with the whole body (no Range, several ranges,
// another unit, a malformed value), kUnsatisfiable for a valid range that starts past the end.
enum class RangeKind : uint8_t { kNone, kRange, kUnsatisfiable };
RangeKind parse_range(std::string_view value, uint64_t size, uint64_t* first, uint64_t* last);

}  // namespace sluice::core::cache
