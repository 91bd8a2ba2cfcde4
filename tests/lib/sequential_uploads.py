"""sequential_uploads.py PORT COUNT ANSWER_BYTES SECONDS: COUNT connections to 127.0.0.1:PORT, one
after the other, as clients of examples/early_answer_server: each sends a 256 KiB upload (more than
the server reads, so its close would reset without a lingering close), then reads the answer to EOF
and checks that it is whole ("ANSWER n" and n bytes of 'x'). Stops at the first connection that
fails or takes over 10 s, or after SECONDS in all. Prints "whole=N" (connections answered whole),
and what stopped it, if anything, on a second line."""
import socket
import sys
import time

port, count, answer_bytes, seconds = (int(a) for a in sys.argv[1:5])
expected = b"ANSWER %d\n" % answer_bytes + b"x" * answer_bytes
upload = b"u" * (256 * 1024)
deadline = time.monotonic() + seconds
whole, stopped = 0, ""
for i in range(count):
    if time.monotonic() > deadline:
        stopped = "out of time after %d connections" % i
        break
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(upload)
            got = bytearray()
            while chunk := c.recv(65536):
                got += chunk
    except OSError as e:
        stopped = "connection %d: %s: %s" % (i, type(e).__name__, e)
        break
    if bytes(got) != expected:
        stopped = "connection %d: %d bytes, not the whole answer" % (i, len(got))
        break
    whole += 1
print("whole=%d" % whole)
if stopped:
    print(stopped)
