#!/usr/bin/env python3
"""A TCP relay that holds every byte for a fixed delay in each direction.

regions.sh uses it as the WAN between two regions when the kernel has no
`sch_netem` (CONFIG_NET_SCH_NETEM unset, as on this project's VMs): the only
cross-region traffic in its topology is the Redis replica's connection to
its primary, and that connection goes through this relay.

    wan_relay.py LISTEN_HOST:PORT UPSTREAM_HOST:PORT DELAY_MS

What it keeps from a delaying link: order, and a one-way delay on every
chunk (so a round trip costs 2 x DELAY_MS). What it does not model: loss,
bandwidth, jitter. A partition is made below it (nftables drops the packets
on the veth), so TCP sees real loss there. Connecting upstream is retried
every 250 ms for as long as the downstream side waits, so a healed link is
used at once rather than after TCP's SYN backoff.
"""

import asyncio
import signal
import sys
import time

CONNECT_TIMEOUT_S = 0.25
CHUNK = 64 * 1024


async def pump(reader, writer, delay_s):
    """Copies reader to writer, each chunk written delay_s after it was read."""
    queue = asyncio.Queue()

    async def read():
        try:
            while chunk := await reader.read(CHUNK):
                await queue.put((time.monotonic() + delay_s, chunk))
        except (ConnectionError, OSError):
            pass
        await queue.put((time.monotonic() + delay_s, None))

    async def write():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                break
            writer.write(chunk)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                break
        writer.close()

    await asyncio.gather(read(), write())


async def connect_upstream(host, port, down_reader):
    """Retries until connected, or until the downstream side has gone."""
    while not down_reader.at_eof():
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (asyncio.TimeoutError, OSError):
            await asyncio.sleep(0.05)
    return None


async def main():
    listen, upstream, delay_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lhost, lport = listen.rsplit(":", 1)
    uhost, uport = upstream.rsplit(":", 1)
    delay_s = delay_ms / 1000

    async def handle(down_r, down_w):
        up = await connect_upstream(uhost, int(uport), down_r)
        if up is None:
            down_w.close()
            return
        up_r, up_w = up
        await asyncio.gather(pump(down_r, up_w, delay_s), pump(up_r, down_w, delay_s))

    server = await asyncio.start_server(handle, lhost, int(lport))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"relaying {listen} -> {upstream} with {delay_ms} ms each way", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
