// The messages exchange tests send and expect: requests as a client sends them to app.test,
// the same requests as the proxy forwards them for kClientIp, and backend responses.
#pragma once

#include <string>
#include <string_view>

namespace sluice::test {

inline std::string get_request(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: app.test\r\n\r\n";
}

// The proxy's own fields, as they close every forwarded request head from kClientIp to
// app.test on a transparent route (the default).
inline const std::string kForwardingFields =
    "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: app.test\r\n"
    "Forwarded: for=192.0.2.7;proto=http;host=app.test\r\nVia: 1.1 sluice\r\n";

inline std::string forwarded_get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: app.test\r\n" + kForwardingFields +
         "\r\n";
}

// A backend's response head (and what follows it) as the client gets it: the proxy's Via
// closes the head, before any Connection field the proxy adds.
inline std::string relayed(std::string_view response) {
  const size_t end = response.find("\r\n\r\n") + 2;
  return std::string(response.substr(0, end)) + "Via: 1.1 sluice\r\n" +
         std::string(response.substr(end));
}

inline std::string ok_response(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

}  // namespace sluice::test
