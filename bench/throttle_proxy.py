#!/usr/bin/env python3
"""A forwarding HTTP proxy in front of moto that enforces EC2's API token buckets.

    throttle_proxy.py --port P --upstream http://127.0.0.1:MOTO [--scale K]

What
    Every request from an AWS SDK client (spotswap's CLI) is classified by service and
    operation, charged one token from its class's token bucket, and forwarded verbatim to
    moto; a request that finds its bucket empty is NOT forwarded and gets the service's own
    throttling error instead, exactly as AWS would answer it:

      EC2          HTTP 503  <Response><Errors><Error><Code>RequestLimitExceeded</Code>...
      Auto Scaling HTTP 400  <ErrorResponse ...><Error><Type>Sender</Type><Code>Throttling</Code>...

    aws-sdk-rust classifies both as throttling errors (`RequestLimitExceeded` and `Throttling`
    are in its list of throttling codes) and retries them with its standard retry strategy
    (3 attempts, exponential backoff with jitter, a client-side retry quota). The proxy counts
    every call and every throttle per operation, so a benchmark can see the retries.

Why
    moto has no throttling at all: every call succeeds as fast as one single-threaded Python
    process can answer it. A swap-throughput benchmark against bare moto would therefore
    measure moto's CPU, not what a rebalancer cycle can achieve against EC2's real request
    rate limits. EC2 limits calls per account and region with token buckets per API class
    (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html); Auto Scaling
    has its own, undocumented rates. This proxy puts those buckets between the client and moto.

Classes (refill per second, burst), the defaults at --scale 1
    launch        ec2 RunInstances, CreateFleet          2/s,  burst 5
    ec2-mutating  every other ec2 non-Describe/Get call  5/s,  burst 50
    ec2-describe  ec2 Describe*, Get*                    20/s, burst 100
    asg-mutating  autoscaling non-Describe               10/s, burst 20
    asg-describe  autoscaling Describe*                  20/s, burst 40
    anything else (EventBridge, Pricing, moto-api, ...)  unlimited, forwarded, counted

How the time compression works
    `--scale K` multiplies every refill rate AND every burst by K. A workload that issues
    calls K times as fast against buckets K times as large sees the same sequence of
    throttle/no-throttle decisions as the real workload against the real buckets in K times
    the wall time: T seconds of real time = T/K seconds here. So a 5-minute rebalancer cycle
    at EC2's real rates runs in 300/K seconds at `--scale K`, provided the client's own
    client-side limits are scaled by the same K and moto can answer K times faster than EC2
    would (moto is single-threaded: past some K it becomes the bottleneck, which shows as a
    launch class that never throttles). A burst is floored at 1 token, so a tiny K
    (e.g. 0.05, to provoke throttles) still lets a request through now and then.

Token bucket
    Starts full. tokens = min(burst, tokens + rate * elapsed) on every request; a request
    takes one token if there is at least one, otherwise it is throttled (no waiting, no
    queueing: the client's retry strategy decides what happens next).

Control paths (never forwarded)
    GET  /_counts  {"calls": {"ec2:CreateFleet": n, ...}, "throttled": {...}, ...}
                   `calls` counts every request that arrived, throttled ones included (an
                   SDK retry is a call); `throttled` is the subset answered with a throttle;
                   `upstream_ms` the total time moto took for the forwarded ones (where moto is
                   slow; concurrent calls overlap); `upstream_busy_ms` the wall time with at
                   least one call at moto (close to a run's wall time: moto is the bottleneck);
                   `upstream_max_in_flight`; `classes` the bucket settings. IAM spelling: `ec2:`, `autoscaling:`,
                   `events:`, `pricing:`.
    POST /_reset   zero every counter (not the buckets).

Option --answer-instance-refreshes
    moto 5.2 does not implement autoscaling:DescribeInstanceRefreshes: it answers HTTP 500,
    which the SDK retries twice with back-off (~2 s per call), and spotswap asks once per group
    it is about to launch in, one group after another. On a time-limited cycle that is a moto
    artefact eating the budget. With this option the proxy answers the call itself, as AWS
    does for a group that never had a refresh: an empty list (after charging its token, so it
    is counted and can be throttled like any other call). The project's Rust test proxy does
    the same (tests/harness/proxy.rs, `set_market_only`). Every other call is forwarded.

Prints `throttle-proxy: listening on http://127.0.0.1:P -> UPSTREAM (scale K)` once ready.
Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# API versions in the form body of the Query protocols.
EC2_VERSION = "2016-11-15"
ASG_VERSION = "2011-01-01"

# Class name -> (refill tokens per second, burst) at --scale 1. The same names are used by
# spotswap's SPOTSWAP_API_RATES (`launch=2/5,ec2-mutating=5/50,...`).
DEFAULT_CLASSES: dict[str, tuple[float, float]] = {
    "launch": (2.0, 5.0),
    "ec2-mutating": (5.0, 50.0),
    "ec2-describe": (20.0, 100.0),
    "asg-mutating": (10.0, 20.0),
    "asg-describe": (20.0, 40.0),
}

# X-Amz-Target prefix (awsJson protocols) -> IAM service prefix.
JSON_TARGETS = {
    "AWSEvents": "events",
    "AWSPriceListService": "pricing",
    "AmazonSQS": "sqs",
}

# Hop-by-hop headers (RFC 9110 7.6.1): meaningful for one connection only, never relayed.
# Content-Length is recomputed from the body we actually send.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class TokenBucket:
    """A continuously refilled token bucket. Thread-safe."""

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        # A bucket smaller than one token could never let a request through.
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        """Take one token if there is one; False means throttle."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + self.rate * (now - self.last))
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def classify(service: str | None, op: str | None) -> str | None:
    """The bucket class of a call, or None for an unlimited one."""
    if not service or not op:
        return None
    if service == "ec2":
        if op in ("RunInstances", "CreateFleet"):
            return "launch"
        if op.startswith("Describe") or op.startswith("Get"):
            return "ec2-describe"
        return "ec2-mutating"
    if service == "autoscaling":
        if op.startswith("Describe"):
            return "asg-describe"
        return "asg-mutating"
    return None


