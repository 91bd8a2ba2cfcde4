#!/usr/bin/env bats
# vfork() keeps its meaning with the library loaded: the child runs in the parent's memory until it
# execs or exits. The hooks the child calls meanwhile touch none of the library's state (the table,
# the epoll instances, the drain thread's are the parent's; the child's descriptor numbers are its
# own), and the sockets the child can take across its exec count as shared in the parent. Each test
# shows the program without the library first. Real programs: dash runs commands with vfork, and
# Python's subprocess does too, closing the child's descriptors with close_range() before the exec.

load helpers
load lib/real_servers

setup() {
	setup_real_servers
	export TCPRARE_BACKLOG=off # the listen backlog's log lines are listen_backlog.bats's business
}

teardown() {
	stop_real_servers
}

probe() { "$PROGS/vfork_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/vfork_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }

@test "a vfork child's write into the parent's memory before its failed exec is seen by the parent" {
	run probe execfail
	[ "$status" -eq 0 ]
	[ "$output" = "exec_failed=1" ]
	run probe_with execfail
	[ "$status" -eq 0 ]
	[ "$output" = "exec_failed=1" ]                     # vfork run as fork() printed 0 here
}

@test "a vfork child that closes, dup2()s over and close_range()s a connection leaves the parent's guard on it" {
	export TCPRARE_CLOSEWAIT_IDLE_MS=0 # the peer closes at once: every FIN counts here
	run probe guard
	[ "$output" = "target rc=5 errno=0" ]               # without: accepted, then lost
	run probe_with guard
	[ "$status" -eq 0 ]
	[ "$output" = "target rc=-1 errno=EPIPE" ]
	grep -q 'closewait blocked' "$BATS_TEST_TMPDIR/stderr"
}

# The same through syscall(SYS_vfork) (or SYS_clone with CLONE_VFORK): the library's syscall()
# trampoline (seccomp.c) notes the vfork as vfork() does.
@test "a vfork made through syscall() whose child closes and close_range()s a connection leaves the parent's guard on it" {
	[ "${SANITIZE:-}" != 1 ] || skip "an instrumented program that vforks through syscall() hangs under AddressSanitizer, with or without the library"
	export TCPRARE_CLOSEWAIT_IDLE_MS=0
	run probe guard-syscall
	[ "$output" = "target rc=5 errno=0" ]
	run probe_with guard-syscall
	[ "$status" -eq 0 ]
	[ "$output" = "target rc=-1 errno=EPIPE" ]
	grep -q 'closewait blocked' "$BATS_TEST_TMPDIR/stderr"
}

@test "a vfork child's close of a socket leaves it in the parent's epoll set, and the parent still lingers" {
	run probe epoll
	[ "$output" = "$(printf 'epoll events=1\npeer got=answer end=ECONNRESET')" ]
	TCPRARE_LINGER=on run probe_with epoll
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'epoll events=1\npeer got=answer end=eof')" ]
	[ "$(grep -c 'linger started' "$BATS_TEST_TMPDIR/stderr")" -eq 1 ] # the parent's, after the vfork
}

# keep_scenario SCENARIO: sh, exec'd by a vfork child, answers on a socket the parent closes with the
# request unread. A lingering close there would shut the socket down and drain it under sh.
keep_scenario() {
	run probe "$1"
	[ "$output" = "peer got=answer end=eof" ]
	TCPRARE_LINGER=on run probe_with "$1"
	[ "$status" -eq 0 ]
	[ "$output" = "peer got=answer end=eof" ]
	! grep -q 'linger' "$BATS_TEST_TMPDIR/stderr"
}

@test "a socket a vfork child keeps across exec is not lingered on by the parent's close" {
	keep_scenario keep
}

@test "a close-on-exec socket a vfork child dup2()s onto the exec'd program's stdio is not lingered on by the parent's close" {
	keep_scenario stdio
}

@test "dash runs its commands with a real vfork under tcprare" {
	need dash strace
	local trace=$BATS_TEST_TMPDIR/trace
	strace -f -qq -e trace=vfork,fork,clone,clone3 -o "$trace" -E "LD_PRELOAD=$PRELOAD" dash -c '/bin/true; echo done'
	grep -q '^[0-9]* *vfork(' "$trace"
	! grep -Eq '^[0-9]* *(fork|clone3?)\(' "$trace"   # vfork run as fork() shows clone() here
}

# python_guard PRELOAD: a client whose server closed runs a subprocess (a vfork child that closes every
# descriptor from 3 up), then writes.
python_guard() {
	LD_PRELOAD=$1 TCPRARE_CLOSEWAIT_IDLE_MS=0 TCPRARE_LOG="$SCRATCH/python.log" timeout 20 "$PY" - <<-'PY'
		import errno, socket, subprocess, time
		listener = socket.create_server(("127.0.0.1", 0))
		client = socket.create_connection(listener.getsockname())
		server, _ = listener.accept()
		client.sendall(b"hello")
		server.recv(5)
		server.close()
		time.sleep(0.1)
		subprocess.run(["/bin/true"], check=True)
		try:
		    print("sent=%d" % client.send(b"data1"))
		except OSError as e:
		    print("error=%s" % errno.errorcode[e.errno])
	PY
}

@test "a Python program's write after a subprocess ran is still guarded" {
	need "$PY"
	run python_guard ""
	[ "$output" = "sent=5" ]
	run python_guard "$PRELOAD"
	[ "$output" = "error=EPIPE" ]
	grep -q 'closewait blocked' "$SCRATCH/python.log"
}

# python_pass_fds PRELOAD: a server hands its accepted connection to sh with pass_fds (the vfork child
# clears close-on-exec on it) and closes its own copy at once, with the request unread.
python_pass_fds() {
	LD_PRELOAD=$1 TCPRARE_LINGER=on TCPRARE_LOG="$SCRATCH/python.log" timeout 20 "$PY" - <<-'PY'
		import socket, subprocess, time
		listener = socket.create_server(("127.0.0.1", 0))
		client = socket.create_connection(listener.getsockname())
		server, _ = listener.accept()
		client.sendall(b"request\n")
		time.sleep(0.1)
		fd = server.fileno()
		sh = subprocess.Popen(["sh", "-c", "sleep 0.3; read line <&%d; echo answer >&%d" % (fd, fd)], pass_fds=[fd])
		server.close()
		client.settimeout(3)
		got = b""
		while chunk := client.recv(4096):
		    got += chunk
		print("got=%r" % got)
		sh.wait(timeout=3)
	PY
}

@test "a connection a Python server passes to a subprocess is not lingered on by its close" {
	need "$PY"
	run python_pass_fds ""
	[ "$output" = "got=b'answer\n'" ]
	run python_pass_fds "$PRELOAD"
	[ "$output" = "got=b'answer\n'" ]
	! grep -q 'linger' "$SCRATCH/python.log"
}
