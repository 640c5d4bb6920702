"""Syslog flood for test/syslog/flood.test.ts and test/daemon/syslog-flood.test.ts: RATE datagrams/s for SECONDS to
DEST:PORT (default 127.0.0.1), round-robin from SOURCES sockets bound to FIRST, FIRST+1, ... (default 127.0.0.2,
127.0.0.3, ...: all of 127.0.0.0/8 is on lo; the addresses must exist on the sender's host or namespace). Every 10th line is malformed (PRI
999), every 100th (offset 5) is 3000 bytes. Python, not node: node:dgram tops out near 25,000 sends/s on this
machine, a plain sendto(2) loop does 50,000 with room to spare. Prints "sent N in S" at the end."""
import socket
import sys
import time

port, rate, seconds, sources = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
dest_host = sys.argv[5] if len(sys.argv) > 5 else '127.0.0.1'
first = [int(x) for x in (sys.argv[6] if len(sys.argv) > 6 else '127.0.0.2').split('.')]
socks = []
for i in range(sources):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('%d.%d.%d.%d' % (first[0], first[1], first[2], first[3] + i), 0))
    socks.append(s)
good = b'<134>1 2026-11-27T15:37:18.123456+00:00 flood app 42 - - installing package %07d of many'
bad = b'<999>not a priority'
big = b'<134>' + b'x' * 2995
dest = (dest_host, port)
sent = 0
start = time.monotonic()
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    for _ in range(int(elapsed * rate) - sent):
        line = bad if sent % 10 == 0 else big if sent % 100 == 5 else good % sent
        try:
            socks[sent % sources].sendto(line, dest)
        except OSError:
            pass  # ENOBUFS under load: a lost datagram is what UDP senders get
        sent += 1
    time.sleep(0.002)
print('sent %d in %.2f' % (sent, time.monotonic() - start), flush=True)
