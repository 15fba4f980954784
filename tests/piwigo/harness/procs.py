"""Small process and network helpers shared by the harness modules."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, timeout=30.0, what="server", log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s{tail(log)}")


def tail(log, lines=30):
    if not log or not Path(log).exists():
        return ""
    text = Path(log).read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " ---\n" + "\n".join(text)


def stop(proc, timeout=10.0, group=False):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code. With
    `group`, the whole process group goes (the process must have been
    started with start_new_session=True): `php -S` leaves its workers
    running when only the parent is stopped."""
    if proc is None:
        return None
    def signal_it(sig):
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
    if proc.poll() is None or group:
        signal_it(signal.SIGTERM)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        code = proc.wait()
    if group:
        signal_it(signal.SIGKILL)
    return code


def php_binary():
    found = shutil.which("php") or shutil.which("php8.2")
    if not found:
        raise RuntimeError("PHP is not installed: apt-get install php8.2-cli "
                           "php8.2-mysql php8.2-gd php8.2-xml php8.2-mbstring php8.2-curl")
    return found
