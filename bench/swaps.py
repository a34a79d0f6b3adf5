#!/usr/bin/env python3
"""Swap throughput of one rebalancer cycle under EC2's API rate limits, on moto.

    swaps.py --cli target/release/spotswap --moto-port M --proxy-port P \
             [--proxy-bin target/release/spotswap-proxy] \
             [--groups 30] [--per-group 20] [--scale 4] [--json out.json]

What
    Seeds G Auto Scaling groups of N on-demand instances each in moto, then runs
    `spotswap rebalance` cycles through spotswap-proxy (EC2's token buckets) until a
    cycle starts, attaches and retires nothing, and reports:
      - swaps started in cycle 1 (launch actions that were done, or fell back to on-demand);
      - swaps completed over all cycles (retire done with reason ReplacementInService);
      - mutating calls per completed swap, in total and per operation (from the proxy);
      - throttles the proxy returned (per operation) and how many the CLI could not absorb
        ("unhandled throttles": actions that failed with a throttling error, cycles that
        failed, warnings that name a throttle);
      - reads per cycle per operation, each cycle's wall time and the CLI's `timings`;
      - the final fleet, read from moto directly: every group at desired, InService, spot
        vs on-demand, and none of our instances outside a group.
    A readable summary goes to stdout; everything is written as JSON (--json).

Why
    The rebalancer's job is bounded by EC2's request rate limits, not by CPU: the launch
    class (RunInstances/CreateFleet) refills at 2 calls/s on AWS, so a 5-minute cycle can start
    at most ~5 + 2 x 285 swaps (the cycle keeps a reserve at the end). This benchmark checks
    how close a cycle gets to that bound, that the client's own pacing keeps the throttles it
    meets within what its retries absorb, and what a swap costs in mutating calls.

moto is not AWS
    moto has no throttling at all and answers as fast as one single-threaded Python process
    can. Hence the proxy: the project's test proxy as a binary (tests/harness/bin/spotswap-proxy.rs,
    built next to the CLI by `cargo build --release --workspace --bins`) enforces EC2's buckets
    in front of moto, one per class of spotswap_core::ops, at spotswap's own default rates
    (crates/aws/src/throttle.rs), and answers a throttled call with the service's own error
    (tests/harness/proxy/rates.rs). It also says which operations read and which bucket each
    is charged to (`/_counts`: `class`, `bucket`), so this script classifies nothing itself.
    moto also differs in ways
    that matter here: DescribeInstanceTypes takes seconds (AWS: well under one), there is no
    Price List API (prices come from SPOTSWAP_PRICE_FILE, as in `make demo`), spot capacity
    is unlimited, instances are running and InService at once, and group launches land in
    one AZ; DescribeInstanceRefreshes is not implemented (a 500 the SDK retries with back-off,
    ~2 s per group about to launch), so by default the proxy answers it as AWS does, with an
    empty list (--moto-instance-refreshes forwards it to moto instead). And moto is single-threaded: at a high enough compression it cannot answer calls
    as fast as the scaled buckets allow. The report says so when the launch class never
    throttled and cycle 1 started fewer swaps than the bucket arithmetic allows.

How the compression works
    `--scale K` multiplies every refill rate and burst of the proxy's buckets by K, so
    T seconds at EC2's real rates take T/K seconds here. Cycle 1 (and every later one) runs
    with `--time-limit 300/K` -- the simulated 5-minute Lambda schedule -- and
    SPOTSWAP_API_RATES set to the proxy's buckets (its defaults x K, as its `/_counts`
    reports them in `api_rates`), so the CLI's client-side token buckets
    pace it against the same scaled limits. Both are features being added to the CLI; the
    flag is probed with `spotswap rebalance --help` and, when missing, the cycles run without
    a time limit (the report says so). The environment variable is set either way (an older
    CLI ignores it). The larger K, the more moto's own speed (and this machine's CPU) distorts
    the result; run a few values of K and compare.

What scale moto sustains (measured on a 2-core machine shared with cargo builds, debug CLI)
    The launch path costs moto far more than the launch itself: before each CreateFleet the
    CLI looks up `tag:spotswap:replaces=<id>` with DescribeInstances, and moto filters tags by
    scanning every instance, superlinearly in the fleet (one such call: ~90 ms at 100
    instances, ~2 s at 600, uncontended). So the sustainable K depends on the fleet size:
      100 instances (--groups 5 --per-group 20): K=1 and K=2 run at the bucket's pace, K=4
        nearly (7.6 of 8 launches/s), K=8 is moto-bound (~5-9/s): K <= ~3-4.
      600 instances (the default): moto sustains ~0.3-0.9 launches/s, so even K=0.5 is
        moto-bound (0.7/s against 1/s): K <= ~0.35; at K=4 cycle 1 starts ~30 swaps, not ~575.
    The report flags it (`launch_bucket_cycle1.moto_bottleneck`, `moto_limits_launch_rate`,
    `moto_busy_fraction`) and estimates the K the observed launch rate would sustain.

Seeding goes straight to moto (not through the proxy), so the proxy's counts are the CLI's
calls only. Processes this script starts (moto, the proxy) are stopped when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VENV", REPO / ".venv"))

SIMULATED_CYCLE_SECS = 300.0  # the rebalancer's schedule: every 5 minutes
AMI = "ami-12c6146b"  # one of moto's built-in AMIs, as in scripts/demo_fleet.py
INSTANCE_TYPE = "m5.large"
THROTTLE_RE = re.compile(r"throttl|RequestLimitExceeded|Rate exceeded|SlowDown", re.I)


def fmt_rate(x: float) -> str:
    return f"{x:g}"


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def http_post(url: str, timeout: float = 5.0) -> bytes:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


# ---------------------------------------------------------------------------------------------
# processes


class Processes:
    """The child processes this run started; stopped by pid (never by name) at the end."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def add(self, name: str, p: subprocess.Popen):
        self.procs.append((name, p))

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()


