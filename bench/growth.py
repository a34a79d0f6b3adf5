"""The cost curve of a cycle as the region grows (issue 22): `spotswap plan --output json`
against bench/replay.py (steady scenario, every group at its target) at 2,000, 20,000 and
100,000 instances (100, 1,000 and 5,000 groups of 20), `runs` runs each: median peak RSS
(wait4's ru_maxrss, the figure `/usr/bin/time -v` prints), the CLI's own read and planning
times, and wall time. `make bench` runs it (bench/run.py); alone:

    cargo build --release --workspace --bin spotswap
    .venv/bin/python bench/growth.py target/release/spotswap [RUNS]

The busy scenario is not run at 100,000: its dry-run act phase makes a preflight read per
launching group through the replay server (about 14 minutes at 5,000 groups), which measures
the replay server, not the cycle's growth; its reads are counted at 20,000 by run.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
SIZES = [(100, 20), (1000, 20), (5000, 20)]


def free_port() -> int:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def med(xs):
    xs = sorted(xs); return xs[len(xs) // 2]


def growth(cli: Path, runs: int, work: Path) -> list[dict]:
    """One row per size: instances, groups, rss_mib, read_ms, plan_ms, wall_s, groups_planned."""
    rows = []
    for groups, per in SIZES:
        port = free_port()
        srv = subprocess.Popen([PY, str(REPO / "bench" / "replay.py"), "--port", str(port), "--groups", str(groups),
                                "--per-group", str(per), "--scenario", "steady"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert "listening" in srv.stdout.readline()
            env = dict(os.environ)
            env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "SPOTSWAP_PRICE_FILE": str(REPO / "prices" / "sample-on-demand.json"), "RUST_LOG": "warn"})
            per_run = []
            for i in range(runs):
                out, err = work / f"growth-{groups}-{i}.json", work / f"growth-{groups}-{i}.log"
                with open(out, "w") as so, open(err, "w") as se:
                    t0 = time.perf_counter()
                    p = subprocess.Popen([str(cli), "plan", "--output", "json"], env=env, stdout=so, stderr=se)
                    _, status, ru = os.wait4(p.pid, 0)
                    wall = time.perf_counter() - t0
                assert os.waitstatus_to_exitcode(status) == 0, f"plan failed at {groups} groups: see {err}"
                r = json.loads(out.read_text())
                t = r["timings"]
                per_run.append({"rss_mib": ru.ru_maxrss / 1024, "read_ms": t["read_ms"], "plan_ms": t["plan_ms"],
                                "wall_s": wall, "groups_planned": len(r["groups"])})
                print(f"growth: {groups * per} instances, run {i + 1}: {per_run[-1]}", file=sys.stderr, flush=True)
            row = {"instances": groups * per, "groups": groups}
            for k in ["rss_mib", "read_ms", "plan_ms", "wall_s"]:
                row[k] = med([x[k] for x in per_run])
            row["groups_planned"] = per_run[0]["groups_planned"]
            rows.append(row)
        finally:
            srv.send_signal(signal.SIGTERM); srv.wait(timeout=30)
    return rows


def table(rows: list[dict]) -> list[str]:
    """The markdown rows, then the slope of RSS per 1,000 instances between each two sizes."""
    out = ["| instances | groups | peak RSS | read phase | planning | wall | groups planned |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['instances']:,} | {r['groups']:,} | {r['rss_mib']:.1f} MiB | {r['read_ms']:,.0f} ms | "
                   f"{r['plan_ms']:,.0f} ms | {r['wall_s']:.2f} s | {r['groups_planned']:,} |")
    out.append("")
    for a, b in zip(rows, rows[1:]):
        k = (b["instances"] - a["instances"]) / 1000
        out.append(f"- {a['instances']:,} → {b['instances']:,}: {(b['rss_mib'] - a['rss_mib']) / k:.2f} MiB, "
                   f"{(b['read_ms'] - a['read_ms']) / k:.0f} ms of reads and "
                   f"{(b['plan_ms'] - a['plan_ms']) / k:.1f} ms of planning per 1,000 instances more.")
    return out


if __name__ == "__main__":
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    rows = growth(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3, work)
    print("\n".join(table(rows)))