def identify(method: str, path: str, headers, body: bytes) -> tuple[str | None, str | None]:
    """(IAM service prefix, operation) of a request, or (None, None) when unknown.

    Query protocols (EC2, Auto Scaling) carry `Action` and `Version` in the form body of a
    POST (or, rarely, in the query string); awsJson services carry `X-Amz-Target:
    Prefix.Operation`.
    """
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, op = target.partition(".")
        service = JSON_TARGETS.get(prefix, prefix.lower())
        return service, op or None
    params: dict[str, list[str]] = {}
    query = urllib.parse.urlsplit(path).query
    if query:
        params.update(urllib.parse.parse_qs(query))
    ctype = headers.get("Content-Type", "")
    if body and (ctype.startswith("application/x-www-form-urlencoded") or not ctype):
        try:
            params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        except ValueError:
            pass
    action = (params.get("Action") or [None])[0]
    version = (params.get("Version") or [None])[0]
    if not action:
        return None, None
    if version == EC2_VERSION:
        return "ec2", action
    if version == ASG_VERSION:
        return "autoscaling", action
    # Another Query service (STS, IAM, ...): named by its version, counted, never throttled.
    return f"query-{version or 'unknown'}", action


def throttle_reply(service: str) -> tuple[int, bytes]:
    """The status and body AWS answers a throttled call of `service` with."""
    rid = str(uuid.uuid4())
    if service == "ec2":
        return 503, (
            '<?xml version="1.0" encoding="UTF-8"?>'
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
            "<Message>Request limit exceeded.</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode()
    return 400, (
        '<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/">'
        "<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        f"<RequestId>{rid}</RequestId></ErrorResponse>"
    ).encode()


class Counters:
    """Calls, throttles and upstream time per `service:Operation`. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        self.upstream_ms: dict[str, float] = {}
        # Wall time with at least one request at moto: moto is one Python process, so a busy
        # time close to a cycle's wall time means moto was the bottleneck.
        self.in_flight = 0
        self.max_in_flight = 0
        self.busy_ms = 0.0
        self.busy_since = 0.0

    def reset(self):
        with self.lock:
            self.calls.clear()
            self.throttled.clear()
            self.upstream_ms.clear()
            self.busy_ms = 0.0
            self.busy_since = time.monotonic()
            self.max_in_flight = self.in_flight

    def begin(self):
        with self.lock:
            if self.in_flight == 0:
                self.busy_since = time.monotonic()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self):
        with self.lock:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.busy_ms += (time.monotonic() - self.busy_since) * 1000.0

    def call(self, key: str):
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def throttle(self, key: str):
        with self.lock:
            self.throttled[key] = self.throttled.get(key, 0) + 1

    def upstream(self, key: str, ms: float):
        with self.lock:
            self.upstream_ms[key] = self.upstream_ms.get(key, 0.0) + ms

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "calls": dict(sorted(self.calls.items())),
                "throttled": dict(sorted(self.throttled.items())),
                "upstream_ms": {k: round(v, 1) for k, v in sorted(self.upstream_ms.items())},
                "upstream_busy_ms": round(
                    self.busy_ms + ((time.monotonic() - self.busy_since) * 1000.0 if self.in_flight else 0.0), 1
                ),
                "upstream_max_in_flight": self.max_in_flight,
            }


EMPTY_INSTANCE_REFRESHES = (
    '<DescribeInstanceRefreshesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
    "<DescribeInstanceRefreshesResult><InstanceRefreshes></InstanceRefreshes></DescribeInstanceRefreshesResult>"
    "<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>"
)


class Proxy:
    """Shared state of the server: upstream address, buckets, counters."""

    def __init__(self, upstream: str, scale: float, answer_instance_refreshes: bool = False):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"throttle-proxy: --upstream must be http://HOST:PORT, got {upstream}")
        self.upstream = upstream
        self.host = u.hostname
        self.port = u.port or 80
        self.scale = scale
        self.answer_instance_refreshes = answer_instance_refreshes
        self.buckets = {
            name: TokenBucket(rate * scale, burst * scale) for name, (rate, burst) in DEFAULT_CLASSES.items()
        }
        self.counters = Counters()
        # One keep-alive connection to moto per proxy thread (one per client connection).
        self.local = threading.local()

    def classes(self) -> dict:
        return {n: {"rate": b.rate, "burst": b.burst} for n, b in self.buckets.items()}

    def conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=300)
            self.local.conn = c
        return c

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes):
        """Send the request upstream; returns (status, reason, headers, body)."""
        # A keep-alive connection moto closed while idle fails on reuse with a reset or an
        # empty answer: retry once on a fresh connection (moto closed it before reading the
        # request, so this is not a second call). Anything else -- a timeout, a failure on a
        # fresh connection -- is a 502: resending a CreateFleet that moto may have served would
        # launch twice.
        for attempt in range(2):
            c = self.conn(fresh=attempt > 0)
            reused = getattr(c, "served", 0) > 0
            try:
                c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    c.putheader(k, v)
                if body or method in ("POST", "PUT", "PATCH"):
                    c.putheader("Content-Length", str(len(body)))
                # endheaders with a bytes body sends headers and body in one segment.
                c.endheaders(body if body else None)
                r = c.getresponse()
                data = r.read()
                c.served = getattr(c, "served", 0) + 1
                if r.will_close:
                    c.close()
                    self.local.conn = None
                return r.status, r.reason, r.getheaders(), data
            except (http.client.HTTPException, OSError) as e:
                c.close()
                self.local.conn = None
                stale = isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if not (reused and stale and attempt == 0):
                    raise ConnectionError(f"upstream {self.upstream}: {e!r}") from e
        raise AssertionError("unreachable")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with Content-Length
    server_version = "throttle-proxy"
    sys_version = ""
    proxy: Proxy  # set on the class in main()

    def setup(self):
        super().setup()
        # Responses go out in one write, but no Nagle delay either way.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass  # one line per call would drown the benchmark's output

    # Every method goes through the same path: the proxy relays verbatim.
    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Decode a chunked request body; it is forwarded with a Content-Length.
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()  # CRLF after each chunk
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status: int, body: bytes, headers: list[tuple[str, str]], reason: str | None = None):
        """Status line, headers and body in one write."""
        if self.command == "HEAD":
            payload = b""
        else:
            payload = body
        lines = [f"HTTP/1.1 {status} {reason or self.responses.get(status, ('',))[0]}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + payload)
        self.log_request(status, len(body))

    def handle_any(self):
        p = self.proxy
        body = self.read_body()
        path_only = urllib.parse.urlsplit(self.path).path
        if path_only == "/_counts" and self.command == "GET":
            snap = p.counters.snapshot()
            snap["scale"] = p.scale
            snap["classes"] = p.classes()
            self.reply(200, json.dumps(snap).encode(), [("Content-Type", "application/json")])
            return
        if path_only == "/_reset" and self.command == "POST":
            p.counters.reset()
            self.reply(200, b'{"reset": true}', [("Content-Type", "application/json")])
            return

        service, op = identify(self.command, self.path, self.headers, body)
        key = f"{service}:{op}" if service and op else None
        if key:
            p.counters.call(key)
        cls = classify(service, op)
        if cls is not None and not p.buckets[cls].take():
            p.counters.throttle(key)
            status, xml = throttle_reply(service)
            self.reply(status, xml, [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))])
            return

        if p.answer_instance_refreshes and key == "autoscaling:DescribeInstanceRefreshes":
            xml = EMPTY_INSTANCE_REFRESHES.format(rid=uuid.uuid4()).encode()
            self.reply(200, xml, [("Content-Type", "text/xml")])
            return

        # `Expect: 100-continue` was answered here (the body is read); moto must not see it.
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "expect"]
        t0 = time.monotonic()
        p.counters.begin()
        try:
            status, reason, rheaders, rbody = p.forward(self.command, self.path, headers, body)
        except ConnectionError as e:
            self.reply(502, str(e).encode(), [("Content-Type", "text/plain")])
            return
        finally:
            p.counters.end()
        if key:
            p.counters.upstream(key, (time.monotonic() - t0) * 1000.0)
        self.reply(status, rbody, rheaders, reason)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of SDK connections must not be refused


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every rate and burst by K (time compression)")
    ap.add_argument(
        "--answer-instance-refreshes",
        action="store_true",
        help="answer autoscaling:DescribeInstanceRefreshes (not in moto) with an empty list, as AWS does",
    )
    args = ap.parse_args(argv)
    if args.scale <= 0:
        ap.error("--scale must be positive")
    Handler.proxy = Proxy(args.upstream.rstrip("/"), args.scale, args.answer_instance_refreshes)
    server = Server(("127.0.0.1", args.port), Handler)
    print(
        f"throttle-proxy: listening on http://127.0.0.1:{server.server_address[1]} -> {args.upstream} (scale {args.scale:g})"
        + (", answering DescribeInstanceRefreshes" if args.answer_instance_refreshes else ""),
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