def start_moto(port: int, workdir: Path, procs: Processes) -> str:
    """`.venv/bin/moto_server` on 127.0.0.1:port, as scripts/with-moto.sh starts it."""
    log = open(workdir / "moto.log", "w")
    p = subprocess.Popen(
        [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    procs.add("moto", p)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            http_get(f"{url}/moto-api/", timeout=2)
            return url
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"swaps: moto exited ({p.returncode}); see {workdir / 'moto.log'}")
            time.sleep(0.1)
    raise SystemExit("swaps: moto did not answer within 30 s")


def start_proxy(binary: str, port: int, upstream: str, scale: float, refreshes: bool, workdir: Path,
                procs: Processes) -> str:
    """spotswap-proxy in front of moto; waits for its `listening` line."""
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"swaps: no proxy binary at {binary}; `cargo build --release --workspace --bins` "
                         "builds it next to the CLI (or give --proxy-bin)")
    p = subprocess.Popen(
        [binary, "--port", str(port), "--upstream", upstream, "--scale", str(scale)]
        + (["--answer-instance-refreshes"] if refreshes else []),
        stdout=subprocess.PIPE,
        stderr=open(workdir / "proxy.log", "w"),
        text=True,
    )
    procs.add("proxy", p)
    line = p.stdout.readline()
    if "listening" not in line:
        raise SystemExit(f"swaps: the proxy did not start: {line!r}; see {workdir / 'proxy.log'}")
    print(line.strip(), flush=True)
    # The line names the address, so --proxy-port 0 (a free port) works too.
    return re.search(r"listening on (http://\S+)", line).group(1)


# ---------------------------------------------------------------------------------------------
# moto, directly


def clients(endpoint: str, region: str):
    # Seeding and the final read go straight to moto: generous timeouts (moto is slow to
    # create hundreds of instances) and retries on the rare connection reset.
    cfg = botocore.config.Config(read_timeout=300, retries={"mode": "standard", "max_attempts": 5})
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
              aws_secret_access_key="testing", config=cfg)
    return boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)


def all_groups(asg) -> list[dict]:
    return [g for page in asg.get_paginator("describe_auto_scaling_groups").paginate()
            for g in page["AutoScalingGroups"]]


def live_instances(ec2) -> dict[str, dict]:
    states = ["pending", "running", "stopping", "stopped"]
    out = {}
    for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": states}]):
        for r in page["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i
    return out


def seed(ec2, asg, groups: int, per_group: int) -> dict:
    """A VPC with a subnet in each of 3 AZs, one launch template, `groups` managed groups."""
    t0 = time.monotonic()
    azs = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:3]
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{16 * i}.0/20", AvailabilityZone=az)["Subnet"]["SubnetId"]
        for i, az in enumerate(azs)
    ]
    lt = ec2.create_launch_template(
        LaunchTemplateName="bench-lt",
        LaunchTemplateData={"ImageId": AMI, "InstanceType": INSTANCE_TYPE,
                            "MetadataOptions": {"HttpTokens": "required"}},
    )["LaunchTemplate"]["LaunchTemplateId"]
    names = [f"bench-{n:02d}" for n in range(1, groups + 1)]
    for name in names:
        tags = {
            "spotswap:enabled": "true",
            "spotswap:on-demand-base": "0",
            # every instance replaceable, and one cycle may start as many swaps as the
            # buckets and the time allow
            "spotswap:replace-per-cycle": str(per_group),
        }
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"},
            MinSize=0,
            MaxSize=per_group + 2,
            DesiredCapacity=per_group,
            HealthCheckGracePeriod=0,
            VPCZoneIdentifier=",".join(subnets),
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": False, "ResourceId": name,
                   "ResourceType": "auto-scaling-group"} for k, v in tags.items()]
            + [{"Key": "team", "Value": "bench", "PropagateAtLaunch": True, "ResourceId": name,
                "ResourceType": "auto-scaling-group"}],
        )
        # moto's CreateAutoScalingGroup stores a grace period of 0 as 300; its update keeps 0.
        asg.update_auto_scaling_group(AutoScalingGroupName=name, HealthCheckGracePeriod=0)
    # Check: every group InService at desired, all on-demand.
    by_name = {g["AutoScalingGroupName"]: g for g in all_groups(asg)}
    bad = []
    for name in names:
        g = by_name.get(name)
        ins = [m for m in (g or {}).get("Instances", []) if m["LifecycleState"] == "InService"]
        if g is None or len(ins) != per_group or g["DesiredCapacity"] != per_group:
            bad.append(name)
    if bad:
        raise SystemExit(f"swaps: seeding failed, not all InService at desired: {bad}")
    return {"vpc": vpc, "subnets": subnets, "azs": azs, "launch_template": lt, "groups": names,
            "instances": groups * per_group, "seconds": round(time.monotonic() - t0, 1)}


