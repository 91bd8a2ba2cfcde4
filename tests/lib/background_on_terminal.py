"""background_on_terminal.py CMD...: runs CMD in a background process group of a new terminal (a
pty) that has TOSTOP set, as a job started with `&` from an interactive shell under `stty tostop`.
Writing to that terminal stops such a process with SIGTTOU, unless it blocks or ignores the
signal. Prints "result: exited N", "result: stopped by SIGNAME" or "result: still running" (after
20 s); a stopped or running CMD is killed."""
import os, pty, signal, sys, termios, time
pid, master = pty.fork()
if pid == 0:  # the session leader, in the foreground of the terminal
    attrs = termios.tcgetattr(0)
    attrs[3] |= termios.TOSTOP
    termios.tcsetattr(0, termios.TCSANOW, attrs)
    child = os.fork()
    if child == 0:  # a background job of that session (its process group is not orphaned: we wait)
        os.setpgid(0, 0)
        os.execvp(sys.argv[1], sys.argv[1:])
    os.setpgid(child, child)
    deadline = time.monotonic() + 20
    while not (done := os.waitpid(child, os.WUNTRACED | os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if not done[0]:
        print("result: still running")
    elif os.WIFSTOPPED(done[1]):
        print("result: stopped by", signal.Signals(os.WSTOPSIG(done[1])).name)
    else:
        print("result: exited", os.waitstatus_to_exitcode(done[1]))
    if not done[0] or os.WIFSTOPPED(done[1]):
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    os._exit(0)
# The terminal's other side: read what the session printed until it is gone.
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
print(*[l for l in out.decode(errors="replace").splitlines() if l.startswith("result: ")])
