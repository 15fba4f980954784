#!/usr/bin/env python3
"""A real-world link on one machine: a network namespace behind a veth pair
shaped with `tbf` (the rate), and bench/delayproxy.py in front of it (the
round-trip time). The S3 server runs inside the namespace; every tool talks
to the proxy on 127.0.0.1, so all of them cross the same link.

    python3 bench/link.py check --link 40ms/200mbit     # measure what the link gives
    python3 bench/link.py check --link 40ms/200mbit --ceiling   # and the proxy's own limit
    python3 bench/link.py check --link 100ms            # the RTT alone, no rate cap

A link is spelled RTTms/RATEmbit (both directions capped at RATE by tbf) or
RTTms alone: the proxy's round-trip time and no tbf, so the rate is whatever
the proxy and the veth pair carry (a long fat pipe).

Needs root (ip netns, tc) and the iproute2 tools. Standard library only.
Nothing leaves the machine: the only addresses are 127.0.0.1 and a /30 on
the veth pair, which exists only while the benchmark runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROXY = HERE / "delayproxy.py"
MB = 1_000_000


class LinkError(Exception):
    """The link could not be built or measured; the message says why."""


@dataclass(frozen=True)
class LinkSpec:
    rtt_ms: float
    # None: no rate cap (no tbf), only the proxy's delay.
    rate_mbit: float | None = None

    @classmethod
    def parse(cls, text: str) -> "LinkSpec":
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)ms(?:/(\d+(?:\.\d+)?)mbit)?\s*", text.lower())
        if not m or (m.group(2) is not None and float(m.group(2)) <= 0):
            raise ValueError(
                f"{text!r}: expected RTTms/RATEmbit (e.g. 40ms/200mbit) or RTTms for no rate "
                "cap (e.g. 100ms)"
            )
        return cls(float(m.group(1)), float(m.group(2)) if m.group(2) is not None else None)

    @property
    def capped(self) -> bool:
        return self.rate_mbit is not None

    @property
    def name(self) -> str:
        rate = f"{self.rate_mbit:g} Mbit/s" if self.capped else "no rate cap"
        return f"{self.rtt_ms:g} ms RTT, {rate}"

    @property
    def slug(self) -> str:
        rate = f"{self.rate_mbit:g}mbit" if self.capped else "nocap"
        return f"{self.rtt_ms:g}ms-{rate}"


def _run(cmd: list[str], ns: str | None = None) -> None:
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise LinkError(f"`{' '.join(cmd)}` failed: {r.stderr.strip() or r.stdout.strip()}")


class Namespace:
    """A network namespace reached from the host over a veth pair, both ends
    shaped by tbf. Removed by close() (and with it the veth pair)."""

    def __init__(self, spec: LinkSpec):
        if os.geteuid() != 0:
            raise LinkError("a shaped link needs root (ip netns, tc); run as root or drop --link")
        for tool in ("ip", "tc"):
            if not shutil.which(tool):
                raise LinkError(f"`{tool}` is missing (Debian: apt-get install iproute2)")
        pid = os.getpid()
        self.name = f"s3ubench{pid}"
        self.host_if, self.ns_if = f"s3ub{pid}h", f"s3ub{pid}n"
        net = pid % 250 + 1
        self.host_ip, self.ns_ip = f"10.203.{net}.1", f"10.203.{net}.2"
        self.spec = spec
        self.open = False
        _run(["ip", "netns", "add", self.name])
        self.open = True
        try:
            _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if])
            _run(["ip", "link", "set", self.ns_if, "netns", self.name])
            _run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
            _run(["ip", "link", "set", self.host_if, "up"])
            _run(["ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if], self.name)
            _run(["ip", "link", "set", self.ns_if, "up"], self.name)
            _run(["ip", "link", "set", "lo", "up"], self.name)
            self.shape(spec)
        except LinkError:
            self.close()
            raise

    def shape(self, spec: LinkSpec) -> None:
        """Both directions at `spec.rate_mbit`. The burst covers a 64 KiB
        segment (veth passes GSO packets whole); the queue holds 50 ms.
        Without a rate, no tbf: the veth's own default queueing."""
        self.spec = spec
        if not spec.capped:
            for cmd, ns in ((["tc", "qdisc", "del", "dev", self.host_if, "root"], None),
                            (["tc", "qdisc", "del", "dev", self.ns_if, "root"], self.name)):
                if ns:
                    cmd = ["ip", "netns", "exec", ns] + cmd
                subprocess.run(cmd, capture_output=True)  # fails when there is none: fine
            return
        rate = f"{spec.rate_mbit:g}mbit"
        tbf = ["root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms"]
        _run(["tc", "qdisc", "replace", "dev", self.host_if] + tbf)
        _run(["tc", "qdisc", "replace", "dev", self.ns_if] + tbf, self.name)

    def command(self, cmd: list[str]) -> list[str]:
        """cmd, run inside the namespace (same pid: `ip netns exec` execs)."""
        return ["ip", "netns", "exec", self.name] + cmd

    def close(self) -> None:
        if self.open:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
            self.open = False