def final_state(ec2, asg, names: list[str], seeded_desired: int) -> dict:
    """The fleet as moto shows it, read directly (not through the proxy)."""
    groups = {g["AutoScalingGroupName"]: g for g in all_groups(asg)}
    live = live_instances(ec2)
    members = {m["InstanceId"] for g in groups.values() for m in g["Instances"]}
    per_group = {}
    totals = {"desired": 0, "in_service": 0, "spot": 0, "on_demand": 0, "members": 0}
    for name in names:
        g = groups[name]
        ins = [m["InstanceId"] for m in g["Instances"] if m["LifecycleState"] == "InService"]
        spot = sum(1 for i in ins if live.get(i, {}).get("InstanceLifecycle") == "spot")
        row = {"desired": g["DesiredCapacity"], "max": g["MaxSize"], "members": len(g["Instances"]),
               "in_service": len(ins), "spot": spot, "on_demand": len(ins) - spot}
        per_group[name] = row
        for k in totals:
            totals[k] += row[k]
    ours_outside = sorted(
        i for i, d in live.items()
        if i not in members and any(t["Key"] == "spotswap:group" for t in d.get("Tags", []))
    )
    others_outside = sorted(i for i in live if i not in members and i not in ours_outside)
    at_desired = [n for n, r in per_group.items() if r["in_service"] == r["desired"] == r["members"]]
    max_raised = [n for n, g in groups.items() if n in per_group and any(
        t["Key"] == "spotswap:max-raised-from" for t in g.get("Tags", []))]
    return {
        "groups": per_group,
        "totals": totals,
        "all_at_desired": len(at_desired) == len(names),
        "seeded_desired": seeded_desired,
        "groups_not_at_desired": sorted(set(names) - set(at_desired)),
        "ours_outside_groups": ours_outside,
        "other_instances_outside_groups": others_outside,
        "groups_with_max_raised": sorted(max_raised),
        "live_instances": len(live),
    }


# ---------------------------------------------------------------------------------------------
# the CLI, through the proxy


def probe_cli(cli: str) -> dict:
    """Which of the new CLI features this binary has.

    `--time-limit`: from `spotswap rebalance --help`. SPOTSWAP_API_RATES is not in the help
    text; a CLI that reads it rejects an unknown class while loading its configuration, before
    any call, so the probe runs `plan` with a bad value against a closed port (no moto, no AWS)
    and looks for the variable's name in the error."""
    out = subprocess.run([cli, "rebalance", "--help"], capture_output=True, text=True, timeout=60)
    help_text = out.stdout + out.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTSWAP_"))}
    env.update({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
                "AWS_ACCESS_KEY_ID": "probe", "AWS_SECRET_ACCESS_KEY": "probe", "AWS_EC2_METADATA_DISABLED": "true",
                "SPOTSWAP_API_RATES": "no-such-class=1/1"})
    try:
        p = subprocess.run([cli, "plan", "--output", "json"], capture_output=True, text=True, timeout=60, env=env)
        rates = "SPOTSWAP_API_RATES" in p.stderr
    except subprocess.TimeoutExpired:
        rates = False
    return {"time_limit_flag": "--time-limit" in help_text, "api_rates_env": rates}


