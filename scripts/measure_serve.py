#!/usr/bin/env python3
"""End-to-end throughput of `artifact serve`: starts a release build on a
fresh data dir with the demo company, schedules N copies of the demo
newsletter request (1,000 recipients each) over HTTP, waits until every one
is done, and reports renders per second and the server's peak RSS.

    cargo build --release -p artifact-cli
    python3 scripts/measure_serve.py --requests 40 --sink discard
    python3 scripts/measure_serve.py --requests 40 --sink outbox

Renders per second = recipients / (last finished_at - first accepted_at),
both taken from the server's own status timestamps.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_time(text):
    # RFC 3339 with up to nine fractional digits; Python keeps six.
    text = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def call(method, url, body=None):
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as response:
        return response.status, json.loads(response.read() or b"null")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--sink", choices=["discard", "outbox", "store", "ndjson"], default="discard")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/artifact"))
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="artifact-measure-")
    sink = {
        "discard": "discard",
        "store": "store",
        "outbox": f"outbox:{data}/outbox",
        "ndjson": f"ndjson:{data}/artifacts.ndjson",
    }[args.sink]
    command = [
        args.binary, "serve", "--demo",
        "--config", os.path.join(ROOT, "examples/artifact.toml"),
        "--data-dir", data, "--listen", f"127.0.0.1:{args.port}", "--sink", sink,
    ]
    if args.workers:
        command += ["--workers", str(args.workers)]
    env = dict(os.environ, RUST_LOG="warn")
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for line in server.stderr:
            if "listening on" in line:
                break
        template = json.load(open(os.path.join(data, "demo/newsletter-request.json")))
        bodies = []
        for n in range(args.requests):
            template["request_id"] = f"measure-{n}"
            bodies.append(json.dumps(template).encode())
        ids = []
        for body in bodies:
            code, accepted = call("POST", f"{base}/v1/render-requests", body)
            assert code == 202, accepted
            ids.append(accepted["request_id"])
        statuses = {}
        while len(statuses) < len(ids):
            for request_id in ids:
                if request_id in statuses:
                    continue
                _, status = call("GET", f"{base}/v1/render-requests/{request_id}?company_id=demo")
                if status["state"] in ("done", "failed"):
                    statuses[request_id] = status
            time.sleep(0.05)
        rss = peak_rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)

    failed = [s for s in statuses.values() if s["state"] != "done"]
    recipients = sum(s["counts"]["rendered"] + s["counts"]["skipped"] + s["counts"]["failed"]
                     for s in statuses.values())
    first = min(parse_time(s["accepted_at"]) for s in statuses.values())
    last = max(parse_time(s["finished_at"]) for s in statuses.values())
    seconds = (last - first).total_seconds()
    print(json.dumps({
        "sink": args.sink,
        "requests": len(statuses),
        "failed_requests": len(failed),
        "recipients": recipients,
        "seconds": round(seconds, 3),
        "renders_per_second": round(recipients / seconds),
        "renders_per_minute": round(recipients / seconds * 60),
        "peak_rss_mib": round(rss / 1024, 1) if rss else None,
    }, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
