#!/usr/bin/env python3
"""A TCP proxy that delays every byte by half a round-trip time each way.

The kernel here has no `netem` qdisc, so the benchmark builds its
"real-world link" from two parts: `tbf` on a veth pair into a network
namespace gives the rate, and this proxy gives the latency. Every tool
connects to the proxy on 127.0.0.1; the proxy connects to the S3 server
behind the shaped veth.

What it models: bytes arrive RTT/2 after they were sent, in each direction;
a new connection cannot carry data before one RTT has passed (the TCP
handshake). What it does not model: TCP slow start and loss on the long
path (the client's own TCP only ever sees loopback). The bytes the proxy
holds per direction are capped (`--window`), like a socket buffer: when the
cap is reached it stops reading, so the sender feels back-pressure.

Standard library only. Prints `listening PORT` once it accepts connections;
stops on SIGTERM or SIGINT.

    python3 bench/delayproxy.py --listen 127.0.0.1:0 --target 10.203.0.2:8080 --rtt-ms 40
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import sys

READ_SIZE = 256 * 1024


class Direction:
    """One direction of one connection: what `src` sends is written to
    `dst` RTT/2 later, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, half_rtt: float, window: int,
                 not_before: float):
        self.loop, self.half_rtt, self.window = loop, half_rtt, window
        # Data sent before the handshake would have completed leaves then.
        self.not_before = not_before
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.pending = 0
        self.timer: asyncio.TimerHandle | None = None
        self.src_paused = False
        self.dst_paused = False
        self.done = False
        self.eof = False
        self.on_done = lambda: None

    def feed(self, data: bytes | None) -> None:
        """Queues data (None: end of stream) to leave half an RTT from now."""
        if self.eof:
            return
        self.eof = data is None
        when = max(self.loop.time(), self.not_before) + self.half_rtt
        self.queue.append((when, data))
        if data:
            self.pending += len(data)
        self._arm()
        self._flow()

    def _arm(self) -> None:
        if self.timer is None and self.queue and self.dst is not None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if self.dst is None or self.dst.is_closing():
                self.queue.clear()
                self.pending = 0
                self._finish()
                return
            if data is None:
                if self.dst.can_write_eof():
                    self.dst.write_eof()
                self._finish()
                return
            self.pending -= len(data)
            self.dst.write(data)
        self._arm()
        self._flow()

    def drop(self) -> None:
        """The destination is gone: nothing queued can be delivered."""
        self.dst = None
        self.queue.clear()
        self.pending = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.on_done()

    def _flow(self) -> None:
        if self.src is None or self.src.is_closing():
            return
        over = self.pending >= self.window or self.dst_paused
        if over and not self.src_paused:
            self.src.pause_reading()
            self.src_paused = True
        elif not over and self.src_paused:
            self.src.resume_reading()
            self.src_paused = False

    def set_dst_paused(self, paused: bool) -> None:
        self.dst_paused = paused
        self._flow()


class Side(asyncio.Protocol):
    """One socket of a proxied connection: what it reads goes into `out`;
    its write buffer is the destination of `inbound`."""

    def __init__(self, out: Direction, inbound: Direction):
        self.out, self.inbound = out, inbound
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=self.inbound.window, low=self.inbound.window // 2)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out.src = transport
        self.inbound.dst = transport
        self.inbound._arm()
        self.out._flow()

    def data_received(self, data):
        self.out.feed(data)

    def eof_received(self):
        self.out.feed(None)
        return True  # keep the socket open for the other direction

    def connection_lost(self, exc):
        self.out.feed(None)
        self.inbound.drop()

    def pause_writing(self):
        self.inbound.set_dst_paused(True)

    def resume_writing(self):
        self.inbound.set_dst_paused(False)


class Proxy:
    def __init__(self, target: tuple[str, int], rtt: float, window: int):
        self.target, self.half_rtt, self.window = target, rtt / 2, window
        self.rtt = rtt
        self.connections = 0

    def accept(self) -> Side:
        loop = asyncio.get_running_loop()
        # The client's connect() returned at once on loopback; a real one
        # takes a round trip before the first byte can leave.
        ready = loop.time() + self.rtt
        up = Direction(loop, self.half_rtt, self.window, ready)
        down = Direction(loop, self.half_rtt, self.window, ready)
        client = Side(up, down)
        self.connections += 1
        closed = [False]

        def maybe_close():
            if up.done and down.done and not closed[0]:
                closed[0] = True
                for d in (up.src, down.src):
                    if d is not None and not d.is_closing():
                        d.close()

        up.on_done = down.on_done = maybe_close

        async def connect():
            try:
                await loop.create_connection(lambda: Side(down, up), *self.target)
            except OSError as e:
                print(f"delayproxy: cannot reach {self.target[0]}:{self.target[1]}: {e}",
                      file=sys.stderr, flush=True)
                if client.transport is not None:
                    client.transport.abort()

        loop.create_task(connect())
        return client


async def serve(listen: tuple[str, int], proxy: Proxy) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(proxy.accept, *listen, backlog=1024, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host, int(port)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=hostport, default=("127.0.0.1", 0))
    p.add_argument("--target", type=hostport, required=True)
    p.add_argument("--rtt-ms", type=float, required=True, help="round-trip time to add")
    p.add_argument("--window", type=int, default=4 * 1024 * 1024,
                   help="bytes held per connection and direction before reading pauses")
    a = p.parse_args(argv)
    if a.rtt_ms < 0 or a.window < 65536:
        p.error("--rtt-ms >= 0 and --window >= 65536")
    asyncio.run(serve(a.listen, Proxy(a.target, a.rtt_ms / 1000, a.window)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