def run_cycle(cli: str, env: dict, time_limit: float | None, proxy: str, log: Path, timeout: float) -> dict:
    """One `spotswap rebalance --output json`, with the proxy's counts reset before it."""
    http_post(f"{proxy}/_reset")
    cmd = [cli, "rebalance", "--output", "json"]
    if time_limit is not None:
        cmd += ["--time-limit", fmt_rate(round(time_limit, 3))]
    t0 = time.monotonic()
    with open(log, "w") as err:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    counts = json.loads(http_get(f"{proxy}/_counts"))
    report = None
    if p.returncode == 0:
        try:
            report = json.loads(p.stdout)
        except json.JSONDecodeError:
            report = None
    return {"command": cmd, "exit_code": p.returncode, "wall_s": round(wall, 2), "report": report,
            "counts": counts, "stdout_if_not_json": None if report else p.stdout[-2000:]}


def outcome(a: dict) -> str:
    # Outcome is serialized flattened: {"outcome": "done", "detail": "i-..."}.
    o = a.get("outcome")
    return o.get("outcome") if isinstance(o, dict) else o


def detail(a: dict) -> str:
    o = a.get("outcome")
    d = o.get("detail") if isinstance(o, dict) else a.get("detail")
    return d if isinstance(d, str) else json.dumps(d) if d is not None else ""


def log_throttles(log: Path) -> dict:
    """WARN/ERROR log lines that name a throttle, per reason: throttles that reached the code
    and were handled by degrading (e.g. TerminationProtectionUnknown) rather than failing."""
    out: dict[str, int] = {}
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if not THROTTLE_RE.search(line):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            out["(unparsed)"] = out.get("(unparsed)", 0) + 1
            continue
        # Decision lines are the report's actions (counted there); the rest are throttles a
        # step absorbed by degrading, e.g. InstanceRefreshUnknown, TerminationProtectionUnknown.
        if rec.get("level") in ("WARN", "ERROR") and rec.get("message") != "decision":
            key = rec.get("reason") or rec.get("action") or rec.get("message", "?")
            out[key] = out.get(key, 0) + 1
    return out


def summarize_cycle(n: int, c: dict, log: Path, K: float) -> dict:
    r = c["report"] or {}
    actions = r.get("actions", [])
    kinds: dict[str, dict[str, int]] = {}
    for a in actions:
        k = kinds.setdefault(a["action"], {})
        k[outcome(a)] = k.get(outcome(a), 0) + 1
    failed_throttled = [
        {"action": a["action"], "group": a["group"], "instance": a.get("instance"), "detail": detail(a)[:300]}
        for a in actions if outcome(a) == "failed" and THROTTLE_RE.search(detail(a))
    ]
    failed_other = [
        {"action": a["action"], "group": a["group"], "instance": a.get("instance"), "detail": detail(a)[:300]}
        for a in actions if outcome(a) == "failed" and not THROTTLE_RE.search(detail(a))
    ]
    calls = c["counts"]["calls"]
    throttled = c["counts"]["throttled"]
    return {
        "cycle": n,
        "exit_code": c["exit_code"],
        "wall_s": c["wall_s"],
        "timings": r.get("timings"),
        # The same phases at EC2's real rates: K times longer.
        "timings_simulated_s": {k.removesuffix("_ms"): round(v * K / 1000.0, 1)
                                for k, v in (r.get("timings") or {}).items()},
        "actions": kinds,
        "launch_done": sum(1 for a in actions if a["action"] == "launch" and outcome(a) == "done"),
        "launch_fallback": sum(1 for a in actions if a["action"] == "launch" and outcome(a) == "fallback"),
        "launch_not_attempted": sum(1 for a in actions if a["action"] == "launch" and outcome(a) == "not-attempted"),
        "retired": sum(1 for a in actions if a["action"] == "retire" and outcome(a) == "done"
                       and a.get("reason") == "ReplacementInService"),
        # The proxy's judgement (spotswap_core::ops): launches are mutating calls too.
        "reads": {k: v for k, v in calls.items() if c["counts"]["class"].get(k) == "read"},
        "mutating": {k: v for k, v in calls.items() if c["counts"]["class"].get(k) != "read"},
        "throttled": throttled,
        "bucket": c["counts"]["bucket"],
        "unhandled_throttles": failed_throttled,
        "failed_other": failed_other,
        "log_throttle_warnings": log_throttles(log),
        "cli_api_calls": r.get("api_calls"),
        "upstream_ms": c["counts"].get("upstream_ms", {}),
        "moto_busy_s": round(c["counts"].get("upstream_busy_ms", 0.0) / 1000.0, 2),
        "moto_max_in_flight": c["counts"].get("upstream_max_in_flight"),
        "swap_actions": sum(1 for a in actions if a["action"] in ("launch", "attach", "retire")),
        "skipped": r.get("skipped", []),
    }


