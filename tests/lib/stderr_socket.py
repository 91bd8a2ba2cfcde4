"""Runs a command whose stderr is a socket, as inetd-style servers run, with a syslog socket of our
own bound at /dev/log (the caller gives us a private /dev). Prints what reached syslog, what reached
the stderr socket, and the command's first line of output."""
import socket
import subprocess
import sys

log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.setblocking(False)
ours, theirs = socket.socketpair()
out = subprocess.run(sys.argv[1:], stderr=theirs, stdout=subprocess.PIPE, timeout=20).stdout.decode()
theirs.close()
ours.setblocking(False)


def drain(sock):
    try:
        return sock.recv(65536).decode()
    except BlockingIOError:
        return ""


print("syslog:", drain(log))
print("stderr:", drain(ours))
print("stdout:", out.splitlines()[0] if out else "")
