#!/usr/bin/env python3
"""Cold-start footprint of the spotswap Lambda binaries: init time, init RSS, binary and zip size.

    python3 bench/footprint.py --bin-dir target/release --runs 15 [--env K=V ...] \
        [--json out.json] rebalancer interruption-handler orphan-reaper

What is measured, for each binary named on the command line:

1. Init time under the Lambda Runtime API. The script serves a minimal Lambda Runtime API on
   127.0.0.1 (an ephemeral port), then starts the binary with the environment Lambda gives a
   `provided.al2023` function (see `lambda_env`). Init time runs from just before
   `subprocess.Popen` (`time.perf_counter_ns`) to the moment the server has read the binary's
   first `GET /2018-06-01/runtime/invocation/next` request line: that request is the runtime
   telling Lambda "init is over, give me work", so everything `main` does before `run()` (tracing
   set-up, `Config::from_env`, `aws_config` loading, building the SDK clients) is inside the
   window, and so are process creation, the dynamic loader and the first TCP connect. The
   Python server adds well under a millisecond of parsing to it.

   No event is ever delivered: the first `next` is held open for HOLD_S (~50 ms, so that anything
   the runtime would do right after asking for work has happened), then the process is
   SIGKILLed. Nothing reaches AWS. If the binary posts to `/runtime/init/error`, exits before
   asking for `next`, dies while `next` is held, or does not ask within --timeout seconds, the
   script stops with its stderr and stdout instead of reporting a number.

   Each binary runs --runs times; the runs are interleaved across binaries (run 1 of each, then
   run 2 of each, ...) so that background load on the host biases all binaries alike. Reported:
   min / median / max in milliseconds.

2. Peak RSS at init: `VmHWM` from /proc/<pid>/status, read after the ~50 ms hold, just before
   the kill. The figure reported is the largest over the runs (it barely varies).

3. Sizes: the binary's size on disk, and the size of a Lambda deployment zip made the way this
   project packages functions (`scripts/function-zips.py`, like cargo-lambda/SAM): one entry
   named `bootstrap`, deflated (level 9), mode 0755, fixed 1980-01-01 timestamp. The zip is built
   in a temporary directory and deleted. Building it reads the whole binary, so the timed runs
   all start with the binary in the page cache (a real Lambda cold start may not).

Caveats:
  * This measures the host's build (whatever `--bin-dir` holds, normally x86_64 here), on the
    host's CPU and kernel, not in Firecracker with a 128 MB slice of a CPU. Treat the numbers
    as a comparison between builds, not as the Lambda "Init Duration". The deployed arm64 zips
    come from `make build` (cargo-lambda + zig via `sam build`), whose sizes
    `scripts/function-zips.py` prints.
  * The binary does not inherit this script's environment: it gets only the Lambda-like
    variables below plus `--env` overrides, so host AWS_* variables, profiles under ~/.aws (HOME
    is not set) or AWS_ENDPOINT_URL cannot change what init does.

Exit status: 0 when every binary was measured, 1 on any failure, 2 on bad usage.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Lambda Runtime API paths (API version 2018-06-01).
API = "/2018-06-01/runtime"
NEXT_PATH = f"{API}/invocation/next"
INIT_ERROR_PATH = f"{API}/init/error"
INVOCATION_PREFIX = f"{API}/invocation/"  # .../{request-id}/response or .../{request-id}/error

HOLD_S = 0.05  # how long the first `next` is held before the kill
MIB = 1024 * 1024
OUTPUT_TAIL = 8000  # characters of the binary's stderr/stdout shown on a failure


class BenchError(Exception):
    """A measurement that cannot be reported. The message says why and carries the output."""


# --------------------------------------------------------------------------------------------
# The fake Runtime API
# --------------------------------------------------------------------------------------------


class RuntimeApi(ThreadingHTTPServer):
    """One Runtime API endpoint for ONE run of one binary (a fresh server per run: no state
    from a previous, killed process can leak into the next measurement)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)
        self.lock = threading.Lock()
        # Set by a handler thread when the main thread has something to look at (the first
        # `next` or an init error).
        self.wake = threading.Event()
        # Set by the main thread once the process is dead: held `next` requests may return.
        self.release = threading.Event()
        self.first_next_ns: int | None = None
        self.init_error: str | None = None
        self.unexpected: list[str] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class RuntimeApiHandler(BaseHTTPRequestHandler):
    """Implements the bits of the Runtime API an initialising function uses."""

    protocol_version = "HTTP/1.1"  # the Rust runtime keeps its connection alive
    server: RuntimeApi

    def parse_request(self) -> bool:
        # Timestamp as soon as the request line has been read, before header parsing.
        self.received_ns = time.perf_counter_ns()
        return super().parse_request()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
        pass  # keep the table readable; failures are reported by the main thread

    def do_GET(self) -> None:
        srv = self.server
        if self.path.split("?", 1)[0] == NEXT_PATH:
            with srv.lock:
                if srv.first_next_ns is None:
                    srv.first_next_ns = self.received_ns
            srv.wake.set()
            # Deliver no event: hold the request until the main thread has killed the process,
            # then close the connection without an answer. (A later `next`, which the runtime
            # should never send while the first is pending, is held the same way.)
            srv.release.wait(timeout=600)
            self.close_connection = True
            return
        self._unexpected()
        self._reply(404, {"errorMessage": "not implemented by footprint.py"})

    def do_POST(self) -> None:
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        path = self.path.split("?", 1)[0]
        if path == INIT_ERROR_PATH:
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
            with srv.lock:
                srv.init_error = f"{error_type} {body}".strip()
            srv.wake.set()
            self._reply(202, {"status": "OK"})
        elif path.startswith(INVOCATION_PREFIX):
            # .../{id}/response or .../{id}/error: impossible, no invocation was ever delivered.
            self._unexpected(body)
            self._reply(202, {"status": "OK"})
        else:
            self._unexpected(body)
            self._reply(404, {"errorMessage": "not implemented by footprint.py"})

    def _unexpected(self, body: str = "") -> None:
        with self.server.lock:
            self.server.unexpected.append(f"{self.command} {self.path} {body[:500]}".strip())

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --------------------------------------------------------------------------------------------
# One measurement
# --------------------------------------------------------------------------------------------