def add(into: dict, d: dict):
    for k, v in d.items():
        into[k] = into.get(k, 0) + v


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True, help="the spotswap binary, e.g. target/release/spotswap")
    ap.add_argument("--moto-port", type=int, default=0, help="port for the moto server this run starts")
    ap.add_argument("--moto-url", help="use this (empty) moto instead of starting one")
    ap.add_argument("--proxy-port", type=int, required=True, help="port for the throttle proxy")
    ap.add_argument("--proxy-bin", help="the spotswap-proxy binary (default: next to --cli)")
    ap.add_argument("--groups", type=int, default=30)
    ap.add_argument("--per-group", type=int, default=20)
    ap.add_argument("--scale", type=float, default=4.0, help="time compression K (proxy buckets and client rates x K)")
    ap.add_argument("--max-cycles", type=int, default=10)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--cycle-timeout", type=float, default=1800.0, help="kill a cycle after this many seconds")
    ap.add_argument("--no-time-limit", action="store_true",
                    help="run cycles without --time-limit even when the CLI has it (every eligible swap starts)")
    ap.add_argument("--moto-instance-refreshes", action="store_true",
                    help="forward DescribeInstanceRefreshes to moto (a 500 the SDK retries with back-off, "
                         "~2 s per launching group) instead of the proxy answering it as AWS does")
    ap.add_argument("--workdir", help="logs and per-cycle reports (default: a new temp directory)")
    ap.add_argument("--json", help="write the full result here (default: WORKDIR/swaps.json)")
    args = ap.parse_args(argv)
    if not args.moto_url and not args.moto_port:
        ap.error("give --moto-port (a moto is started) or --moto-url")

    cli = str(Path(args.cli).resolve())
    K = args.scale
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="spotswap-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    procs = Processes()
    try:
        # (a) moto and the proxy
        moto = args.moto_url.rstrip("/") if args.moto_url else start_moto(args.moto_port, workdir, procs)
        proxy_bin = args.proxy_bin or str(Path(cli).with_name("spotswap-proxy"))
        proxy = start_proxy(proxy_bin, args.proxy_port, moto, K, not args.moto_instance_refreshes, workdir, procs)
        # The proxy's buckets at this scale; the CLI paces itself against the same.
        buckets = json.loads(http_get(f"{proxy}/_counts"))
        classes, rates = buckets["classes"], buckets["api_rates"]
        ec2, asg = clients(moto, args.region)
        if all_groups(asg) or live_instances(ec2):
            raise SystemExit(f"swaps: region {args.region} of {moto} is not empty; use a fresh moto")

        # (b) seed, directly against moto
        print(f"seeding {args.groups} groups x {args.per_group} on-demand {INSTANCE_TYPE} in moto ...", flush=True)
        seeded = seed(ec2, asg, args.groups, args.per_group)
        print(f"seeded {seeded['instances']} instances in {seeded['seconds']} s, all InService", flush=True)

        # (c) cycles through the proxy
        features = probe_cli(cli)
        time_limit = SIMULATED_CYCLE_SECS / K if features["time_limit_flag"] and not args.no_time_limit else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTSWAP_"))}
        env.update({
            "AWS_ENDPOINT_URL": proxy,
            "AWS_REGION": args.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SPOTSWAP_PRICE_FILE": str(REPO / "prices" / "sample-on-demand.json"),
            "SPOTSWAP_MAX_CONCURRENCY": "8",
            "SPOTSWAP_API_RATES": rates,
            "RUST_LOG": "info",
        })
        notes = []
        if args.no_time_limit:
            notes.append("--no-time-limit: cycles ran without a time limit")
        elif time_limit is None:
            notes.append("this CLI has no --time-limit flag: cycles ran without a time limit "
                         "(cycle 1 is not the simulated 5-minute cycle; it starts every eligible swap)")
        if not features["api_rates_env"]:
            notes.append("this CLI does not read SPOTSWAP_API_RATES: it does not pace itself with "
                         "client-side buckets, so every throttle is the proxy's and the SDK's retries'")
        print(f"cli {cli}: --time-limit {'yes' if time_limit else 'NO'}, SPOTSWAP_API_RATES "
              f"{'read' if features['api_rates_env'] else 'NOT read'}; SPOTSWAP_API_RATES={rates}", flush=True)

        cycles_raw, cycles = [], []
        for n in range(1, args.max_cycles + 1):
            log = workdir / f"cycle-{n}.log"
            c = run_cycle(cli, env, time_limit, proxy, log, args.cycle_timeout)
            (workdir / f"cycle-{n}.json").write_text(json.dumps(c, indent=2))
            s = summarize_cycle(n, c, log, K)
            cycles_raw.append(c)
            cycles.append(s)
            print(f"cycle {n}: exit {s['exit_code']}, {s['wall_s']} s, actions {s['actions']}, "
                  f"throttled {sum(s['throttled'].values())}", flush=True)
            if c["exit_code"] == 0 and s["swap_actions"] == 0:
                break

        # (d) report
        final = final_state(ec2, asg, seeded["groups"], seeded["instances"])
        result = analyse(args, K, time_limit, rates, classes, features, seeded, cycles, final, notes)
        result["workdir"] = str(workdir)
        result["total_wall_s"] = round(time.monotonic() - t_start, 1)
    finally:
        procs.stop()

    out = Path(args.json) if args.json else workdir / "swaps.json"
    out.write_text(json.dumps(result, indent=2))
    print_summary(result)
    print(f"\nJSON: {out}\nlogs and per-cycle reports: {workdir}")
    return 0


