"""A real S3-compatible server: `rclone serve s3` on a free loopback port,
checking SigV4 signatures, storing each object as a file."""

import os
import shutil
import subprocess
from pathlib import Path

from .procs import REPO, free_port, stop, wait_for_port

ACCESS_KEY = "TESTACCESSKEY0001"
SECRET_KEY = "TestSecretKey+With/Symbols0001"
BUCKET = "gallery"


def rclone_binary():
    if os.environ.get("RCLONE"):
        return os.environ["RCLONE"]
    venv = REPO / ".tools" / "venv" / "bin" / "rclone"
    if venv.exists():
        return str(venv)
    found = shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone not found: run scripts/test.sh once, or set RCLONE")
    return found


class S3Server:
    def __init__(self, workdir):
        self.data = Path(workdir) / "s3-data"
        self.log = Path(workdir) / "rclone.log"
        self.port = None
        self.proc = None

    def start(self):
        (self.data / BUCKET).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [rclone_binary(), "serve", "s3", "--config", "/dev/null",
                 "--addr", f"127.0.0.1:{self.port}",
                 "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}",
                 "--force-path-style=true", "--etag-hash", "MD5", "--log-level", "ERROR",
                 str(self.data)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, what="rclone serve s3", log=self.log)
        return self

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def object_path(self, key):
        return self.data / BUCKET / key

    def get(self, key):
        """An object's bytes, or None."""
        path = self.object_path(key)
        return path.read_bytes() if path.is_file() else None

    def keys(self):
        root = self.data / BUCKET
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def close(self):
        stop(self.proc)
