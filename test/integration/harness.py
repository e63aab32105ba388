"""Harness for the Sluice integration tests (Python standard library only): the facade the
tests import from. Everything listens and connects on 127.0.0.1 only, on kernel-picked ports.
pytest runs the tests; conftest.py holds the fixtures and the cleanup after each test.

wire.py      HTTP/1.1 parsing and framing, readers, request bytes, the raw-socket Client
backends.py  the raw-socket Backend server, handler factories, payloads, health-aware services
proxy.py     the Sluice process, config builders, the CLI, workdir and cleanup, assertions
load.py      many keep-alive clients, background load, source-bound clients
"""

from backends import (HEALTH_CHECK_AGENT, Backend, BoundBackend, ClosedPort, Exchange,
                      HealthSwitch, UnansweredPort, client_requests, close_without_answer,
                      count_upload, die_mid_response, echo, echo_target, hang, is_health_check,
                      ok, pattern_crc, pattern_stream, reset_before_answer, served, service,
                      stream, upgrade_echo)
from load import LoadClients, SourceClient, run_keepalive_clients
from proxy import (DEFAULT_LIMITS, DEFAULT_TIMEOUTS, READY_TIMEOUT_S, CliResult, Sluice,
                   assert_rejected_before_backend, assert_status, backend_entry, bodies, cleanup,
                   configure, created_workdir, describe_status, end_workdir, failure_report,
                   forget, free_port, proxy_config, raise_fd_limit, rss_bytes, run_cli,
                   sanitized_binary, sluice_binary, wait_for_log, workdir, write_file)
from wire import (HOST, HOST_HEADER, BufferReader, Client, ConnectionClosed, Incomplete, Message,
                  MiB, ProtocolError, Request, Response, SocketReader, chunked, content_length,
                  iter_body, iter_chunks, parse_head, request_bytes, request_framing,
                  response_framing, try_parse_response)

__all__ = [
    # wire
    "HOST", "HOST_HEADER", "MiB", "ProtocolError", "ConnectionClosed", "Incomplete", "Message",
    "Request", "Response", "parse_head", "content_length", "request_framing",
    "response_framing", "request_bytes", "chunked", "SocketReader", "BufferReader", "iter_body",
    "iter_chunks", "try_parse_response", "Client",
    # backends
    "Backend", "Exchange", "ok", "echo", "echo_target", "hang", "close_without_answer",
    "reset_before_answer", "die_mid_response", "stream", "upgrade_echo", "count_upload",
    "pattern_stream", "pattern_crc", "HEALTH_CHECK_AGENT", "is_health_check", "client_requests",
    "served", "HealthSwitch", "service", "BoundBackend", "ClosedPort", "UnansweredPort",
    # proxy
    "READY_TIMEOUT_S", "DEFAULT_TIMEOUTS", "DEFAULT_LIMITS", "configure", "sluice_binary",
    "created_workdir", "end_workdir", "workdir", "write_file", "cleanup", "forget",
    "failure_report", "describe_status", "proxy_config", "backend_entry", "free_port", "Sluice",
    "CliResult", "run_cli", "rss_bytes", "sanitized_binary", "raise_fd_limit", "assert_status",
    "assert_rejected_before_backend", "wait_for_log", "bodies",
    # load
    "run_keepalive_clients", "LoadClients", "SourceClient",
]
