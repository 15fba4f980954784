#!/usr/bin/env python3
"""Detection latency: from a new row in Piwigo's images table to the daemon
having claimed and hashed that photo (the start of its upload).

    bench/latency.py [--photos 20] [--poll-interval 2s]

Needs target/release/piwigo-s3upload (cargo build --release), the rclone
binary from bench/run.sh's venv (or RCLONE), and MariaDB on 127.0.0.1:3306
(root, empty password; BENCH_DB_PASSWORD for another). Uses the database
s3u_latency, dropped at the end. Everything stays on 127.0.0.1.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "tests" / "common" / "piwigo_schema.sql"
DB = "s3u_latency"
KEY_ID, SECRET = "LATENCYBENCHKEY01", "LatencyBenchSecret01"


def mysql(sql, db=None):
    cmd = ["mariadb", "-uroot", "-h127.0.0.1", "-P3306"]
    if os.environ.get("BENCH_DB_PASSWORD"):
        cmd.append("-p" + os.environ["BENCH_DB_PASSWORD"])
    if db:
        cmd.append(db)
    subprocess.run(cmd, input=sql.encode(), check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--poll-interval", default="2s")
    args = ap.parse_args()

    binary = REPO / "target" / "release" / "piwigo-s3upload"
    rclone = os.environ.get("RCLONE") or str(REPO / ".tools" / "bench-venv" / "bin" / "rclone")
    if not binary.exists():
        sys.exit("build first: cargo build --release")
    if not Path(rclone).exists():
        rclone = str(REPO / ".tools" / "venv" / "bin" / "rclone")
    if not Path(rclone).exists():
        sys.exit("no rclone: run bench/run.sh --small once, or set RCLONE")

    work = Path(tempfile.mkdtemp(prefix="piwigo-s3upload-latency-"))
    root, data = work / "piwigo", work / "s3"
    (root / "upload").mkdir(parents=True)
    (data / "gallery").mkdir(parents=True)
    port = free_port()
    server = subprocess.Popen(
        [rclone, "serve", "s3", "--config", "/dev/null", "--addr", f"127.0.0.1:{port}",
         "--auth-key", f"{KEY_ID},{SECRET}", "--force-path-style=true", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = None
    try:
        mysql(f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};")
        mysql(SCHEMA.read_text().replace("{prefix}", "piwigo_"), DB)
        config = work / "config.toml"
        password = os.environ.get("BENCH_DB_PASSWORD", "")
        auth = f"root:{password}" if password else "root"
        config.write_text(
            f'[piwigo]\ndatabase_url = "mysql://{auth}@127.0.0.1:3306/{DB}"\nroot = "{root}"\n'
            f'[s3]\nbucket = "gallery"\nendpoint = "http://127.0.0.1:{port}"\n'
            f'force_path_style = true\naccess_key_id = "{KEY_ID}"\n'
            f'secret_access_key = "{SECRET}"\n'
            f'[monitor]\npoll_interval = "{args.poll_interval}"\n')
        config.chmod(0o600)
        log = work / "daemon.log"
        env = dict(os.environ, PIWIGO_S3UPLOAD_LOG="piwigo_s3upload=debug")
        daemon = subprocess.Popen(
            [str(binary), "--config", str(config), "--log-format", "json", "run"],
            stderr=log.open("w"), env=env)
        time.sleep(3)  # first poll sets the watermark
        inserted = {}
        for n in range(1, args.photos + 1):
            time.sleep(random.uniform(0.3, 2.7))
            name = f"20240101000000-{n:08x}.jpg"
            (root / "upload" / name).write_bytes(os.urandom(200_000))
            inserted[f"20240101000000-p{n}.jpg"] = time.time()
            mysql("INSERT INTO piwigo_images (file, path, date_available) "
                  f"VALUES ('p{n}.jpg', './upload/{name}', NOW())", DB)
        time.sleep(5)
        daemon.terminate()
        daemon.wait(timeout=60)
        latencies = []
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("message") == "hashed" and entry.get("s3.key") in inserted:
                at = datetime.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
                latencies.append(at.timestamp() - inserted[entry["s3.key"]])
        if len(latencies) != args.photos:
            sys.exit(f"only {len(latencies)} of {args.photos} photos were picked up; see {log}")
        latencies.sort()
        ms = [round(x * 1000) for x in latencies]
        print(f"detection latency over {len(ms)} photos (poll_interval {args.poll_interval}): "
              f"min {ms[0]} ms, median {ms[len(ms) // 2]} ms, max {ms[-1]} ms")
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
        server.kill()
        mysql(f"DROP DATABASE IF EXISTS {DB};")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
