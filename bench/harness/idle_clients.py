"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET / on each, reads the
response, and then holds them all open and silent. Prints "ready OPENED FAILED" once every
connection has its answer (or has failed), then waits to be killed (at most HOLD_S seconds).

Run by the harness as a separate process so that its own memory and descriptors are not
counted against the proxy, and so it can be pinned to the load generator's CPU.

usage: idle_clients.py PORT COUNT [HOLD_S]
"""

import asyncio
import resource
import sys

CONCURRENT_OPENS = 200   # keeps the proxy's accept backlog from overflowing into SYN retries
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def open_one(port: int, gate: asyncio.Semaphore, held: list) -> bool:
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            writer.write(REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await asyncio.wait_for(reader.readexactly(length), 10)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            return False
        if not head.startswith(b"HTTP/1.1 200"):
            writer.close()
            return False
        held.append(writer)   # keep the connection (and its socket) alive
        return True


async def main(port: int, count: int, hold_s: float) -> None:
    gate = asyncio.Semaphore(CONCURRENT_OPENS)
    held: list = []
    results = await asyncio.gather(*(open_one(port, gate, held) for _ in range(count)))
    opened = sum(results)
    print(f"ready {opened} {count - opened}", flush=True)
    await asyncio.sleep(hold_s)


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), hold))