def lambda_env(name: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment Lambda gives a `provided.al2023` function of template.yaml, with
    dummy credentials. Nothing is inherited from this script's environment."""
    env = {
        # What the Runtime API client and `lambda_runtime::Config::from_env` read.
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2000/01/01/[$LATEST]footprint",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        # template.yaml: LoggingConfig.LogFormat JSON (read by init_default_subscriber).
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        # Region and (dummy) credentials as Lambda provides them: env only, so the SDK's
        # provider chains stop at the environment and never look for IMDS or profiles.
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        # Other variables every Lambda process sees.
        "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": "bootstrap",
        "TZ": ":UTC",
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        # template.yaml Globals.Function.Environment with the parameters' defaults. None is
        # required (spotswap's Config has a default for each), but this is what a deployed
        # function parses at init.
        "SPOTSWAP_MODE": "opt-in",
        "SPOTSWAP_DRY_RUN": "false",
        "SPOTSWAP_ORPHAN_MINUTES": "20",
        "SPOTSWAP_ON_DEMAND_PERCENT": "0",
        "SPOTSWAP_ON_DEMAND_BASE": "0",
        "SPOTSWAP_EVENT_BUS": "default",
        "RUST_LOG": "info",
    }
    env.update(extra)  # --env K=V wins
    return env


def read_vmhwm_kib(pid: int) -> int:
    """Peak resident set size of `pid` so far, in kB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])  # "VmHWM:    12345 kB"
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


def tail(f) -> str:
    """The last OUTPUT_TAIL characters written to the temporary file `f`."""
    f.flush()
    f.seek(0)
    text = f.read().decode("utf-8", "replace")
    return text[-OUTPUT_TAIL:] if text.strip() else "(empty)"


def measure_once(binary: Path, name: str, extra_env: dict[str, str], timeout: float) -> tuple[float, int]:
    """Start `binary` once under a fresh Runtime API; return (init ms, VmHWM kB)."""
    srv = RuntimeApi()
    server_thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    server_thread.start()
    env = lambda_env(name, srv.port, extra_env)
    problem: str | None = None
    rss_kib = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen(
            [str(binary)],
            env=env,
            cwd=binary.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,  # files, not pipes: a full pipe must never stall init
            stderr=err,
        )
        try:
            give_up = time.monotonic() + timeout
            # Wait for the first `next` (or an init error), watching the process meanwhile.
            # The wait only decides when to look; the time itself is taken by the server.
            while not srv.wake.wait(0.005):
                if proc.poll() is not None or time.monotonic() > give_up:
                    break
            with srv.lock:
                init_error, first_next_ns = srv.init_error, srv.first_next_ns
            if init_error is not None:
                problem = f"reported an init error to {INIT_ERROR_PATH}: {init_error}"
            elif first_next_ns is None:
                code = proc.poll()
                if code is not None:
                    problem = f"exited with status {code} before asking for an event"
                else:
                    problem = f"did not ask for an event within {timeout:g} s"
            else:
                time.sleep(HOLD_S)  # hold the first `next`
                if proc.poll() is not None:
                    problem = f"exited with status {proc.returncode} while its first `next` was pending"
                else:
                    rss_kib = read_vmhwm_kib(proc.pid)
                    with srv.lock:
                        if srv.init_error is not None:
                            problem = f"reported an init error to {INIT_ERROR_PATH}: {srv.init_error}"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            srv.release.set()
            srv.shutdown()
            srv.server_close()
        with srv.lock:
            if problem is None and srv.unexpected:
                problem = "made unexpected Runtime API requests: " + "; ".join(srv.unexpected)
        if problem is not None:
            raise BenchError(
                f"{binary} {problem}\n--- stderr ---\n{tail(err)}\n--- stdout ---\n{tail(out)}"
            )
    assert first_next_ns is not None
    return (first_next_ns - t0) / 1e6, rss_kib


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------


def zip_size(binary: Path) -> int:
    """Size in bytes of the deployment zip of `binary`, packaged like scripts/function-zips.py
    (and cargo-lambda/SAM): a single deflated, executable entry named `bootstrap`."""
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        target = Path(tmp) / "function.zip"
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, rwxr-xr-x
        info.create_system = 3  # Unix, so the mode bits are honoured
        info.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(target, "w") as z:
            z.writestr(info, binary.read_bytes(), compresslevel=9)
        return target.stat().st_size


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    init_ms_median: float
    init_ms_min: float
    init_ms_max: float
    runs: int
    init_rss_mib: float
    binary_mib: float
    zip_mib: float


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"footprint: --env expects K=V, got {pair!r}")
        env[key] = value
    return env


def print_table(results: list[Result]) -> None:
    header = ("binary", "init ms median (min-max)", "init RSS MiB", "binary MiB", "zip MiB")
    rows = [
        (
            r.name,
            f"{r.init_ms_median:.1f} ({r.init_ms_min:.1f}-{r.init_ms_max:.1f})",
            f"{r.init_rss_mib:.1f}",
            f"{r.binary_mib:.2f}",
            f"{r.zip_mib:.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Init time under a local Lambda Runtime API, init RSS, binary and zip size.",
    )
    ap.add_argument("names", nargs="+", metavar="BINARY", help="binary names, e.g. rebalancer")
    ap.add_argument("--bin-dir", required=True, type=Path, help="directory holding the binaries")
    ap.add_argument("--runs", type=int, default=15, help="cold starts per binary (default 15)")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment (repeatable)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON here")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the first `next` (default 30)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    extra_env = parse_env(args.env)

    binaries: dict[str, Path] = {}
    for name in args.names:
        path = (args.bin_dir / name).resolve()
        if not path.is_file() or not os.access(path, os.X_OK):
            print(f"footprint: {path} is not an executable file", file=sys.stderr)
            return 1
        binaries[name] = path

    try:
        # Sizes first: zipping reads each binary, which also puts it in the page cache.
        sizes = {name: (path.stat().st_size, zip_size(path)) for name, path in binaries.items()}
        times: dict[str, list[float]] = {name: [] for name in binaries}
        rss: dict[str, list[int]] = {name: [] for name in binaries}
        for run in range(1, args.runs + 1):
            for name, path in binaries.items():  # interleaved, see the module docstring
                try:
                    ms, kib = measure_once(path, name, extra_env, args.timeout)
                except BenchError as e:
                    raise BenchError(f"{name}, run {run}/{args.runs}: {e}") from None
                times[name].append(ms)
                rss[name].append(kib)
    except (BenchError, OSError) as e:
        print(f"footprint: {e}", file=sys.stderr)
        return 1

    results = [
        Result(
            name=name,
            init_ms_median=round(statistics.median(times[name]), 3),
            init_ms_min=round(min(times[name]), 3),
            init_ms_max=round(max(times[name]), 3),
            runs=args.runs,
            init_rss_mib=round(max(rss[name]) / 1024, 3),
            binary_mib=round(sizes[name][0] / MIB, 3),
            zip_mib=round(sizes[name][1] / MIB, 3),
        )
        for name in binaries
    ]
    print_table(results)
    for r in results:
        if r.init_ms_median > 1000:
            print(f"footprint: warning: {r.name} takes {r.init_ms_median:.0f} ms to init", file=sys.stderr)
    if args.json:
        try:
            args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
        except OSError as e:
            print(f"footprint: cannot write {args.json}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