def analyse(args, K, time_limit, rates, classes, features, seeded, cycles, final, notes) -> dict:
    eligible = args.groups * args.per_group
    mutating: dict[str, int] = {}
    throttled: dict[str, int] = {}
    for s in cycles:
        add(mutating, s["mutating"])
        add(throttled, s["throttled"])
    completed = sum(s["retired"] for s in cycles)
    c1 = cycles[0]
    started1 = c1["launch_done"] + c1["launch_fallback"]
    total_mut = sum(mutating.values())
    metered_mut = sum(v for k, v in mutating.items() if k.startswith(("ec2:", "autoscaling:")))
    throttled_by_class: dict[str, int] = {}
    bucket_of = {k: b for s in cycles for k, b in s["bucket"].items()}
    for k, v in throttled.items():
        cls = bucket_of.get(k, "unlimited")
        throttled_by_class[cls] = throttled_by_class.get(cls, 0) + v
    unhandled = [dict(u, cycle=s["cycle"]) for s in cycles for u in s["unhandled_throttles"]]
    cycle_errors = [s["cycle"] for s in cycles if s["exit_code"] != 0]

    # Bucket arithmetic for cycle 1: how many launch calls the launch bucket allows in the time
    # the cycle spent executing (timings.execute_ms when the CLI reports it, else the cycle's
    # wall time, which includes reading), and what the 5-minute simulated cycle allows.
    # The launch bucket at scale 1 (the proxy reports it scaled; a burst floored at 1 token
    # by the scaling reads a little high here, which only matters at a tiny K).
    rate, burst = classes["launch"]["rate"] / K, classes["launch"]["burst"] / K
    exec_s = (c1["timings"] or {}).get("execute_ms")
    exec_s = exec_s / 1000.0 if exec_s is not None else c1["wall_s"]
    allowed_in_exec = burst * K + rate * K * exec_s
    reserve = min(15.0, time_limit / 20.0) if time_limit else None
    allowed_sim_cycle = burst + rate * (SIMULATED_CYCLE_SECS - 15.0)  # at real rates, minus reserve
    launch_calls_1 = c1["mutating"].get("ec2:CreateFleet", 0) + c1["mutating"].get("ec2:RunInstances", 0)
    launch_throttles_1 = sum(v for k, v in c1["throttled"].items() if k in ("ec2:CreateFleet", "ec2:RunInstances"))
    achieved_rate = launch_calls_1 / exec_s if exec_s > 0 else 0.0
    bound = min(eligible, allowed_in_exec)
    # 10 % slack: the bucket arithmetic is an upper bound (the burst may be partly spent by the
    # time the first launch goes out, and the last refill interval is cut short).
    short = started1 < 0.9 * bound
    # The brief's test: the launch class never throttled, yet fewer swaps than the bucket allows.
    # A client that paces itself at exactly the proxy's rates still meets a few throttles
    # (scheduling jitter bunches two calls), so also: moto busy (>= 1 call in flight) for at
    # least 80 % of the cycle.
    moto_busy_frac = c1["moto_busy_s"] / c1["wall_s"] if c1["wall_s"] else 0.0
    moto_bottleneck_strict = launch_throttles_1 == 0 and short
    moto_bottleneck = short and (launch_throttles_1 == 0 or moto_busy_frac >= 0.8)
    forwarded1 = {k: v - c1["throttled"].get(k, 0) for k, v in {**c1["reads"], **c1["mutating"]}.items()}
    moto_ms_per_call = {k: round(ms / forwarded1[k], 1) for k, ms in c1["upstream_ms"].items() if forwarded1.get(k)}
    moto_busy_s = c1["moto_busy_s"]
    fleet_ms = c1["upstream_ms"].get("ec2:CreateFleet")
    fleet_ms_mean = fleet_ms / launch_calls_1 if fleet_ms and launch_calls_1 else None
    # The pace the launch calls kept once the burst was spent, and the K it would sustain:
    # moto-bound, this is what moto can do; bucket-bound, a lower bound.
    paced = max(launch_calls_1 - burst * K, 0) / exec_s if exec_s > 0 else 0.0
    sustainable_k = round(paced / rate, 2)
    # Even when every eligible swap started: launches past the burst went out well below the
    # bucket's rate without a single throttle, so moto (not the bucket) set the pace.
    moto_limits_rate = launch_throttles_1 == 0 and launch_calls_1 > 2 * burst * K and paced < 0.8 * rate * K
    if moto_bottleneck:
        notes.append(
            f"moto is the bottleneck at scale {K:g}: the launch class "
            f"{'never throttled' if launch_throttles_1 == 0 else f'throttled only {launch_throttles_1} times'} "
            f"in cycle 1, moto was busy {100 * moto_busy_frac:.0f} % of it, and "
            f"it started {started1} swaps in {exec_s:.1f} s ({achieved_rate:.2f} launches/s) where the "
            f"bucket allows {bound:.0f} ({rate * K:g}/s + burst {burst * K:g}); moto sustained "
            f"~{max(achieved_rate, paced):.2f} launches/s, i.e. --scale <= ~{max(achieved_rate, paced) / rate:.2f} "
            f"at this fleet size on this machine")
    elif moto_limits_rate:
        notes.append(
            f"moto set the launch pace at scale {K:g}: after the burst, launches went out at {paced:.2f}/s "
            f"against a bucket of {rate * K:g}/s, with no throttle; --scale <= ~{sustainable_k:g} at this "
            f"fleet size on this machine")
    if time_limit is not None:
        over = [s["cycle"] for s in cycles if s["wall_s"] > time_limit]
        if over:
            notes.append(f"cycles {over} overran the {time_limit:g} s time limit (the limit gates new swaps, "
                         "not reading, planning or preflight)")
    if "/debug/" in args.cli:
        notes.append("a debug build of the CLI: plan_ms (pure computation) is unoptimised; use a release build "
                     "for timings")
    pre = c1["reads"].get("ec2:DescribeInstanceAttribute", 0)
    if pre > 2 * max(started1, 1):
        notes.append(f"cycle 1 preflight read termination protection {pre} times for {started1} swaps started")
    return {
        "command": " ".join(sys.argv),
        "params": {"groups": args.groups, "per_group": args.per_group, "scale": K, "region": args.region,
                   "cli": args.cli, "max_concurrency": 8,
                   "describe_instance_refreshes": "moto (HTTP 500, retried)" if args.moto_instance_refreshes
                   else "answered by the proxy (empty list, as AWS)"},
        "cli_features": features,
        "time_limit_s": time_limit,
        "time_limit_reserve_s": reserve,
        "spotswap_api_rates": rates,
        "seeding": seeded,
        "swaps_started_cycle1": started1,
        "swaps_started_cycle1_detail": {"done": c1["launch_done"], "fallback": c1["launch_fallback"],
                                        "not_attempted": c1["launch_not_attempted"]},
        "eligible_swaps": eligible,
        "swaps_started_total": sum(s["launch_done"] + s["launch_fallback"] for s in cycles),
        "swaps_completed": completed,
        "cycles_run": len(cycles),
        "converged": bool(cycles) and cycles[-1]["exit_code"] == 0 and cycles[-1]["swap_actions"] == 0,
        "mutating_calls_total": total_mut,
        "mutating_calls_ec2_asg": metered_mut,
        "mutating_calls_per_completed_swap": round(total_mut / completed, 3) if completed else None,
        "mutating_calls_ec2_asg_per_completed_swap": round(metered_mut / completed, 3) if completed else None,
        "mutating_calls_per_completed_swap_by_op":
            {k: round(v / completed, 3) for k, v in sorted(mutating.items())} if completed else None,
        "mutating_calls_by_op": dict(sorted(mutating.items())),
        "throttles_total": sum(throttled.values()),
        "throttles_by_op": dict(sorted(throttled.items())),
        "throttles_by_class": throttled_by_class,
        "unhandled_throttles_total": len(unhandled) + len(cycle_errors),
        "unhandled_throttles": unhandled,
        "failed_cycles": cycle_errors,
        "log_throttle_warnings": {k: v for s in cycles for k, v in s["log_throttle_warnings"].items()},
        "launch_bucket_cycle1": {
            "execute_s": round(exec_s, 2),
            "execute_s_source": "timings.execute_ms" if (c1["timings"] or {}).get("execute_ms") is not None else "wall time",
            "launch_calls": launch_calls_1,
            "launch_throttles": launch_throttles_1,
            "achieved_launch_rate_per_s": round(achieved_rate, 2),
            "launch_rate_after_burst_per_s": round(paced, 2),
            "scale_this_launch_rate_sustains": sustainable_k,
            "bucket_rate_per_s": rate * K,
            "bucket_burst": burst * K,
            "allowed_in_execute_time": round(allowed_in_exec, 1),
            "allowed_per_simulated_5min_cycle": allowed_sim_cycle,
            "moto_createfleet_mean_ms": round(fleet_ms_mean, 1) if fleet_ms_mean else None,
            "moto_bottleneck": moto_bottleneck,
            "moto_bottleneck_strict": moto_bottleneck_strict,
            "moto_busy_fraction": round(moto_busy_frac, 2),
            "moto_limits_launch_rate": moto_limits_rate,
            # Wall time with at least one call at moto: close to the cycle's wall time means
            # moto, single-threaded, was busy all along.
            "moto_busy_s": round(moto_busy_s, 1),
            "moto_ms_per_call": moto_ms_per_call,
        },
        "cycles": cycles,
        "final": final,
        "notes": notes,
    }


