"""A link of a steady RATE bytes/s for the server-to-client stream, as an SSH ProxyCommand.

python -m benchmarks.steady_link RATE HOST PORT
pv -L lets a burst through after an idle spell (it averages the rate), which flatters a key's latency; this
relay never sends more than BUCKET bytes ahead of RATE, so a 2 KB/s link stays a 2 KB/s link.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

BUCKET = 256  # bytes a quiet spell may save up: a modem's buffer, not a burst


def _upstream(sock: socket.socket) -> None:
    while chunk := os.read(0, 65536):
        sock.sendall(chunk)
    sock.shutdown(socket.SHUT_WR)


def main() -> None:
    rate, host, port = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection((host, port))
    threading.Thread(target=_upstream, args=(sock,), daemon=True).start()
    allowance, last = float(BUCKET), time.monotonic()
    while data := sock.recv(4096):
        while data:
            now = time.monotonic()
            allowance = min(BUCKET, allowance + (now - last) * rate)
            last = now
            if allowance < 1:
                time.sleep((1 - allowance) / rate)
                continue
            piece, data = data[: int(allowance)], data[int(allowance):]
            os.write(1, piece)
            allowance -= len(piece)


if __name__ == "__main__":
    main()
