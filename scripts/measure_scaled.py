#!/usr/bin/env python3
"""Throughput of the scaled-out mode against the embedded default, and the
broker and database load per 1,000 renders.

Starts a release build with the demo company, schedules N copies of the
demo newsletter request (1,000 recipients each, tracked links) over HTTP,
waits until every one is done, and reports renders per second from the
server's own timestamps (first accepted_at to last finished_at).

    cargo build --release -p artifact-cli
    python3 scripts/measure_scaled.py --mode embedded --requests 40
    python3 scripts/measure_scaled.py --mode scaled --worker-processes 1 --requests 40
    python3 scripts/measure_scaled.py --mode scaled --worker-processes 3 --requests 40
    python3 scripts/measure_scaled.py --mode scaled --requests 1 --tile 8

`--tile K` repeats the request's recipients K times (under new recipient
ids), for bulk requests: one request of 8,000 recipients is 26 MB of JSON.
`--then-small` submits one more request of the demo's 1,000 recipients
right after the others and reports how long it took from accepted to
finished: with requests taking turns it does not wait for the bulk.

The scaled mode runs `artifact serve --workers 0` (the API) and K
`artifact worker` processes against a nats-server of its own (a fresh
store, monitoring on, so /varz counts the broker's messages and bytes) and
the PostgreSQL at --postgres (a fresh schema; pg_stat_database and the WAL
position count the database's transactions, rows and bytes).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from measure_serve import call, parse_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def psql(url, query):
    out = subprocess.run(
        ["psql", url, "-Atc", query], check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


def pg_counters(url):
    # Rows include TOAST chunks: an artifact is stored as several.
    row = psql(
        url,
        "SELECT xact_commit, tup_inserted, tup_updated,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
        " FROM pg_stat_database WHERE datname = current_database()",
    ).split("|")
    names = ["commits", "rows_inserted", "rows_updated", "wal_bytes"]
    return dict(zip(names, map(int, row)))


def nats_counters(monitor):
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz") as response:
        varz = json.loads(response.read())
    return {k: varz[k] for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes")}


def spawn(binary, args, env, log):
    return subprocess.Popen(
        [binary] + args, env=env, stdout=subprocess.DEVNULL, stderr=log
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["embedded", "scaled"], required=True)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--workers", type=int, help="workers per process")
    parser.add_argument("--sink", default="store")
    parser.add_argument("--tile", type=int, default=1, help="recipients × K per request")
    parser.add_argument("--then-small", action="store_true")
    parser.add_argument(
        "--binary", default=os.path.join(ROOT, "target", "release", "artifact")
    )
    parser.add_argument(
        "--postgres", default="postgres://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="measure-scaled-")
    log = open(os.path.join(work, "log"), "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACT_")}
    env["RUST_LOG"] = "warn"
    processes = []
    api_port = free_port()
    config = os.path.join(ROOT, "examples", "artifact.toml")
    serve = ["serve", "--config", config, "--data-dir", os.path.join(work, "data"),
             "--listen", f"127.0.0.1:{api_port}", "--sink", args.sink, "--demo"]
    try:
        if args.mode == "scaled":
            nats_port, monitor = free_port(), free_port()
            processes.append(subprocess.Popen(
                ["nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-m",
                 str(monitor), "-js", "-sd", os.path.join(work, "nats"),
                 "-l", os.path.join(work, "nats.log")]))
            wait_port(nats_port)
            schema = f"measure_{os.getpid()}"
            psql(args.postgres, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            env.update({
                "ARTIFACT_QUEUE": f"nats://127.0.0.1:{nats_port}",
                "ARTIFACT_STORE": args.postgres,
                "ARTIFACT_POSTGRES_SCHEMA": schema,
            })
            processes.append(spawn(args.binary, serve + ["--workers", "0"], env, log))
            wait_port(api_port, 120)
            for _ in range(args.worker_processes):
                worker = ["worker", "--config", config, "--sink", args.sink]
                if args.workers:
                    worker += ["--workers", str(args.workers)]
                processes.append(spawn(args.binary, worker, env, log))
        else:
            if args.workers:
                serve += ["--workers", str(args.workers)]
            processes.append(spawn(args.binary, serve, env, log))
            wait_port(api_port, 120)
        base = f"http://127.0.0.1:{api_port}"
        request_file = os.path.join(work, "data", "demo", "newsletter-request.json")
        deadline = time.time() + 120
        while not os.path.exists(request_file):  # written once the demo is seeded
            if time.time() > deadline:
                sys.exit("the demo was not seeded")
            time.sleep(0.2)
        time.sleep(0.5)
        body = json.load(open(request_file))
        small = dict(body, request_id="measure-small")
        body["render_recipients"] = [
            dict(recipient, recipient_id=f"{recipient['recipient_id']}-{k}")
            for k in range(args.tile)
            for recipient in body["render_recipients"]
        ]
        time.sleep(2)  # the workers connect
        if args.mode == "scaled":
            # PostgreSQL's backends report their counters when idle, up to
            # 10 s late: let the demo's seeding show before the baseline.
            time.sleep(12)
        before_pg = pg_counters(args.postgres) if args.mode == "scaled" else None
        before_nats = nats_counters(monitor) if args.mode == "scaled" else None
        ids = []
        for n in range(args.requests):
            body["request_id"] = f"measure-{n}"
            status, answer = call("POST", f"{base}/v1/render-requests",
                                  json.dumps(body).encode())
            assert status == 202, answer
            ids.append(body["request_id"])
        if args.then_small:
            status, answer = call("POST", f"{base}/v1/render-requests",
                                  json.dumps(small).encode())
            assert status == 202, answer
            ids.append(small["request_id"])
        # Requests finish about in order: poll the oldest unfinished one
        # only, so the polling adds little to the database's load.
        statuses = {}
        deadline = time.time() + 1800
        for request_id in ids:
            while True:
                _, status = call("GET", f"{base}/v1/render-requests/{request_id}?company_id=demo")
                if status.get("finished_at"):
                    statuses[request_id] = status
                    break
                if time.time() > deadline:
                    sys.exit("requests did not finish")
                time.sleep(0.2)
        first = min(parse_time(s["accepted_at"]) for s in statuses.values())
        last = max(parse_time(s["finished_at"]) for s in statuses.values())
        renders = sum(s["counts"]["rendered"] for s in statuses.values())
        seconds = (last - first).total_seconds()
        report = {
            "mode": args.mode,
            "worker_processes": args.worker_processes if args.mode == "scaled" else None,
            "sink": args.sink,
            "requests": args.requests,
            "recipients_per_request": len(body["render_recipients"]),
            "renders": renders,
            "seconds": round(seconds, 2),
            "renders_per_second": round(renders / seconds),
        }
        if args.then_small:
            def took(status):
                return round((parse_time(status["finished_at"])
                              - parse_time(status["accepted_at"])).total_seconds(), 2)
            report["small_request_seconds"] = took(statuses["measure-small"])
            report["bulk_request_seconds"] = max(
                took(s) for k, s in statuses.items() if k != "measure-small")
        if args.mode == "scaled":
            time.sleep(12)  # the workers' last counters
            per = 1000 / renders
            after_pg = pg_counters(args.postgres)
            after_nats = nats_counters(monitor)
            report["postgres_per_1000_renders"] = {
                k: round((after_pg[k] - before_pg[k]) * per, 1) for k in after_pg}
            report["nats_per_1000_renders"] = {
                k: round((after_nats[k] - before_nats[k]) * per, 1) for k in after_nats}
            psql(args.postgres, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        print(json.dumps(report, indent=2))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
