#!/usr/bin/env bats
# The drain thread of the lingering close starts when a socket first lingers, not before: a second
# thread makes glibc wrap every later system call in compare-and-swaps (docs/PERFORMANCE.md, row 2),
# which a program that never lingers should not pay. close() itself never starts it (it may run in a
# signal handler): the first lingering close of a one-thread program sends its FIN at once, and the
# program's next wait or socket call starts the thread that drains.

load helpers

export TCPRARE_BACKLOG=off

setup() {
	unset TCPRARE_LINGER TCPRARE_LOG TCPRARE_SUMMARY
}

teardown() {
	stop_tracked
}

# threads.py: a one-thread client and server in one python process; the server answers and closes
# with nothing unread (a finished exchange: no linger). Prints the process's thread count then.
finished_exchange() {
	python3 - <<'PY'
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.sendall(b"GET\n"); s.recv(100); s.sendall(b"answer\n"); s.close()
c.recv(100); c.close()
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("Threads:")][0])
PY
}

@test "a program whose connections never linger keeps its one thread" {
	run finished_exchange
	[ "$output" = 1 ]
	run with_tcprare bash -c "$(declare -f finished_exchange); finished_exchange"
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
}

# The same exchange in a child forked by a program that has a second thread: the child has the one
# thread that forked, though glibc's count (__libc_single_threaded) still says more. Its thread count
# is printed by the child, after its connections closed.
finished_exchange_in_forked_child() {
	python3 - <<'PY'
import os, socket, threading, time
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
pid = os.fork()
if pid == 0:
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.sendall(b"GET\n"); s.recv(100); s.sendall(b"answer\n"); s.close()
    c.recv(100); c.close()
    print([line.split()[1] for line in open("/proc/self/status") if line.startswith("Threads:")][0], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
PY
}

@test "a child forked by a threaded program keeps its one thread while its connections never linger" {
	run finished_exchange_in_forked_child
	[ "$output" = 1 ]
	run with_tcprare bash -c "$(declare -f finished_exchange_in_forked_child); finished_exchange_in_forked_child"
	[ "$status" -eq 0 ]
	[ "$output" = 1 ]
}

# A one-thread server answers a client whose request it has not read to its end, closes, and then
# waits for a child in waitpid(), a call the library does not see: no drain thread can start yet.
# Its client must still get the whole answer and a FIN, as the close itself sends it, long before
# the child's 3 s are up. Without the library the unread request makes the close send RST.
answer_then_waitpid() {
	python3 - <<'PY'
import os, socket, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # most of the answer waits on our side
c.connect(l.getsockname()); s, _ = l.accept()
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 400000)
c.sendall(b"x" * 5000)
s.recv(10); s.sendall(b"a" * 200000)
time.sleep(0.2)   # the rest of the request is in, unread
s.close()
pid = os.fork()
if pid == 0:
    os.execvp("sleep", ["sleep", "3"])
# The client is read from a child of ours made by fork, so this process only waits.
reader = os.fork()
if reader == 0:
    got, start = 0, time.monotonic()
    try:
        while True:
            b = c.recv(65536)
            if not b:
                print("got=%d end=eof in_time=%d" % (got, time.monotonic() - start < 2)); break
            got += len(b)
    except ConnectionResetError:
        print("got=%d end=reset" % got)
    os._exit(0)
c.close()
os.waitpid(reader, 0)
os.kill(pid, 9); os.waitpid(pid, 0)
PY
}

@test "a one-thread server that closes with input unread and then waits where the library cannot see still gives its client the whole answer and a FIN" {
	run answer_then_waitpid
	[[ "$output" =~ ^got=([0-9]+)\ end=reset$ ]]
	[ "${BASH_REMATCH[1]}" -lt 200000 ]
	TCPRARE_LOG=$BATS_TEST_TMPDIR/log run with_tcprare bash -c "$(declare -f answer_then_waitpid); answer_then_waitpid"
	[ "$status" -eq 0 ]
	[ "$output" = "got=200000 end=eof in_time=1" ]
	grep -Eq 'linger started fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=[0-9]+$' "$BATS_TEST_TMPDIR/log"
}