def print_summary(r: dict):
    p = r["params"]
    print(f"\n== swaps: {p['groups']} groups x {p['per_group']} on-demand, scale {p['scale']:g}, "
          f"time limit {r['time_limit_s'] if r['time_limit_s'] is not None else 'none (flag missing)'}")
    print(f"{'CYCLE':>5} {'EXIT':>4} {'WALL s':>7} {'LAUNCH':>6} {'FALLBK':>6} {'ATTACH':>6} {'RETIRE':>6} "
          f"{'READS':>6} {'MUTATING':>8} {'THROTTLED':>9} {'UNHANDLED':>9} {'MOTO s':>6}  TIMINGS ms")
    for s in r["cycles"]:
        t = s["timings"]
        ts = " ".join(f"{k.removesuffix('_ms')}={v:.0f}" for k, v in t.items()) if t else "-"
        attach = sum(s["actions"].get("attach", {}).values())
        print(f"{s['cycle']:>5} {s['exit_code']:>4} {s['wall_s']:>7.1f} {s['launch_done']:>6} "
              f"{s['launch_fallback']:>6} {attach:>6} {s['retired']:>6} {sum(s['reads'].values()):>6} "
              f"{sum(s['mutating'].values()):>8} {sum(s['throttled'].values()):>9} "
              f"{len(s['unhandled_throttles']):>9} {s['moto_busy_s']:>6.1f}  {ts}")
    lb = r["launch_bucket_cycle1"]
    print(f"\nswaps started in cycle 1: {r['swaps_started_cycle1']} of {r['eligible_swaps']} eligible "
          f"(launch bucket allows {lb['allowed_in_execute_time']:.0f} in {lb['execute_s']} s of {lb['execute_s_source']}; "
          f"{lb['allowed_per_simulated_5min_cycle']:.0f} per simulated 5-min cycle)")
    print(f"launch calls in cycle 1: {lb['launch_calls']} at {lb['achieved_launch_rate_per_s']}/s "
          f"(bucket {lb['bucket_rate_per_s']:g}/s), {lb['launch_throttles']} throttled; moto CreateFleet "
          f"mean {lb['moto_createfleet_mean_ms']} ms; after the burst {lb['launch_rate_after_burst_per_s']}/s "
          f"(= scale {lb['scale_this_launch_rate_sustains']}); moto busy {lb['moto_busy_s']} s of the cycle's {r['cycles'][0]['wall_s']} s")
    print(f"swaps completed: {r['swaps_completed']} in {r['cycles_run']} cycles "
          f"({'converged' if r['converged'] else 'NOT converged'})")
    print(f"mutating calls per completed swap: {r['mutating_calls_per_completed_swap']} "
          f"(ec2+autoscaling only: {r['mutating_calls_ec2_asg_per_completed_swap']})")
    for op, v in (r["mutating_calls_per_completed_swap_by_op"] or {}).items():
        print(f"    {op:<48} {v}")
    print(f"throttles returned by the proxy: {r['throttles_total']} {r['throttles_by_class']}")
    for op, v in r["throttles_by_op"].items():
        print(f"    {op:<48} {v}")
    print(f"unhandled throttles (failed actions + failed cycles): {r['unhandled_throttles_total']}")
    if r["log_throttle_warnings"]:
        print(f"throttles handled by degrading (WARN lines): {r['log_throttle_warnings']}")
    print("reads per cycle:")
    for s in r["cycles"]:
        print(f"    cycle {s['cycle']}: " + ", ".join(f"{k}={v}" for k, v in s["reads"].items()))
    f = r["final"]
    t = f["totals"]
    print(f"final (moto): desired {t['desired']} (seeded {f['seeded_desired']}), InService {t['in_service']}, spot {t['spot']}, "
          f"on-demand {t['on_demand']}; all groups at desired: {f['all_at_desired']}"
          f"{'' if f['all_at_desired'] else ' ' + str(f['groups_not_at_desired'])}; "
          f"ours outside groups: {len(f['ours_outside_groups'])}; "
          f"MaxSize still raised: {len(f['groups_with_max_raised'])}")
    print(f"seeding {r['seeding']['seconds']} s; total wall time {r['total_wall_s']} s")
    for n in r["notes"]:
        print(f"NOTE: {n}")


if __name__ == "__main__":
    sys.exit(main())
