"""Request filters on a route ("filters": deny rules by method, path prefix, path glob, header
presence, exact value, value prefix and regex; a rule matches when all of its conditions do, a
request is denied when any rule matches: 403, outcome "denied", the backend never sees it), and
a route's own max_request_body_bytes beside a route that keeps the global limit."""

import json
import time

import pytest

from harness import (Backend, Sluice, assert_status, echo, ok, proxy_config, request_bytes,
                     run_cli, wait_for_log, write_file)

pytestmark = pytest.mark.timeout(60)

# The rules of the issue, on every path but /open (a route without filters).
DENY = [
    {"methods": ["TRACE", "DELETE"]},
    {"path_prefix": "/admin"},
    {"path_glob": "/**/*.php"},
    {"header": "X-Debug"},
    {"header": "User-Agent", "exact": "BadBot"},
    {"header": "User-Agent", "prefix": "sqlmap"},
    {"header": "User-Agent", "regex": "nikto|masscan"},
    {"methods": ["POST"], "path_prefix": "/static"},
]


def filtered_config(backend: Backend, deny=None) -> dict:
    return proxy_config(backend, routes=[
        {"path_prefix": "/open", "upstream": "app"},
        {"path_prefix": "/", "upstream": "app", "filters": {"deny": deny or DENY}},
    ])


def assert_denied(requests) -> None:
    """Each (method, target, headers) gets 403 on one keep-alive connection, which stays open
    for the next; the backend sees none of them."""
    with Backend(ok()) as backend, Sluice(filtered_config(backend)) as proxy:
        with proxy.client() as client:
            for method, target, headers in requests:
                response = client.exchange(method, target, headers)
                assert_status(response, 403)
                assert b"denied by a filter of this route" in response.body
            assert_status(client.exchange("GET", "/fine"), 200)  # the connection still serves
    assert [r.target for r in backend.requests] == ["/fine"]


def passed(requests) -> list[tuple[int, str]]:
    """(status, target the backend saw) for each (method, target, headers)."""
    with Backend(ok()) as backend, Sluice(filtered_config(backend)) as proxy:
        with proxy.client() as client:
            statuses = [client.exchange(m, t, h).status for m, t, h in requests]
    return list(zip(statuses, [r.target for r in backend.requests]))


def test_a_method_rule_denies_those_methods():
    assert_denied([("TRACE", "/", []), ("DELETE", "/item/1", [])])


def test_a_path_prefix_rule_denies_paths_under_it():
    assert_denied([("GET", "/admin", []), ("GET", "/admin/users?x=1", []),
                   ("GET", "/administrator", [])])


def test_a_path_glob_rule_denies_the_paths_it_matches():
    assert_denied([("GET", "/wp/login.php", []), ("GET", "/a/b/c/x.php?q=1", [])])


def test_a_path_glob_rule_lets_other_paths_pass():
    requests = [("GET", "/x.php", []), ("GET", "/a/x.php5", []), ("GET", "/a/php", [])]
    assert passed(requests) == [(200, "/x.php"), (200, "/a/x.php5"), (200, "/a/php")]


def test_a_header_rule_denies_a_request_that_has_the_field_at_all():
    assert_denied([("GET", "/", [("X-Debug", "")]), ("GET", "/", [("x-debug", "1")])])


def test_an_exact_rule_denies_that_value_only_case_sensitively():
    assert_denied([("GET", "/", [("User-Agent", "BadBot")])])
    requests = [("GET", "/a", [("User-Agent", "badbot")]),
                ("GET", "/b", [("User-Agent", "BadBot/2.0")])]
    assert passed(requests) == [(200, "/a"), (200, "/b")]


def test_a_prefix_rule_denies_values_that_start_with_it():
    assert_denied([("GET", "/", [("User-Agent", "sqlmap/1.7.2#stable")])])
    assert passed([("GET", "/a", [("User-Agent", "not sqlmap")])]) == [(200, "/a")]


def test_a_regex_rule_denies_values_it_finds_anywhere():
    assert_denied([("GET", "/", [("User-Agent", "Mozilla/5.0 (Nikto/2.5) nikto")]),
                   ("GET", "/", [("user-agent", "masscan/1.3")])])
    assert passed([("GET", "/a", [("User-Agent", "Nikto")])]) == [(200, "/a")]


def test_any_occurrence_of_a_repeated_field_counts():
    assert_denied([("GET", "/", [("User-Agent", "curl/8"), ("User-Agent", "BadBot")])])


def test_a_rule_denies_only_when_all_its_conditions_match():
    assert_denied([("POST", "/static/app.css", [("Content-Length", "0")])])
    requests = [("GET", "/static/app.css", []), ("POST", "/api", [("Content-Length", "0")])]
    assert passed(requests) == [(200, "/static/app.css"), (200, "/api")]


def test_requests_no_rule_matches_reach_the_backend():
    requests = [("GET", "/", []), ("POST", "/api/items", [("Content-Length", "0")]),
                ("GET", "/page.html", [("User-Agent", "Mozilla/5.0")])]
    assert passed(requests) == [(200, "/"), (200, "/api/items"), (200, "/page.html")]


