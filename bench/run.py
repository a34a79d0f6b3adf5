#!/usr/bin/env python3
"""`make bench`: API economy, swap throughput and footprint, written to bench/results.md.

    run.py --bin-dir target/release [--runs 5] [--out bench/results.md]

Runs, from already-built release binaries (the Makefile builds them first):

1. **Planner** (criterion, pure code): `cargo bench -p spotswap-core --bench planner`, the
   medians criterion saves in target/criterion/*/new/estimates.json.
2. **Full size, 1,000 groups / 20,000 instances** (bench/replay.py: synthetic, read-only
   pages in AWS's wire format; moto cannot hold that many instances in reasonable time):
   `spotswap plan` `--runs` times per scenario, `steady` (every group at its target: the
   idle cycle) and `busy` (every group starts a swap). Per run: calls per operation (counted by
   the server), the CLI's phase timings, wall time, and peak RSS (`ru_maxrss` of the child from
   wait4, the figure `/usr/bin/time -v` prints as "Maximum resident set size").
3. **Swap throughput on moto** (bench/swaps.py through spotswap-proxy, the project's test proxy
   as a binary, which enforces EC2's token buckets): swaps per simulated 5-minute cycle, mutating calls per completed swap,
   throttles met and absorbed.
4. **Footprint** (bench/footprint.py): cold-start init of each Lambda binary under a local
   Lambda runtime API, init RSS, binary size, zip size.
5. **Growth** (bench/growth.py): peak RSS, read phase and planning time of `spotswap plan` at
   2,000, 20,000 and 100,000 instances (issue 22), up to 3 runs each.

Every figure is a median over `--runs` runs unless the table says otherwise. Nothing here is
asserted: this is measurement, reported against the goals of issues 7 and 22.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
GROUPS, PER_GROUP = 1000, 20
BUSY_RUNS = 3
PLANNER_TARGET = REPO / "target" / "bench-planner"
PRICE_FILE = REPO / "prices" / "sample-on-demand.json"
# Reads a warm Lambda container does not repeat: cached for hours (crates/aws/src/cache.rs).
COLD_ONLY = {"ec2:DescribeInstanceTypes", "pricing:GetProducts"}
# Issue 7's goals, tightened by issue 22 (calls per swap, swaps per cycle, the busy cycle's
# reads) and extended to 100,000 instances.
from growth import growth, table as growth_table  # noqa: E402 (bench/ is the script's directory)

# Reads AWS answers for one named group per call, needed by each group about to launch.
PER_GROUP_READS = ("autoscaling:DescribeInstanceRefreshes", "autoscaling:DescribeLifecycleHooks")

GOALS = {
    "ratio": "1.0",
    "ratio_busy": "≤ 3",
    "mutating": "≤ 3",
    "swaps": "≥ 1,000",
    "rss": "≤ 48 MiB",
    "rss_100k": "≤ 128 MiB",
    "init": "≤ 50 ms",
    "zip": "≤ 8 MB",
}


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO).stdout.strip()
        except OSError:
            return "unknown"

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "rustc": out(["rustc", "--version"]),
        "python": platform.python_version(),
        "commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "load_before": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------------------------
# 1. criterion
# --------------------------------------------------------------------------------------------


def criterion() -> dict:
    """The planner benches, built in a target dir of their own: `make bench` compiles them
    there while the release build runs (`-p spotswap-core` would otherwise change the
    workspace's feature set in target/ and rebuild the SDK)."""
    log(f"criterion: cargo bench -p spotswap-core --bench planner (CARGO_TARGET_DIR={PLANNER_TARGET})")
    subprocess.run(
        ["cargo", "bench", "-p", "spotswap-core", "--bench", "planner", "--",
         "--warm-up-time", "1", "--measurement-time", "5"],
        cwd=REPO, check=True, stdout=sys.stderr, env={**os.environ, "CARGO_TARGET_DIR": str(PLANNER_TARGET)},
    )
    out = {}
    root = PLANNER_TARGET / "criterion"
    for f in glob.glob(str(root / "**" / "new" / "estimates.json"), recursive=True):
        name = str(Path(f).parent.parent.relative_to(root))
        est = json.load(open(f))
        out[name] = est["median"]["point_estimate"] / 1e6  # ns → ms
    return out


# --------------------------------------------------------------------------------------------
# 2. replay at full size
# --------------------------------------------------------------------------------------------


def run_measured(cmd, env, stdout_path, stderr_path) -> dict:
    """Run `cmd`; wall time and peak RSS from wait4 (the same figure as /usr/bin/time -v)."""
    with open(stdout_path, "w") as so, open(stderr_path, "w") as se:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=so, stderr=se, cwd=REPO)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": p.returncode,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "rss_mib": ru.ru_maxrss / 1024,  # Linux: KiB
    }


