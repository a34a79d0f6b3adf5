"""The cost curve of a cycle as the region grows (issue 22): `spotswap plan --output json`
against bench/replay.py (steady scenario) at 2,000, 20,000 and 100,000 instances (100, 1,000
and 5,000 groups of 20), RUNS runs each (default 3): median peak RSS (wait4's ru_maxrss, the
figure `/usr/bin/time -v` prints), the CLI's own read and planning times, and wall time.

    cargo build --release --workspace --bin spotswap
    .venv/bin/python bench/growth.py target/release/spotswap

Not yet part of `make bench` (issue 22 is to fold it in, with the busy scenario)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = Path(sys.argv[1])
PY = str(REPO / ".venv" / "bin" / "python")
RUNS = int(os.environ.get("RUNS", "3"))
WORK = Path(os.environ.get("TMPDIR", "/tmp"))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def med(xs):
    xs = sorted(xs); return xs[len(xs) // 2]

rows = []
for groups, per in [(100, 20), (1000, 20), (5000, 20)]:
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
        runs = []
        for i in range(RUNS):
            with open(str(WORK / f"growth-{groups}-{i}.json"), "w") as so, open(str(WORK / f"growth-{groups}-{i}.log"), "w") as se:
                t0 = time.perf_counter()
                p = subprocess.Popen([str(CLI), "plan", "--output", "json"], env=env, stdout=so, stderr=se)
                _, status, ru = os.wait4(p.pid, 0)
                wall = time.perf_counter() - t0
            assert os.waitstatus_to_exitcode(status) == 0, f"plan failed at {groups}"
            r = json.load(open(str(WORK / f"growth-{groups}-{i}.json")))
            t = r["timings"]
            runs.append((ru.ru_maxrss / 1024, t["read_ms"], t["plan_ms"], wall, len(r["groups"])))
            print(f"{groups*per} instances run {i+1}: {runs[-1]}", flush=True)
        rows.append((groups * per, groups, med([x[0] for x in runs]), med([x[1] for x in runs]),
                     med([x[2] for x in runs]), med([x[3] for x in runs]), runs[0][4]))
    finally:
        srv.send_signal(signal.SIGTERM); srv.wait(timeout=30)
print("| instances | groups | peak RSS MiB | read ms | plan ms | wall s | groups planned |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]:,} | {r[1]:,} | {r[2]:.1f} | {r[3]:.0f} | {r[4]:.0f} | {r[5]:.2f} | {r[6]} |")
