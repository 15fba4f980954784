"""The piwigo-s3upload binary, configured for one Piwigo and one S3 server."""

import os
import subprocess
import time
from pathlib import Path

import requests

from .procs import REPO, free_port, stop, tail, wait_for_port
from .s3 import ACCESS_KEY, BUCKET, SECRET_KEY


def binary():
    """$PIWIGO_S3UPLOAD_BIN, or the debug build (`cargo build` first)."""
    path = Path(os.environ.get("PIWIGO_S3UPLOAD_BIN") or REPO / "target" / "debug" / "piwigo-s3upload")
    if not path.exists():
        raise FileNotFoundError(f"no daemon binary at {path}: run `cargo build` "
                                "or set PIWIGO_S3UPLOAD_BIN")
    return str(path)


def config_text(piwigo, s3, sections=None):
    """A config for `piwigo` and `s3`. `sections` maps a section name to
    `key = value` lines added to it (new sections are added); a line for a
    key the base already sets replaces the base's line."""
    base = {
        "piwigo": [f'database_url = "{piwigo.database_url}"',
                   f'table_prefix = "{piwigo.prefix}"',
                   f'root = "{piwigo.root}"'],
        "s3": [f'bucket = "{BUCKET}"', 'region = "us-east-1"',
               f'endpoint = "{s3.endpoint}"', "force_path_style = true",
               f'access_key_id = "{ACCESS_KEY}"', f'secret_access_key = "{SECRET_KEY}"',
               'prefix = "photos/"', 'key_format = "file"'],
        "monitor": ['poll_interval = "500ms"'],
        "upload": ["workers = 2", 'retry_backoff_min = "1s"', 'retry_backoff_max = "2s"',
                   'claim_lease = "10s"'],
    }
    for name, lines in (sections or {}).items():
        current = base.setdefault(name, [])
        for line in lines:
            key = line.split("=", 1)[0].strip()
            current[:] = [c for c in current if c.split("=", 1)[0].strip() != key]
            current.append(line)
    return "".join(f"[{name}]\n" + "\n".join(lines) + "\n\n" for name, lines in base.items())


class Daemon:
    def __init__(self, workdir, piwigo, s3, sections=None, http=False):
        self.workdir = Path(workdir)
        self.piwigo = piwigo
        self.s3 = s3
        self.sections = {k: list(v) for k, v in (sections or {}).items()}
        self.http_port = None
        if http:
            self.http_port = free_port()
            self.sections.setdefault("http", []).append(f'listen = "127.0.0.1:{self.http_port}"')
        self.config = self.workdir / "piwigo-s3upload.toml"
        self.log = self.workdir / "daemon.log"
        self.proc = None
        self.write_config()

    def write_config(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_text(self.piwigo, self.s3, self.sections))
        self.config.chmod(0o600)

    def command(self, *args, check=True, timeout=120):
        """Runs one subcommand (`enqueue`, `status`, ...) to completion."""
        out = subprocess.run([binary(), "--config", str(self.config), *args],
                             capture_output=True, text=True, timeout=timeout,
                             env=dict(os.environ, NO_COLOR="1"))
        if check and out.returncode != 0:
            raise RuntimeError(f"piwigo-s3upload {' '.join(args)} exited {out.returncode}:\n"
                               f"{out.stdout}\n{out.stderr}")
        return out

    def run_until_idle(self, timeout=120):
        return self.command("run", "--until-idle", timeout=timeout)

    def start(self):
        """Starts `run` in the background; waits for /healthz when [http] is on."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary(), "--config", str(self.config), "run"],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env=dict(os.environ, NO_COLOR="1"))
        if self.http_port:
            wait_for_port(self.http_port, self.proc, what="piwigo-s3upload", log=self.log)
        return self

    def http_url(self, path):
        return f"http://127.0.0.1:{self.http_port}/{path.lstrip('/')}"

    def http_get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.get(self.http_url(path), **kw)

    def wait_until(self, condition, timeout=60.0, what="condition"):
        """Polls `condition()` until truthy; fails with the daemon's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode} while waiting "
                                   f"for {what}{tail(self.log)}")
            time.sleep(0.2)
        raise TimeoutError(f"{what} not reached within {timeout}s{tail(self.log)}")

    def stop(self):
        return stop(self.proc, timeout=30)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""