def http(url, method="GET"):
    import urllib.request

    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def replay(cli: Path, runs: int, work: Path) -> dict:
    results = {}
    # A busy cycle is most of a minute of paced preflight reads: 3 runs give its median.
    for scenario, n in (("steady", runs), ("busy", min(runs, BUSY_RUNS))):
        port = free_port()
        log(f"replay {scenario}: {GROUPS} groups x {PER_GROUP} on port {port}")
        server = subprocess.Popen(
            [PY, str(REPO / "bench" / "replay.py"), "--port", str(port), "--groups", str(GROUPS),
             "--per-group", str(PER_GROUP), "--scenario", scenario],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            ready = server.stdout.readline()
            if "listening" not in ready:
                raise SystemExit(f"bench: replay server did not start: {ready!r}")
            env = dict(os.environ)
            env.update({
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "SPOTSWAP_PRICE_FILE": str(PRICE_FILE),
                "RUST_LOG": "info",
            })
            env.pop("AWS_PROFILE", None)
            per_run = []
            for i in range(n):
                http(f"http://127.0.0.1:{port}/_reset", "POST")
                so, se = work / f"replay-{scenario}-{i}.json", work / f"replay-{scenario}-{i}.log"
                m = run_measured([str(cli), "plan", "--output", "json"], env, so, se)
                if m["exit"] != 0:
                    raise SystemExit(f"bench: spotswap plan failed ({scenario}), see {se}")
                report = json.load(open(so))
                m["calls"] = json.loads(http(f"http://127.0.0.1:{port}/_counts"))
                m["classes"] = op_classes(cli.with_name("spotswap-proxy"), m["calls"])
                m["timings"] = report.get("timings", {})
                m["launches"] = sum(1 for a in report["actions"] if a["action"] == "launch")
                m["launch_groups"] = len({a["group"] for a in report["actions"] if a["action"] == "launch"})
                m["groups"] = len(report["groups"])
                per_run.append(m)
                log(f"  run {i + 1}: {m['wall_s']:.2f} s wall, {m['rss_mib']:.1f} MiB, "
                    f"plan {m['timings'].get('plan_ms', 0):.0f} ms, {m['launches']} launches")
            results[scenario] = per_run
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return results


def op_classes(proxy_bin: Path, ops) -> dict:
    """{op: "read" | "mutating" | "launch"}: spotswap_core::ops's judgement, from the binary
    built with the CLI, so the bench keeps no copy of the rule."""
    out = subprocess.run([str(proxy_bin), "--classify", *ops], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def read_table(per_run: list[dict]) -> dict:
    """Calls per operation (identical across runs; the first run's), the lower bound, ratios."""
    calls = per_run[0]["calls"]
    n_instances = GROUPS * PER_GROUP
    price_pages = calls.get("ec2:DescribeSpotPriceHistory", 0)
    bound = math.ceil(GROUPS / 100) + math.ceil(n_instances / 1000) + price_pages
    # The per-group floor: AWS answers DescribeInstanceRefreshes and DescribeLifecycleHooks for
    # one named group per call (no list form), and a group about to launch must know both (an
    # attach during a refresh, or past a launching hook, is the harm). See docs/design.md,
    # "Reads per cycle".
    floor = bound + len(PER_GROUP_READS) * per_run[0].get("launch_groups", 0)
    classes = per_run[0]["classes"]
    reads = {k: v for k, v in calls.items() if classes.get(k) == "read"}
    warm = {k: v for k, v in reads.items() if k not in COLD_ONLY}
    return {
        "calls": calls,
        "bound": bound,
        "floor": floor,
        "launch_groups": per_run[0].get("launch_groups", 0),
        "ratio_floor": sum(warm.values()) / floor,
        "reads_cold": sum(reads.values()),
        "reads_warm": sum(warm.values()),
        "ratio_cold": sum(reads.values()) / bound,
        "ratio_warm": sum(warm.values()) / bound,
        "mutating": sum(v for k, v in calls.items() if k not in reads),
    }


# --------------------------------------------------------------------------------------------
# 3. swaps on moto, 4. footprint
# --------------------------------------------------------------------------------------------


def swaps_run(cli: Path, work: Path, name: str, extra: list[str]) -> dict:
    out = work / f"swaps-{name}.json"
    log(f"swaps ({name}): moto + throttle proxy, bench/swaps.py {' '.join(extra)}")
    subprocess.run(
        [PY, str(REPO / "bench" / "swaps.py"), "--cli", str(cli), "--moto-port", str(free_port()),
         "--proxy-port", str(free_port()), "--workdir", str(work / f"swaps-{name}"), "--json", str(out),
         *extra],
        cwd=REPO, check=True, stdout=sys.stderr,
    )
    return json.load(open(out))


def swaps(cli: Path, work: Path) -> dict:
    """Two runs on moto, each with EC2's buckets enforced by the proxy and mirrored by the
    client's SPOTSWAP_API_RATES:

    - throughput: 1,200 on-demand instances, all replaceable, one 5-minute cycle at EC2's own
      rates, uncompressed (K=1): how many swaps one cycle starts within the buckets (more than
      the 1,000 of the goal, so the fleet is not what caps the figure below it). Compressed ×2,
      moto itself was the bottleneck (one CreateFleet of 10 took it ~9.5 s, busy 161 of 162 s)
      and the run measured moto, not the buckets: 941 started, 95 of 600 allowed launch calls;
    - economy: a small fleet of groups shaped as the goal's (20 instances each) run cycle after
      cycle until nothing is left to do: mutating calls per completed swap, throttles met and
      absorbed, and the fleet left clean. A group's MaxSize bookkeeping is shared by its swaps,
      so a group of 5 would weigh it four times as much as the goal's groups do.
    """
    return {
        "throughput": swaps_run(cli, work, "throughput",
                                ["--groups", "60", "--per-group", "20", "--scale", "1", "--max-cycles", "1"]),
        "economy": swaps_run(cli, work, "economy",
                             ["--groups", "5", "--per-group", "20", "--scale", "4", "--max-cycles", "8"]),
    }

def footprint(bin_dir: Path, runs: int, work: Path) -> list[dict]:
    out = work / "footprint.json"
    log("footprint: cold start, RSS, sizes (bench/footprint.py)")
    subprocess.run(
        [PY, str(REPO / "bench" / "footprint.py"), "--bin-dir", str(bin_dir), "--runs", str(runs),
         "--json", str(out), "rebalancer", "interruption-handler", "orphan-reaper"],
        cwd=REPO, check=True, stdout=sys.stderr,
    )
    return json.load(open(out))


# --------------------------------------------------------------------------------------------
# results.md
# --------------------------------------------------------------------------------------------


def fmt(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}"


def write_results(path: Path, m: dict, crit: dict, rep: dict, sw: dict | None, fp: list[dict], runs: int,
                  gr: list[dict]):
    L = []
    w = L.append
    w("# spotswap benchmarks")
    w("")
    w(f"Written by `make bench` on {m['date']} at commit `{m['commit']}`. Machine: {m['cpu']}, "
      f"{m['cores']} cores, {m['memory']}, {m['os']}; {m['rustc']}; load average "
      f"{m['load_before']:.2f} at start. Release binaries (fat LTO, `opt-level = \"z\"`), host "
      f"architecture. Timings are medians of {runs} runs (a busy replay cycle: "
      f"{min(runs, BUSY_RUNS)}) unless a row says otherwise.")
    w("")
    steady, busy = read_table(rep["steady"]), read_table(rep["busy"])
    med = lambda sc, key: median([r[key] for r in rep[sc]])  # noqa: E731
    medt = lambda sc, key: median([r["timings"].get(key) for r in rep[sc]])  # noqa: E731

    w("## Against the goals")
    w("")
    w("| figure | measured | goal | |")
    w("|---|---|---|---|")
    ok = lambda b: "met" if b else "**not met**"  # noqa: E731
    w(f"| read calls per idle cycle ÷ lower bound (warm container) | {steady['ratio_warm']:.2f} "
      f"({steady['reads_warm']} / {steady['bound']}) | {GOALS['ratio']} | {ok(steady['ratio_warm'] <= 1.0)} |")
    w(f"| read calls per busy cycle ÷ lower bound (1,000 swaps to start) | {busy['ratio_warm']:.2f} "
      f"({busy['reads_warm']} / {busy['bound']}) | {GOALS['ratio_busy']} | {ok(busy['ratio_warm'] <= 3.0)} "
      "(unreachable: see below) |")
    w(f"| read calls per busy cycle ÷ per-group floor ({busy['launch_groups']:,} groups about to launch) | "
      f"{busy['ratio_floor']:.2f} ({busy['reads_warm']} / {busy['floor']}) | {GOALS['ratio_busy']} | "
      f"{ok(busy['ratio_floor'] <= 3.0)} |")
    if sw:
        tp, sw = sw["throughput"], sw["economy"]
        mps = sw.get("mutating_calls_per_completed_swap")
        w(f"| mutating calls per completed swap | {fmt(mps, 2)} | {GOALS['mutating']} | "
          f"{ok(mps is not None and mps <= 3)} |")
        s5 = tp.get("swaps_started_cycle1")
        w(f"| swaps started per simulated 5-minute cycle (EC2 rates, client buckets) | {s5} | "
          f"{GOALS['swaps']} | {ok(s5 is not None and s5 >= 1000)} |")
        un = (sw.get("unhandled_throttles_total") or 0) + (tp.get("unhandled_throttles_total") or 0)
        w(f"| unhandled throttles (both moto runs) | {un} | 0 | {ok(un == 0)} |")
    rss = med("steady", "rss_mib"), med("busy", "rss_mib")
    w(f"| peak RSS of `spotswap plan`, 20,000 instances (idle / busy) | {fmt(rss[0])} / {fmt(rss[1])} MiB | "
      f"{GOALS['rss']} | {ok(max(rss) <= 48)} |")
    if gr:
        big = gr[-1]
        w(f"| peak RSS of `spotswap plan`, {big['instances']:,} instances (idle) | {fmt(big['rss_mib'])} MiB | "
          f"{GOALS['rss_100k']} | {ok(big['rss_mib'] <= 128)} |")
    for f in fp:
        w(f"| cold-start init, `{f['name']}` | {fmt(f['init_ms_median'])} ms | {GOALS['init']} | "
          f"{ok(f['init_ms_median'] <= 50)} |")
    for f in fp:
        w(f"| zip, `{f['name']}` | {fmt(f['zip_mib'], 2)} MiB | {GOALS['zip']} | {ok(f['zip_mib'] * 1.048576 <= 8)} |")
    w("")

    w("## Read calls per cycle at 1,000 groups / 20,000 instances")
    w("")
    w("Lower bound: `ceil(G/100)` DescribeAutoScalingGroups + `ceil(N/1000)` DescribeInstances + "
      "the spot price pages. Cold-only reads (instance-type specs, the Price List) are cached for "
      "hours in a warm Lambda container; the CLI is always cold.")
    w("")
    ops = sorted(set(steady["calls"]) | set(busy["calls"]))
    w("| operation | idle cycle | busy cycle |")
    w("|---|---|---|")
    for op in ops:
        tag = " (cold only)" if op in COLD_ONLY else ""
        w(f"| `{op}`{tag} | {steady['calls'].get(op, 0)} | {busy['calls'].get(op, 0)} |")
    w(f"| **reads, warm** | {steady['reads_warm']} | {busy['reads_warm']} |")
    w(f"| **lower bound** | {steady['bound']} | {busy['bound']} |")
    w(f"| **ratio, warm (cold)** | {steady['ratio_warm']:.2f} ({steady['ratio_cold']:.2f}) | "
      f"{busy['ratio_warm']:.2f} ({busy['ratio_cold']:.2f}) |")
    w(f"| **per-group floor** (lower bound + {len(PER_GROUP_READS)} per group about to launch) | "
      f"{steady['floor']} | {busy['floor']} |")
    w(f"| **ratio to the floor, warm** | {steady['ratio_floor']:.2f} | {busy['ratio_floor']:.2f} |")
    w("")
    w("Why the busy goal against the lower bound is unreachable: "
      + ", ".join(f"`{op.split(':')[1]}`" for op in PER_GROUP_READS)
      + " take exactly one group name and have no list form, and a group about to launch must "
      "know both (an attach during an instance refresh fights it; an attach past a launching hook "
      "skips the owner's bootstrap). Each is read once per group and cycle, only for groups with a "
      "launch planned (hooks not at all for a group tagged `spotswap:launch-hooks=bypass`), and not "
      "cached across cycles: a hook added a minute ago must block the next attach. With 1,000 groups "
      "each about to start one swap, that is 2,000 reads no client can avoid; the per-group floor "
      "counts them, and the goal is held against it.")
    w("")
    w("## Cycle time at 1,000 groups / 20,000 instances (`spotswap plan`, replay server)")
    w("")
    w("| | idle | busy |")
    w("|---|---|---|")
    w(f"| wall, whole process | {fmt(med('steady', 'wall_s'), 2)} s | {fmt(med('busy', 'wall_s'), 2)} s |")
    w(f"| CPU, whole process (user + system) | {fmt(med('steady', 'cpu_s'), 2)} s | {fmt(med('busy', 'cpu_s'), 2)} s |")
    for key, label in (("read_ms", "read phase"), ("plan_ms", "planning (pure CPU)"),
                       ("execute_ms", "act: preflight reads of acting groups + actions (dry run)"),
                       ("total_ms", "cycle total")):
        w(f"| {label} | {fmt(medt('steady', key))} ms | {fmt(medt('busy', key))} ms |")
    for sc in ("steady", "busy"):
        r, p = medt(sc, "read_ms"), medt(sc, "plan_ms")
        rep[sc + "_ratio"] = (p / r) if r else None
    w(f"| planning ÷ read phase | {fmt(rep['steady_ratio'], 3)} | {fmt(rep['busy_ratio'], 3)} |")
    w(f"| peak RSS | {fmt(rss[0])} MiB | {fmt(rss[1])} MiB |")
    w("")
    w("## Planner (criterion, pure code, medians)")
    w("")
    w("| benchmark | median |")
    w("|---|---|")
    for name in sorted(crit):
        w(f"| `{name}` | {crit[name]:.2f} ms |")
    w("")
    if sw:
        w("## Swaps on moto, EC2 token buckets enforced by the proxy")
        w("")
        w("Both runs: the proxy's buckets (`spotswap-proxy`, tests/harness/proxy/rates.rs) and the client's "
          "`SPOTSWAP_API_RATES` "
          "are EC2's rates × K, and each cycle runs with `--time-limit 300/K`: a 5-minute Lambda "
          "schedule compressed K times. One run each (they take minutes).")
        w("")
        w("| figure | throughput run | economy run |")
        w("|---|---|---|")
        w(f"| fleet | {tp['params']['groups']} × {tp['params']['per_group']} on-demand | "
          f"{sw['params']['groups']} × {sw['params']['per_group']} on-demand |")
        w(f"| compression K | {tp['params']['scale']} | {sw['params']['scale']} |")
        for key in ("swaps_started_cycle1", "eligible_swaps", "swaps_completed", "cycles_run", "converged",
                    "mutating_calls_per_completed_swap", "throttles_total", "unhandled_throttles_total",
                    "total_wall_s"):
            w(f"| {key.replace('_', ' ')} | {tp.get(key, '–')} | {sw.get(key, '–')} |")
        for name, run in (("throughput", tp), ("economy", sw)):
            lb = run.get("launch_bucket_cycle1") or {}
            if lb:
                w(f"| cycle 1 launch calls / bucket allowance in its execute time ({name}) | "
                  f"{lb.get('launch_calls')} / {lb.get('allowed_in_execute_time')} |  |")
        w("")
        w("Mutating calls per completed swap, economy run, by operation:")
        w("")
        w("| operation | calls per completed swap |")
        w("|---|---|")
        for op, v in sorted((sw.get("mutating_calls_per_completed_swap_by_op") or {}).items()):
            w(f"| `{op}` | {v} |")
        for op, v in sorted((sw.get("throttles_by_op") or {}).items()):
            w(f"| throttled by the proxy: `{op}` | {v} |")
        fin = sw.get("final") or {}
        if fin:
            w("")
            w(f"After the economy run: every group at desired: {fin.get('all_at_desired')}; our instances "
              f"outside a group: {len(fin.get('ours_outside_groups') or [])}; groups with MaxSize still "
              f"raised: {len(fin.get('groups_with_max_raised') or [])}.")
        w("")
    if gr:
        w("## Cost as the region grows (`spotswap plan`, replay server, steady scenario)")
        w("")
        w("Groups of 20 instances; medians of the runs at each size (bench/growth.py). The busy scenario "
          "is measured at 20,000 only (above).")
        w("")
        for line in growth_table(gr):
            w(line)
        w("")
    w("## Lambda binaries")
    w("")
    w("| function | init median (min–max) | init RSS | release binary | zip |")
    w("|---|---|---|---|---|")
    for f in fp:
        w(f"| `{f['name']}` | {fmt(f['init_ms_median'])} ms ({fmt(f['init_ms_min'])}–{fmt(f['init_ms_max'])}) | "
          f"{fmt(f['init_rss_mib'])} MiB | {fmt(f['binary_mib'], 2)} MiB | {fmt(f['zip_mib'], 2)} MiB |")
    w("")
    w("Init is measured from process start to the first `GET /runtime/invocation/next` on a local "
      "runtime API, on this host's architecture; the deployed arm64 zips come from `make build`.")
    w("")
    path.write_text("\n".join(L))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="bench/results.md")
    ap.add_argument("--skip", action="append", default=[], choices=["criterion", "replay", "swaps", "footprint", "growth"])
    args = ap.parse_args()
    bin_dir = (REPO / args.bin_dir).resolve()
    cli = bin_dir / "spotswap"
    if not cli.exists():
        raise SystemExit(f"bench: {cli} is missing; build with cargo build --release --workspace --bins")
    work = Path(tempfile.mkdtemp(prefix="spotswap-bench-"))
    t0 = time.monotonic()
    m = machine()
    crit = {} if "criterion" in args.skip else criterion()
    rep = replay(cli, args.runs, work) if "replay" not in args.skip else None
    sw = swaps(cli, work) if "swaps" not in args.skip else None
    fp = footprint(bin_dir, max(args.runs, 10), work) if "footprint" not in args.skip else []
    gr = growth(cli, min(args.runs, 3), work) if "growth" not in args.skip else []
    json.dump({"machine": m, "criterion": crit, "replay": rep, "swaps": sw, "footprint": fp, "growth": gr},
              open(work / "all.json", "w"), indent=2)
    if rep:
        write_results(REPO / args.out, m, crit, rep, sw, fp, args.runs, gr)
        print((REPO / args.out).read_text())
    log(f"done in {time.monotonic() - t0:.0f} s; raw figures in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
