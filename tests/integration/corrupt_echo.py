# SPDX-License-Identifier: MIT
"""An echo server that corrupts what it echoes, for load_echo.sh: every
`--every` bytes of a connection one byte is sent back with a bit flipped.
Prints "corrupt-echo: listening on 127.0.0.1:PORT" and serves until killed.
"""
import argparse
import asyncio


async def serve(reader, writer, every):
    seen = 0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            out = bytearray(data)
            for i in range(len(out)):
                if (seen + i) % every == every - 1:
                    out[i] ^= 0x20
            seen += len(out)
            writer.write(bytes(out))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--every", type=int, default=1000)
    args, _ = ap.parse_known_args()
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, args.every), args.addr, args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"corrupt-echo: listening on {args.addr}:{port}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
