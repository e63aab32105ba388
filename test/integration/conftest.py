"""pytest setup for the Sluice integration tests: the binary under test, cleanup after every
test, fixtures for backends and Sluice processes, a watchdog, and the count scripts/test.sh reads.

    /usr/bin/pytest test/integration --sluice build/core/sluice -n 2
    /usr/bin/pytest test/integration/test_framing.py -k chunked --sluice build/core/sluice

--sluice PATH (default $SLUICE_BIN) is the binary every test runs. A test is a plain function in
a test_*.py file here. It may start Backend and Sluice objects itself (`with Backend(...) as b,
Sluice(proxy_config(b)) as proxy:`) or ask for the start_backend and start_sluice fixtures.

After every test, pass or fail, whichever way it started them: each sluice it started is killed,
each backend stopped and its temporary folder removed (kept when it failed and SLUICE_KEEP_TMP=1).
A failed test's report carries the tail of each sluice log and the backend handler errors.

A test still running after its timeout (170 s, `timeout` in pytest.ini; @pytest.mark.timeout(N)
for one test) fails through pytest-timeout and is cleaned up the same way. Should it not return
even then, the watchdog kills what it started and ends the pytest process (under pytest-xdist
that fails the test, and a new worker takes the rest).

The session ends with one line, "integration: N passed, M failed", that counts every test once
(a test that fails in a fixture's teardown counts once, as failed; a file that cannot be
collected counts as one failure).
"""

from __future__ import annotations

import atexit
import os
import resource
import signal
import sys
import threading

import pytest

import harness
from harness import Backend, Sluice

DEFAULT_TIMEOUT_S = 170.0  # without a timeout from pytest-timeout's settings
WATCHDOG_GRACE_S = 30.0  # how long after the timeout the watchdog acts
KEEP_TMP = bool(os.environ.get("SLUICE_KEEP_TMP"))

_failed = pytest.StashKey[bool]()


# --------------------------------------------------------------------------- options and setup

def pytest_addoption(parser):
    group = parser.getgroup("sluice")
    group.addoption("--sluice", default=os.environ.get("SLUICE_BIN"), metavar="PATH",
                    help="the sluice binary the tests run (default: $SLUICE_BIN)")


def pytest_configure(config):
    if config.option.sluice:
        harness.configure(config.option.sluice)
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): this test's time limit")
    if not hasattr(config, "workerinput"):  # the main process (with or without pytest-xdist)
        config.pluginmanager.register(_Tally(), "sluice-tally")
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)  # so cleanup runs when pytest is stopped


