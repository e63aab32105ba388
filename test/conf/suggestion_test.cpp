// "Did you mean": an unknown key or an unknown value of a fixed set that is a near miss of a
// known one (conf/near_miss.h) is answered with it; anything else only with what is expected.
#include <catch2/catch.hpp>
#include <string>

#include "conf/config.h"
#include "test/conf/config_text.h"

namespace sluice::conf {
namespace {

using test::config_text;
using test::kBackendLine;
using test::kRouteLine;
using test::kTopLine;
using test::kUpstreamLine;
using test::message_at;
using test::require_error;

// A config whose only listener has the tls members `tls` (the files are not read here).
std::string with_listener_tls(const std::string& tls) {
  return "{\n"
         "\"listeners\": [ { \"address\": \"127.0.0.1:8443\", \"tls\": {\n"
         "  \"certificates\": [ { \"cert\": \"site.crt\", \"key\": \"site.key\" } ],\n"
         "  " +
         tls +
         " } } ],\n"  // line 4
         "\"upstreams\": { \"app\": { \"backends\": [ { \"address\": \"127.0.0.1:9001\" } ] } },\n"
         "\"routes\": [ { \"upstream\": \"app\" } ]\n"
         "}\n";
}
constexpr int kTlsLine = 4;

// --- keys ---

TEST_CASE("a misspelt key is answered with the key it nearly matches", "[conf][suggest]") {
  require_error(R"({
  "listeners": [ { "adress": "127.0.0.1:8080" } ],
  "upstreams": { "app": { "backends": [ { "address": "127.0.0.1:9001" } ] } },
  "routes": [ { "upstream": "app" } ]
})",
                "/listeners/0/adress", 2, {"unknown key \"adress\" (did you mean \"address\"?)"});
}

TEST_CASE("a suggested key still comes with the list of known keys", "[conf][suggest]") {
  require_error(
      config_text({.backend = "\"wieght\": 5"}), "/upstreams/app/backends/0/wieght", kBackendLine,
      {"unknown key \"wieght\" (did you mean \"weight\"?); expected one of: address, dns, "
       "weight, backup"});
}

TEST_CASE("a key in the wrong case is answered with the right spelling", "[conf][suggest]") {
  require_error(config_text({.top = "\"Workers\": 2"}), "/Workers", kTopLine,
                {"(did you mean \"workers\"?)"});
}

TEST_CASE("a key is only suggested from the keys known where it stands", "[conf][suggest]") {
  // "retries" is an upstream key, not a backend one.
  CHECK_THAT(
      message_at(config_text({.backend = "\"retry\": 1"}), "/upstreams/app/backends/0/retry"),
      !Catch::Contains("did you mean"));
}

TEST_CASE("an unknown key near no known key gets no suggestion", "[conf][suggest]") {
  CHECK_THAT(message_at(config_text({.top = "\"body_bytes\": 1"}), "/body_bytes"),
             !Catch::Contains("did you mean"));
}

// --- values ---

TEST_CASE("a misspelt balance policy is answered with the policy it nearly matches",
          "[conf][suggest]") {
  require_error(config_text({.upstream = "\"balance\": \"round_robbin\""}),
                "/upstreams/app/balance", kUpstreamLine,
                {"got \"round_robbin\" (did you mean \"round_robin\"?)"});
}

TEST_CASE("a balance policy written with a hyphen is answered with its name", "[conf][suggest]") {
  require_error(config_text({.upstream = "\"balance\": \"least-conn\""}), "/upstreams/app/balance",
                kUpstreamLine, {"(did you mean \"least_conn\"?)"});
}

TEST_CASE("a balance policy near none gets no suggestion", "[conf][suggest]") {
  CHECK_THAT(
      message_at(config_text({.upstream = "\"balance\": \"fastest\""}), "/upstreams/app/balance"),
      !Catch::Contains("did you mean"));
}

TEST_CASE("a misspelt hash_key kind is answered with the kind it nearly matches",
          "[conf][suggest]") {
  require_error(config_text({.upstream = "\"hash_key\": \"url\""}), "/upstreams/app/hash_key",
                kUpstreamLine, {"got \"url\" (did you mean \"uri\"?)"});
  require_error(config_text({.upstream = "\"hash_key\": \"client-ip\""}), "/upstreams/app/hash_key",
                kUpstreamLine, {"(did you mean \"client_ip\"?)"});
}

TEST_CASE("a misspelt named hash_key kind is answered with the name kept", "[conf][suggest]") {
  require_error(config_text({.upstream = "\"hash_key\": \"headers:X-User\""}),
                "/upstreams/app/hash_key", kUpstreamLine, {"(did you mean \"header:X-User\"?)"});
  require_error(config_text({.upstream = "\"hash_key\": \"Cookie:session\""}),
                "/upstreams/app/hash_key", kUpstreamLine, {"(did you mean \"cookie:session\"?)"});
}

TEST_CASE("a hash_key near no kind gets no suggestion", "[conf][suggest]") {
  CHECK_THAT(
      message_at(config_text({.upstream = "\"hash_key\": \"ip\""}), "/upstreams/app/hash_key"),
      !Catch::Contains("did you mean"));
}

TEST_CASE("a route to a misspelt upstream is answered with the upstream it nearly matches",
          "[conf][suggest]") {
  std::string misspelt = config_text();
  misspelt.replace(misspelt.find("\"upstream\": \"app\""), 17, "\"upstream\": \"App\"");
  require_error(misspelt, "/routes/0/upstream", kRouteLine,
                {"got \"App\" (did you mean \"app\"?)"});
}

TEST_CASE("a misspelt tls min_version is answered with the version it nearly matches",
          "[conf][suggest]") {
  require_error(with_listener_tls("\"min_version\": \"v1.3\""), "/listeners/0/tls/min_version",
                kTlsLine, {"got \"v1.3\" (did you mean \"1.3\"?)"});
}

TEST_CASE("a min_version equally near both versions gets no suggestion", "[conf][suggest]") {
  CHECK_THAT(
      message_at(with_listener_tls("\"min_version\": \"1.1\""), "/listeners/0/tls/min_version"),
      !Catch::Contains("did you mean"));
}

TEST_CASE("a misspelt request_id mode is answered with the mode it nearly matches",
          "[conf][suggest]") {
  require_error(config_text({.top = "\"request_id\": \"generat\""}), "/request_id", kTopLine,
                {"got \"generat\" (did you mean \"generate\"?)"});
}

TEST_CASE("a misspelt log level is answered with the level it nearly matches", "[conf][suggest]") {
  require_error(config_text({.top = "\"log\": { \"level\": \"eror\" }"}), "/log/level", kTopLine,
                {"got \"eror\" (did you mean \"error\"?)"});
}

TEST_CASE("an alpn name in the wrong case is answered with http/1.1", "[conf][suggest]") {
  require_error(with_listener_tls("\"alpn\": [\"HTTP/1.1\"]"), "/listeners/0/tls/alpn/0", kTlsLine,
                {"got \"HTTP/1.1\" (did you mean \"http/1.1\"?)"});
}

TEST_CASE("an alpn name near no protocol gets no suggestion", "[conf][suggest]") {
  CHECK_THAT(message_at(with_listener_tls("\"alpn\": [\"h2\"]"), "/listeners/0/tls/alpn/0"),
             !Catch::Contains("did you mean"));
}

}  // namespace
}  // namespace sluice::conf