def test_a_route_without_filters_is_not_filtered():
    requests = [("TRACE", "/open", []), ("GET", "/open/x.php", [("X-Debug", "1")])]
    assert passed(requests) == [(200, "/open"), (200, "/open/x.php")]


def test_a_denied_request_is_logged_with_the_outcome_denied():
    with Backend(ok()) as backend, Sluice(filtered_config(backend)) as proxy:
        assert_status(proxy.get("/admin"), 403)
        lines = wait_for_log(proxy, r'\{.*"outcome":"denied".*\}', 3.0)
        assert lines, proxy.log_tail()
    record = json.loads(lines[0].group(0))
    assert record["status"] == 403
    assert record["target"] == "/admin"
    assert not backend.requests


def test_a_value_that_runs_a_regex_into_its_match_limit_is_denied_at_once():
    """^(a+)+$ backtracks exponentially on a run of a's that ends otherwise: without the match
    limit a 30,000-byte value would hold the worker for ever."""
    deny = [{"header": "X-Name", "regex": "^(a+)+$"}]
    with Backend(ok()) as backend, Sluice(filtered_config(backend, deny)) as proxy:
        with proxy.client() as client:
            started = time.monotonic()
            assert_status(client.exchange("GET", "/", [("X-Name", "a" * 30000 + "!")]), 403)
            assert time.monotonic() - started < 2.0
            assert_status(client.exchange("GET", "/", [("X-Name", "aab")]), 200)
    assert len(backend.requests) == 1


def test_a_regex_that_does_not_compile_is_a_config_error_with_its_line():
    config = proxy_config("127.0.0.1:9", routes=[
        {"upstream": "app", "filters": {"deny": [{"header": "User-Agent", "regex": "(nikto"}]}}])
    text = json.dumps(config, indent=1)
    path = write_file("bad-regex.json", text)
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert "/routes/0/filters/deny/0/regex" in result.output, repr(result)
    assert "missing closing parenthesis" in result.output, repr(result)


# --------------------------------------------------------------------------- body limits

def body_limit_config(backend: Backend) -> dict:
    """/small allows 100 bytes, /free has no limit (0), the rest keep the global 1000."""
    return proxy_config(backend, limits={"max_request_body_bytes": 1000}, routes=[
        {"path_prefix": "/small", "upstream": "app", "max_request_body_bytes": 100},
        {"path_prefix": "/free", "upstream": "app", "max_request_body_bytes": 0},
        {"path_prefix": "/", "upstream": "app"},
    ])


def post(client, target: str, size: int):
    return client.exchange("POST", target, body=b"b" * size)


def chunked_post(target: str, size: int) -> bytes:
    return (request_bytes("POST", target, [("Transfer-Encoding", "chunked")]) +
            b"%x\r\n" % size + b"c" * size + b"\r\n0\r\n\r\n")


def test_a_routes_body_limit_refuses_a_larger_declared_length_before_the_backend_sees_it():
    with Backend(ok(), strict=False) as backend, Sluice(body_limit_config(backend)) as proxy:
        with proxy.client() as client:
            client.send(request_bytes("POST", "/small/up", [("Content-Length", "101")]) +
                        b"x" * 101, tolerate_close=True)
            assert_status(client.read_response_or_close(), 413)
        time.sleep(0.2)  # a request sluice wrongly forwarded would arrive by now
    assert not backend.requests


def test_a_routes_body_limit_refuses_a_chunked_body_as_it_streams():
    with Backend(ok(), strict=False) as backend, Sluice(body_limit_config(backend)) as proxy:
        with proxy.client() as client:
            client.send(chunked_post("/small/up", 500), tolerate_close=True)
            assert_status(client.read_response_or_close(), 413)
            assert client.wait_closed(3.0), "connection still open 3 s after the 413"
    assert all(len(r.body or b"") <= 100 for r in backend.requests)


def test_a_routes_body_limit_lets_bodies_within_it_pass_in_both_framings():
    with Backend(echo()) as backend, Sluice(body_limit_config(backend)) as proxy:
        with proxy.client() as client:
            assert post(client, "/small/a", 100).body == b"b" * 100
            client.send(chunked_post("/small/b", 100))
            assert client.read_response().body == b"c" * 100


def test_a_route_without_its_own_limit_keeps_the_global_one():
    with Backend(echo(), strict=False) as backend, Sluice(body_limit_config(backend)) as proxy:
        with proxy.client() as client:
            assert_status(post(client, "/other", 1000), 200)  # over /small's, within the global
        with proxy.client() as client:
            client.send(request_bytes("POST", "/other", [("Content-Length", "1001")]) +
                        b"x" * 1001, tolerate_close=True)
            assert_status(client.read_response_or_close(), 413)
        with proxy.client() as client:
            client.send(chunked_post("/other", 1500), tolerate_close=True)
            assert_status(client.read_response_or_close(), 413)


def test_a_route_limit_of_0_lifts_the_global_limit_on_that_route():
    with Backend(echo()) as backend, Sluice(body_limit_config(backend)) as proxy:
        with proxy.client() as client:
            assert post(client, "/free/a", 5000).body == b"b" * 5000
            client.send(chunked_post("/free/b", 3000))
            assert client.read_response().body == b"c" * 3000
