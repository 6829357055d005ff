#!/bin/sh
# Python: multiprocessing (fork and spawn pools, a Queue, a Lock: POSIX
# semaphores in /dev/shm) and asyncio (a TCP echo server and clients on loopback).
set -eu
cat > /tmp/mp_asyncio.py <<'PY'
import asyncio, multiprocessing as mp, os

def square(x):
    return x * x

def worker(q, lock):
    with lock:
        q.put(os.getpid())

if __name__ == "__main__":
    for method in ("fork", "spawn", "forkserver"):
        ctx = mp.get_context(method)
        with ctx.Pool(4) as pool:
            assert pool.map(square, range(100)) == [x * x for x in range(100)], method
        q, lock = ctx.Queue(), ctx.Lock()
        ps = [ctx.Process(target=worker, args=(q, lock)) for _ in range(3)]
        for p in ps:
            p.start()
        pids = {q.get(timeout=30) for _ in ps}
        for p in ps:
            p.join(30)
            assert p.exitcode == 0, (method, p.exitcode)
        assert len(pids) == 3
        print("multiprocessing", method, "ok")

    async def handle(r, w):
        while data := await r.readline():
            w.write(data.upper())
            await w.drain()
        w.close()

    async def client(port, i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"hello {i}\n".encode())
        await w.drain()
        line = await r.readline()
        w.close()
        await w.wait_closed()
        return line

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        got = await asyncio.wait_for(asyncio.gather(*(client(port, i) for i in range(20))), 30)
        assert got == [f"HELLO {i}\n".encode() for i in range(20)], got
        proc = await asyncio.create_subprocess_exec("echo", "sub", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"sub\n"
        srv.close()
        await srv.wait_closed()
    asyncio.run(main())
    print("asyncio ok")
PY
python3 /tmp/mp_asyncio.py
echo OK