def _interrupt(signum, frame):
    """SIGTERM: passed on to the pytest-xdist workers (children of the main process), then
    raised as KeyboardInterrupt, so each process's cleanup runs as on Ctrl-C."""
    for pid in _child_pids():
        try:
            os.kill(pid, signum)
        except OSError:
            pass
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _child_pids() -> list[int]:
    """This process's children that are Python (the xdist workers; not a sluice)."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += [int(pid) for pid in f.read().split()]
        except OSError:
            pass
    return [pid for pid in pids if _is_python(pid)]


def _is_python(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == os.path.realpath(sys.executable)
    except OSError:
        return False


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    try:
        harness.sluice_binary()
    except RuntimeError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    _stop_everything()  # after an interrupted test: fixtures are torn down by now


@atexit.register
def _stop_everything():
    harness.cleanup()
    harness.forget()
    harness.end_workdir(keep=KEEP_TMP)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def sluice_bin() -> str:
    """The sluice binary under test (--sluice PATH or $SLUICE_BIN), as an absolute path."""
    return harness.sluice_binary()


@pytest.fixture(autouse=True)
def _sluice_cleanup(request):
    """Around every test: a watchdog while it runs; afterwards every sluice it started is
    killed, every backend stopped, and the descriptor limit it may have raised is restored.
    (The report and the temporary folder are dealt with in pytest_runtest_makereport.)"""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    watchdog = _Watchdog(request.node)
    try:
        yield
    finally:
        watchdog.cancel()
        harness.cleanup()
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


@pytest.fixture
def start_backend():
    """start_backend(handler=None, **kwargs) starts a Backend (the handler defaults to ok();
    kwargs as for Backend, or pass cls=BoundBackend with host and port). Each is stopped after
    the test; a strict one whose handler raised fails the test then."""
    started: list[Backend] = []

    def start(handler=None, *, cls=Backend, **kwargs) -> Backend:
        backend = cls(handler, **kwargs)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()
    failed = [b for b in started if b.strict and b.errors]
    if failed:
        pytest.fail(f"backend {failed[0].address} handler failed:\n{failed[0].errors[0]}",
                    pytrace=False)


@pytest.fixture
def start_sluice(start_backend):
    """start_sluice(config, **kwargs) starts a Sluice with `config` (see proxy_config; kwargs
    as for Sluice) and returns it once it accepts. Each is stopped after the test (SIGTERM,
    then SIGKILL past its drain time), before the backends; one that died during the test
    without being told to fails the test then."""
    started: list[Sluice] = []

    def start(config: dict, **kwargs) -> Sluice:
        proxy = Sluice(config, **kwargs)
        started.append(proxy)
        return proxy.start()

    yield start
    problems = [f"{proxy.address}: {problem}" for proxy in started
                if (problem := proxy.stop())]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------- reports

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed phase gets the failure report (sluice log tails, backend errors) as a section.
    After the last phase, the test's records are dropped and its temporary folder removed."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[_failed] = True
        text = harness.failure_report()
        if KEEP_TMP and harness.created_workdir():
            text += f"\n(temporary folder kept: {harness.created_workdir()})"
        if text:
            report.sections.append(("sluice logs and backend errors", text))
    if report.when == "teardown":
        harness.forget()
        harness.end_workdir(keep=KEEP_TMP and item.stash.get(_failed, False))


class _Tally:
    """Counts each test once, in the main process: failed if any phase failed or it never
    finished (interrupted), passed if its call passed, else skipped; a file that failed to
    collect counts as one failure."""

    def __init__(self):
        self.outcomes: dict[str, str] = {}
        self.broken_files: set[str] = set()

    def pytest_collectreport(self, report):
        if report.failed:
            self.broken_files.add(report.nodeid)

    def pytest_runtest_logreport(self, report):
        before = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif before == "failed":
            pass
        elif report.when == "call":
            self.outcomes[report.nodeid] = "passed" if report.passed else "skipped"
        elif report.when == "setup":  # passed: stays "unfinished" (a failure) until its call
            self.outcomes[report.nodeid] = "skipped" if report.skipped else "unfinished"

    def pytest_terminal_summary(self, terminalreporter, config):
        if config.option.collectonly:
            return
        counts = {kind: list(self.outcomes.values()).count(kind)
                  for kind in ("passed", "failed", "unfinished", "skipped")}
        failed = counts["failed"] + counts["unfinished"] + len(self.broken_files)
        line = f"integration: {counts['passed']} passed, {failed} failed"
        if counts["skipped"]:
            line += f", {counts['skipped']} skipped"
        terminalreporter.write_line(line)


# --------------------------------------------------------------------------- watchdog

def _timeout_s(item) -> float:
    """The test's timeout as pytest-timeout sees it: its marker, --timeout, then the ini."""
    values = []
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        values.append(marker.args[0] if marker.args else marker.kwargs.get("timeout"))
    try:
        values += [item.config.getoption("timeout"), item.config.getini("timeout")]
    except ValueError:  # pytest-timeout is not installed
        pass
    for value in values:
        if value not in (None, ""):
            return float(value)
    return DEFAULT_TIMEOUT_S


class _Watchdog:
    """Kills every process the test started and ends this pytest process if the test is still
    running WATCHDOG_GRACE_S after its timeout (at the timeout when pytest-timeout is missing):
    for a test that the timeout could not interrupt."""

    def __init__(self, item):
        self.nodeid = item.nodeid
        self.config = item.config
        timeout = _timeout_s(item)
        has_plugin = item.config.pluginmanager.hasplugin("timeout")
        self.seconds = timeout + (WATCHDOG_GRACE_S if has_plugin else 0.0)
        self._timer = None
        if timeout > 0:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        captured = ""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:  # give stderr back, or what follows would be lost with the capture
            capman.suspend_global_capture(in_=True)
            out, err = capman.read_global_capture()
            captured = out + err
        harness.cleanup()
        report = harness.failure_report()
        kept = harness.end_workdir(keep=KEEP_TMP)
        print(f"\nFAIL {self.nodeid}: still running {self.seconds:.0f} s after it started; "
              f"stopped its processes and this pytest process\n{captured}{report}"
              + (f"\nkept {kept}" if kept and KEEP_TMP else ""), file=sys.stderr, flush=True)
        os._exit(1)