class DelayProxy:
    """bench/delayproxy.py in its own process (so its CPU is its own)."""

    def __init__(self, target: tuple[str, int], rtt_ms: float, python: str = sys.executable):
        self.proc = subprocess.Popen(
            [python, str(PROXY), "--target", f"{target[0]}:{target[1]}", "--rtt-ms", f"{rtt_ms:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"listening (\d+)\n", line)
        if not m:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise LinkError(f"the delaying proxy did not start: {line.strip()} {err.strip()}")
        self.port = int(m.group(1))

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------
# Measuring the link: an echo/sink server at the far end, a client here.


def sink_server(host: str, port: int) -> None:
    """Each connection says what it wants in its first byte: `e` echoes
    every byte back; `s` swallows everything and answers with the count."""
    srv = socket.create_server((host, port), reuse_port=False, backlog=64)

    def handle(c: socket.socket) -> None:
        with c:
            mode = c.recv(1)
            if mode == b"e":
                while data := c.recv(65536):
                    c.sendall(data)
            elif mode == b"s":
                n = 0
                while data := c.recv(1 << 20):
                    n += len(data)
                c.sendall(str(n).encode())

    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def _start_sink(cmd_prefix: list[str], host: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd_prefix + [sys.executable, str(Path(__file__).resolve()), "_sink", host, str(port)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise LinkError("the measuring sink did not start")
    return proc


def measure_rtt(port: int, pings: int = 20) -> dict:
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"e!")
        c.recv(1)
        first = time.perf_counter() - t0
        samples = []
        for _ in range(pings):
            t = time.perf_counter()
            c.sendall(b"x")
            c.recv(1)
            samples.append(time.perf_counter() - t)
    return {
        "connect_and_first_reply_ms": first * 1000,
        "rtt_min_ms": min(samples) * 1000,
        "rtt_median_ms": statistics.median(samples) * 1000,
    }


def measure_rate(port: int, total: int, streams: int) -> float:
    """Mbit/s of payload from here to the far end over `streams` parallel
    connections, until the far end has counted every byte."""
    each = total // streams
    results: list[int] = []
    chunk = b"\0" * (1 << 20)

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"s")
            left = each
            while left > 0:
                n = min(left, len(chunk))
                c.sendall(chunk[:n])
                left -= n
            c.shutdown(socket.SHUT_WR)
            results.append(int(c.recv(64) or b"0"))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if sum(results) != each * streams:
        raise LinkError(f"rate check: the far end counted {sum(results)} of {each * streams} bytes")
    return sum(results) * 8 / elapsed / 1e6


# Without a rate cap the rate check sends this much (per measurement), as
# there is no rate to size it from.
UNCAPPED_CHECK_BYTES = 400 * MB


def check(spec: LinkSpec, ns: Namespace | None = None, seconds: float = 4.0,
          uncapped_bytes: int = UNCAPPED_CHECK_BYTES) -> dict:
    """What the link really gives: RTT through the proxy, and the payload
    rate for one and for four streams. A capped link sends `seconds` worth
    of its rate; an uncapped one a fixed `uncapped_bytes`. Builds its own
    namespace unless one is passed."""
    own = ns is None
    ns = ns or Namespace(spec)
    sink = proxy = None
    try:
        sink = _start_sink(ns.command([]), ns.ns_ip, 9099)
        proxy = DelayProxy((ns.ns_ip, 9099), spec.rtt_ms)
        out = {"link": spec.name}
        out.update(measure_rtt(proxy.port))
        if spec.capped:
            total = int(spec.rate_mbit * 1e6 / 8 * seconds)
        else:
            total = uncapped_bytes
        out["rate_check_bytes"] = total
        cpu0 = proxy.cpu_seconds()
        out["rate_1_stream_mbit"] = measure_rate(proxy.port, total, 1)
        out["rate_4_streams_mbit"] = measure_rate(proxy.port, total, 4)
        out["proxy_cpu_s_per_gb"] = (proxy.cpu_seconds() - cpu0) / (2 * total / 1e9)
        return out
    finally:
        for p in (proxy,):
            if p:
                p.stop()
        if sink:
            sink.kill()
            sink.wait()
        if own:
            ns.close()


def ceiling(rtt_ms: float, total: int = 1_000_000_000) -> dict:
    """The proxy alone, on loopback with no rate limit: the most it can
    carry with `rtt_ms` of delay, and its CPU per GB."""
    port = 9098
    sink = _start_sink([], "127.0.0.1", port)
    proxy = None
    try:
        proxy = DelayProxy(("127.0.0.1", port), rtt_ms)
        cpu0 = proxy.cpu_seconds()
        one = measure_rate(proxy.port, total // 2, 1)
        four = measure_rate(proxy.port, total // 2, 4)
        return {
            "proxy_alone_rtt_ms": rtt_ms,
            "proxy_alone_1_stream_mbit": one,
            "proxy_alone_4_streams_mbit": four,
            "proxy_alone_cpu_s_per_gb": (proxy.cpu_seconds() - cpu0) / (total / 1e9),
        }
    finally:
        if proxy:
            proxy.stop()
        sink.kill()
        sink.wait()


def describe(result: dict) -> str:
    parts = []
    if "rtt_median_ms" in result:
        sent = result.get("rate_check_bytes")
        parts.append(
            f"RTT {result['rtt_median_ms']:.1f} ms median ({result['rtt_min_ms']:.1f} min; "
            f"connect + first reply {result['connect_and_first_reply_ms']:.1f} ms); payload rate "
            f"{result['rate_1_stream_mbit']:.0f} Mbit/s on one stream, "
            f"{result['rate_4_streams_mbit']:.0f} on four"
            + (f" ({sent / MB:.0f} MB each)" if sent else "")
            + "; proxy "
            f"{result['proxy_cpu_s_per_gb']:.2f} CPU s per GB"
        )
    if "proxy_alone_1_stream_mbit" in result:
        parts.append(
            f"proxy alone (loopback, {result['proxy_alone_rtt_ms']:g} ms, no rate limit): "
            f"{result['proxy_alone_1_stream_mbit']:.0f} Mbit/s on one stream, "
            f"{result['proxy_alone_4_streams_mbit']:.0f} on four, "
            f"{result['proxy_alone_cpu_s_per_gb']:.2f} CPU s per GB"
        )
    return "; ".join(parts)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_sink"]:
        sink_server(argv[1], int(argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="build the link, measure RTT and rate, remove it")
    c.add_argument("--link", type=LinkSpec.parse, required=True,
                   help="RTTms/RATEmbit, e.g. 40ms/200mbit, or RTTms for no rate cap, e.g. 100ms")
    c.add_argument("--seconds", type=float, default=4.0,
                   help="length of each rate measurement on a capped link")
    c.add_argument("--uncapped-mb", type=float, default=UNCAPPED_CHECK_BYTES / MB,
                   help="MB sent by each rate measurement on a link without a rate cap")
    c.add_argument("--ceiling", action="store_true", help="also measure the proxy alone on loopback")
    a = p.parse_args(argv)
    try:
        result = check(a.link, seconds=a.seconds, uncapped_bytes=int(a.uncapped_mb * MB))
        if a.ceiling:
            result.update(ceiling(a.link.rtt_ms))
    except LinkError as e:
        print(f"link: {e}", file=sys.stderr)
        return 1
    print(f"{a.link.name}: {describe(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
