#!/usr/bin/env python3
"""Runs Sluice integration tests: the entry point each ctest integration test calls.

    python3 test/integration/run.py --sluice build/core/sluice test/integration/test_framing.py \
        test_content_length_with_transfer_encoding_is_rejected

Without test names, runs every test_* function of the file in turn. Exits 0 when all pass;
otherwise 1, after printing the traceback, the tail of each sluice log and backend errors.
Every sluice and backend a test started is stopped, pass or fail. --sluice defaults to
$SLUICE_BIN. Set SLUICE_KEEP_TMP=1 to keep the temporary configs and logs of a failed run.
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
WATCHDOG_S = 170  # below ctest's 180 s, so our own cleanup still runs


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sluice", default=os.environ.get("SLUICE_BIN"), help="the sluice binary")
    parser.add_argument("file", help="a test_*.py file")
    parser.add_argument("names", nargs="*", help="test functions to run (default: all)")
    return parser.parse_args()


def load_module(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def start_watchdog(harness, name):
    """Kills everything and exits if the test runs past WATCHDOG_S."""
    def expire():
        print(f"FAIL {name}: still running after {WATCHDOG_S} s", flush=True)
        harness.cleanup()
        print(harness.failure_report(), flush=True)
        remove_workdir(harness, keep=bool(os.environ.get("SLUICE_KEEP_TMP")))
        os._exit(1)
    timer = threading.Timer(WATCHDOG_S, expire)
    timer.daemon = True
    timer.start()
    return timer


def run_test(harness, module, name):
    test = getattr(module, name, None)
    if not callable(test):
        print(f"FAIL {name}: no such test in {module.__file__}", flush=True)
        return False
    print(f"RUN  {name}", flush=True)
    watchdog = start_watchdog(harness, name)
    started = time.monotonic()
    failure, details = None, ""
    try:
        test()
    except BaseException as error:  # SIGTERM arrives as KeyboardInterrupt
        failure, details = error, traceback.format_exc()
    finally:
        watchdog.cancel()
        harness.cleanup()
    elapsed = time.monotonic() - started
    if failure is None:
        print(f"PASS {name} ({elapsed:.1f} s)", flush=True)
    else:
        print(f"FAIL {name} after {elapsed:.1f} s: {type(failure).__name__}: {failure}\n{details}",
              flush=True)
        print(harness.failure_report(), flush=True)
    harness.forget()
    if isinstance(failure, KeyboardInterrupt):
        raise SystemExit(1)
    return failure is None


def on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def main():
    args = parse_args()
    sys.path.insert(0, HERE)
    import harness

    if not args.sluice:
        print("FAIL: no sluice binary (pass --sluice PATH or set SLUICE_BIN)", flush=True)
        return 1
    harness.configure(args.sluice)
    signal.signal(signal.SIGTERM, on_sigterm)
    results = []
    try:
        module = load_module(args.file)
        names = args.names or [n for n, v in vars(module).items() if n.startswith("test_") and callable(v)]
        for name in names:
            results.append(run_test(harness, module, name))
    finally:
        remove_workdir(harness, keep=not all(results) and bool(os.environ.get("SLUICE_KEEP_TMP")))
    if len(results) > 1:
        print(f"{results.count(True)} passed, {results.count(False)} failed", flush=True)
    return 0 if results and all(results) else 1


def remove_workdir(harness, keep):
    workdir = harness.created_workdir()
    if workdir and keep:
        print(f"kept {workdir}", flush=True)
    elif workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
