#!/usr/bin/env bats
# Lingering close: close() with the peer's input unread (or still arriving) makes the kernel send RST,
# and the part of the answer the peer has not yet received is thrown away. With tcprare (by default) the
# close becomes shutdown, drain in the background, close. Each test shows the program without the
# library first; the tests of sockets that must NOT linger show that nothing changes.

load helpers
load lib/early_answer

# These tests read the linger log lines alone; the listen backlog's own are pinned in listen_backlog.bats.
export TCPRARE_BACKLOG=off

setup() {
	unset TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_SUMMARY
}

teardown() {
	stop_server
	stop_tracked
}

probe() { "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
logged() { with_tcprare "$@" 2>"$BATS_TEST_TMPDIR/stderr"; } # run's output is stdout alone

@test "a server that answers early and closes cuts its answer short without tcprare, and delivers it whole with tcprare at its default settings" {
	serve ""
	run "$EXAMPLES/upload_client" "$port"
	cut_short                                          # the loss: RST, and the rest of the answer is gone
	stop_server

	serve "$PRELOAD"
	run "$EXAMPLES/upload_client" "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	wait_for_log 'linger drained '
	# The peer is formatted when the drain thread logs: by then the connection may be gone ("-").
	grep -Eq "linger started fd=[0-9]+ local=127\.0\.0\.1:$port peer=127\.0\.0\.1:[0-9]+ unread=[0-9]+$" \
		"$BATS_TEST_TMPDIR/server.err"
	grep -Eq "linger drained fd=[0-9]+ local=127\.0\.0\.1:$port peer=127\.0\.0\.1:[0-9]+ bytes=[1-9][0-9]* ms=[0-9]+ end=eof$" \
		"$BATS_TEST_TMPDIR/server.err"
}

@test "over IPv6 too, the early answer is cut short without tcprare and delivered whole with tcprare" {
	serve "" -6
	run "$EXAMPLES/upload_client" -6 "$port"
	cut_short
	stop_server

	serve "$PRELOAD" -6
	run "$EXAMPLES/upload_client" -6 "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	wait_for_log 'linger drained '
	grep -Eq "linger started fd=[0-9]+ local=\[::1\]:$port peer=\[::1\]:[0-9]+ unread=[0-9]+$" \
		"$BATS_TEST_TMPDIR/server.err"
	grep -Eq "linger drained fd=[0-9]+ local=\[::1\]:$port .* end=eof$" "$BATS_TEST_TMPDIR/server.err"
}

# linger_probe: client and server in one process; the client neither reads nor closes until the
# server's close() has returned, so a close that waited for its peer would never return (alarm).

@test "a lingering close() returns 0 at once, frees the number, and the still-connected peer gets a FIN instead of RST" {
	run probe plain
	[ "$output" = "$(printf 'close rc=0 errno=0\nsame_number=1\npeer got=1000 end=ECONNRESET')" ]
	run probe_with plain
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'close rc=0 errno=0\nsame_number=1\npeer got=1000 end=eof')" ]
	grep -Eq 'linger started fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' "$BATS_TEST_TMPDIR/stderr"
}

@test "a socket closed through one of two descriptors keeps working both ways through the other" {
	local expected
	expected=$(printf 'close rc=0 errno=0\ndup sent=ok\ndup received=5004\npeer got=0 end=eof')
	run probe dup
	[ "$output" = "$expected" ]
	run probe_with dup
	[ "$output" = "$expected" ]
	! grep -q 'linger' "$BATS_TEST_TMPDIR/stderr"       # a shared socket never lingers
}

# Must not harm: without the library this answer arrives whole as well. The parent's copy was open at
# the fork, so a shutdown() by the parent's close would cut the child's answer. (The child's own close
# does not linger either: its socket was open at a fork too. So a fork server's upload case, as in the
# first test, is not repaired: the rule is conservative.)
@test "a fork-per-connection server's close of its copy does not cut the child's answer" {
	serve "" -f
	run "$EXAMPLES/upload_client" -u 10 "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	stop_server

	serve "$PRELOAD" -f
	run "$EXAMPLES/upload_client" -u 10 "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	stop_server
	! grep -q 'linger' "$BATS_TEST_TMPDIR/server.err"
}

# Must not harm: _Fork(), glibc's clone() and the fork and clone system calls run no fork handlers.
# The first two are interposed and count as fork(); for the system calls the close finds out for
# itself (the child's descriptors in /proc). Either way it is a plain one, and the child answers on.
# With tcprare 0.1.0 the parent's close drained the child's request and shut the socket down: only
# the 6-byte greeting arrived.
@test "a fork-per-connection server whose child is made without fork handlers answers whole" {
	local maker
	for maker in _Fork clone sys_fork sys_clone sys_clone3; do
		run --separate-stderr "$PROGS/linger_sharing" "$maker" # AddressSanitizer has words for clone()
		[ "$output" = "$(printf 'client got=1048582 end=eof\nchild write=ok')" ]
		run logged "$PROGS/linger_sharing" "$maker"
		[ "$output" = "$(printf 'client got=1048582 end=eof\nchild write=ok')" ]
		[[ $maker != sys_* ]] || grep -q 'linger skipped .* reason=shared$' "$BATS_TEST_TMPDIR/stderr"
		[ "$(grep -c 'linger started' "$BATS_TEST_TMPDIR/stderr")" -eq 0 ]
	done
}

# A child that holds nothing of the connection does not stop the close from lingering.
@test "a server with a child of its own still lingers on the connections the child does not hold" {
	run "$PROGS/linger_sharing" bystander
	[ "${lines[1]}" = "client got=100000 end=ECONNRESET" ]
	run logged "$PROGS/linger_sharing" bystander
	[ "${lines[1]}" = "client got=100000 end=eof" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

# Linux keeps a socket open while a write that started before its close() is in the kernel: the
# peer gets all of it. A lingering close's shutdown() would cut that write short (the landed code
# delivered about 4 of the 8 MiB, then EOF); the library sees the write and closes plainly.
@test "a close while another thread is still writing lets that write finish whole" {
	run "$PROGS/linger_sharing" writer
	[ "$output" = "$(printf 'client got=8388608 end=eof\nwriter wrote=8388608')" ]
	run logged "$PROGS/linger_sharing" writer
	[ "$output" = "$(printf 'client got=8388608 end=eof\nwriter wrote=8388608')" ]
	grep -q 'linger skipped .* reason=writing$' "$BATS_TEST_TMPDIR/stderr"
}

# write() is a cancellation point: a thread cancelled while blocked in one never comes back through
# the hook, and its count of writes in the kernel stays up. That socket's close is then a plain one
# (the library cannot know the write is gone); the count ends with the number's next socket, whose
# close lingers as ever.
@test "a write ended by pthread_cancel keeps no later socket of its number from lingering" {
	run "$PROGS/linger_sharing" cancelled
	[ "${lines[3]}" = "client got=6 end=ECONNRESET" ]
	run logged "$PROGS/linger_sharing" cancelled
	[ "${lines[1]}" = "writer cancelled" ]
	[ "${lines[2]}" = "same_number=1" ]
	[ "${lines[3]}" = "client got=6 end=eof" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

# nolinger_listener: set on the listener, which the kernel copies to the connections it completes;
# nolinger_dup_listener: through a copy of the listener's descriptor; nolinger_queued: the listener's
# turned off again after the connection completed, before its accept (it keeps the copy it got);
# nolinger_syscall: set with syscall(SYS_setsockopt), whose value the library cannot see.
@test "a close the program made abortive with SO_LINGER {1, 0}, on the socket or on its listener, still sends RST" {
	local scenario
	for scenario in nolinger nolinger_listener nolinger_dup_listener nolinger_queued nolinger_syscall; do
		run probe "$scenario"
		[ "${lines[2]}" = "peer got=1000 end=ECONNRESET" ]
		run probe_with "$scenario"
		[ "$output" = "$(printf 'close rc=0 errno=0\nsame_number=1\npeer got=1000 end=ECONNRESET')" ]
		! grep -q 'linger' "$BATS_TEST_TMPDIR/stderr"
	done
}

@test "a close whose SO_LINGER {1, 0} the program turned off again lingers as any other" {
	run probe nolinger_undone
	[ "${lines[2]}" = "peer got=1000 end=ECONNRESET" ]          # the loss: an ordinary close's RST
	run probe_with nolinger_undone
	[ "${lines[2]}" = "peer got=1000 end=eof" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

@test "a connection accepted from an inherited listener with SO_LINGER {1, 0}, set where no hook saw, still closes with RST" {
	# A parent without the library makes the listener, then execs a server with it: the library
	# finds it open at load and cannot know its options.
	local server='
import os, socket, sys, time
l = socket.socket(fileno=int(sys.argv[1]))
c = socket.create_connection(l.getsockname())
s, _ = l.accept()
c.sendall(b"q" * 5000)
time.sleep(0.2)
s.sendall(b"a" * 1000)
s.close()
got = b""
try:
    while chunk := c.recv(65536):
        got += chunk
    end = "eof"
except ConnectionResetError:
    end = "ECONNRESET"
print(f"peer got={len(got)} end={end}")'
	local parent='
import os, socket, struct, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", int(sys.argv[2]), 0))
l.bind(("127.0.0.1", 0))
l.listen()
l.set_inheritable(True)
env = dict(os.environ, LD_PRELOAD=sys.argv[3]) if sys.argv[3] else os.environ
os.execve(sys.executable, [sys.executable, "-c", sys.argv[1], str(l.fileno())], env)'
	run python3 -c "$parent" "$server" 0 ""
	[ "$output" = "peer got=1000 end=ECONNRESET" ]              # without SO_LINGER: the RST...
	TCPRARE_LOG=$BATS_TEST_TMPDIR/log run python3 -c "$parent" "$server" 0 "$PRELOAD"
	[ "$output" = "peer got=1000 end=eof" ]                     # ...that the library's linger spares
	run python3 -c "$parent" "$server" 1 ""
	[ "$output" = "peer got=1000 end=ECONNRESET" ]
	TCPRARE_LOG=$BATS_TEST_TMPDIR/log2 run python3 -c "$parent" "$server" 1 "$PRELOAD"
	[ "$output" = "peer got=1000 end=ECONNRESET" ]              # with it, the RST the program chose
	! grep -qs linger "$BATS_TEST_TMPDIR/log2"
}

# linger_silent prints closed=N, then socket counts: base (before accepting), right after the closes,
# and once the count is back at base (or 3 s later). Each client sent one byte the server never read,
# so each close lingers; without the library the closes end at once (with RST).

@test "a lingering socket whose peer sends nothing is closed after TCPRARE_LINGER_IDLE_MS, and its descriptor returned" {
	run "$PROGS/linger_silent" -n 4
	[ "${lines[0]}" = "closed=4" ]
	local base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$base" ]
	TCPRARE_LINGER_IDLE_MS=1000 run logged "$PROGS/linger_silent" -n 4
	[ "${lines[0]}" = "closed=4" ]
	base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$((base + 4))" ]     # the program's numbers are free, the sockets linger
	[ "${lines[3]}" = "after_wait=$base" ]
	[ "$(grep -Ec 'linger timeout fd=[0-9]+ .* bytes=1 ms=[0-9]+ limit=idle$' "$BATS_TEST_TMPDIR/stderr")" -eq 4 ]
}

# The trickling clients are in the same process: TCPRARE_CLOSEWAIT=off lets them write as a peer
# without the library would (the guard would refuse their writes into CLOSE_WAIT).
@test "a lingering socket whose peer keeps sending is closed after TCPRARE_LINGER_MS, and its descriptor returned" {
	run "$PROGS/linger_silent" -n 4 -t
	local base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$base" ]
	TCPRARE_CLOSEWAIT=off TCPRARE_LINGER_MS=1000 \
		run logged "$PROGS/linger_silent" -n 4 -t
	[ "${lines[0]}" = "closed=4" ]
	base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$((base + 4))" ]
	[ "${lines[3]}" = "after_wait=$base" ]
	[ "$(grep -Ec 'linger timeout fd=[0-9]+ .* limit=total$' "$BATS_TEST_TMPDIR/stderr")" -eq 4 ]
}

# linger_many: every client reads only after all 1000 server sides are closed, so a close() that
# waited for its peer would hang until alarm() kills the program.
@test "1000 lingering closes at once all return 0, and every client reads its answer and a FIN instead of RST" {
	run "$PROGS/linger_many"
	[ "$status" -ne 77 ] || skip "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "closed=1000 failed=0" ]
	[ "${lines[1]}" = "eof=0 reset=1000 other=0 answer_bytes=1000000" ]
	TCPRARE_SUMMARY=on run logged "$PROGS/linger_many"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'closed=1000 failed=0\neof=1000 reset=0 other=0 answer_bytes=1000000\nsockets_left=0')" ]
	grep -Eq ' summary .* linger_started=1000 linger_drained=1000 linger_timeout=0 linger_observed=0 linger_skipped=0( |$)' \
		"$BATS_TEST_TMPDIR/stderr"
}

@test "beyond a quarter of RLIMIT_NOFILE lingering sockets, a close is a plain one, counted as skipped" {
	ulimit -Sn 1024 2>/dev/null || skip "cannot set RLIMIT_NOFILE to 1024"
	run "$PROGS/linger_many" -k -n 300                     # -k: keep the limit
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "eof=0 reset=300 other=0 answer_bytes=300000" ]
	TCPRARE_SUMMARY=on run logged "$PROGS/linger_many" -k -n 300
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "eof=256 reset=44 other=0 answer_bytes=300000" ]   # 1024 / 4 lingered at once
	grep -Eq ' summary .* linger_started=256 linger_drained=256 linger_timeout=0 linger_observed=0 linger_skipped=44( |$)' \
		"$BATS_TEST_TMPDIR/stderr"
	grep -Eq 'linger skipped fd=[0-9]+ .* reason=limit' "$BATS_TEST_TMPDIR/stderr"  # rate-limited per process
}

@test "TCPRARE_LINGER_MAX sets how many sockets linger at once, above a quarter of RLIMIT_NOFILE or below it" {
	ulimit -Sn 1024 2>/dev/null || skip "cannot set RLIMIT_NOFILE to 1024"
	TCPRARE_LINGER_MAX=300 TCPRARE_SUMMARY=on run logged "$PROGS/linger_many" -k -n 300
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "eof=300 reset=0 other=0 answer_bytes=300000" ]   # more than the 256 of the default
	grep -Eq ' summary .* linger_started=300 linger_drained=300 linger_timeout=0 linger_observed=0 linger_skipped=0( |$)' \
		"$BATS_TEST_TMPDIR/stderr"
	TCPRARE_LINGER_MAX=100 TCPRARE_SUMMARY=on run logged "$PROGS/linger_many" -k -n 300
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "eof=100 reset=200 other=0 answer_bytes=300000" ]
	grep -Eq ' summary .* linger_started=100 linger_drained=100 linger_timeout=0 linger_observed=0 linger_skipped=200( |$)' \
		"$BATS_TEST_TMPDIR/stderr"
}

@test "observe mode changes nothing the program or its peer sees and logs the close that discards unread input" {
	run probe plain
	local without=$output
	TCPRARE_LINGER=observe run probe_with plain
	[ "$output" = "$without" ]                            # still RST
	grep -Eq 'linger observed fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' \
		"$BATS_TEST_TMPDIR/stderr"
	! grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"

	# Only the unread bytes at the close are seen: whether this server logs depends on timing.
	TCPRARE_LINGER=observe serve "$PRELOAD"
	run "$EXAMPLES/upload_client" "$port"
	cut_short
}

# linger_fork prints how many open sockets the program does not hold (the lingering ones), before the
# fork and in the child, what the child's own client saw of a close with unread input, and the child's
# exit status (or "timeout").
@test "a child forked while sockets linger holds none of them, lingers on its own, and exits" {
	run "$PROGS/linger_fork"
	[ "$output" = "$(printf 'parent_hidden=0\nchild_hidden=0\nchild_peer=ECONNRESET\nchild_exit=0')" ]
	run logged "$PROGS/linger_fork"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'parent_hidden=3\nchild_hidden=0\nchild_peer=eof\nchild_exit=0')" ]
	# Three lingering closes in the parent, one in the child.
	[ "$(awk '/linger started/ { print $1 }' "$BATS_TEST_TMPDIR/stderr" | sort | uniq -c | awk '{ print $1 }' | sort | tr '\n' ' ')" = "1 3 " ]
}

@test "TCPRARE_LINGER=off leaves close() alone and logs nothing" {
	run probe plain
	local without=$output
	[ "${lines[2]}" = "peer got=1000 end=ECONNRESET" ]
	TCPRARE_LINGER=off run probe_with plain
	[ "$output" = "$without" ]
	[ ! -s "$BATS_TEST_TMPDIR/stderr" ]

	TCPRARE_LINGER=off serve "$PRELOAD"
	run "$EXAMPLES/upload_client" "$port"
	cut_short
	stop_server
	[ ! -s "$BATS_TEST_TMPDIR/server.err" ]
}

@test "a socket the program shut down and read to EOF itself, as Apache lingers, gets a plain close" {
	local expected
	expected=$(printf 'peer got=1000 end=eof\nserver drained=5000 eof=1')
	run probe drained
	[ "$output" = "$expected" ]
	run probe_with drained
	[ "$output" = "$expected" ]
	! grep -q 'linger' "$BATS_TEST_TMPDIR/stderr"
}

# The close of an exchange that looks finished (the server read the request, answered last) asks the
# kernel less when every read went through the hooks: data newer than the answer would then be unread.
# A stdio stream reads through glibc's own read, and syscall(SYS_read) is no hooked call either: after
# such a read, the close asks the kernel whose data is newer, as for any other close.
# lingers_after_unseen_read SCENARIO: without the library the client, still sending, is reset.
lingers_after_unseen_read() {
	run probe -u 100 "$1"
	[ "$output" = "$(printf 'close rc=0 errno=0\npeer send=EPIPE\npeer got=2000 end=eof')" ]
	run probe_with -u 100 "$1"
	[ "$output" = "$(printf 'close rc=0 errno=0\npeer send=ok\npeer got=2000 end=eof')" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

@test "a server that read its client's next line through a stdio stream still lingers while the client sends" {
	lingers_after_unseen_read stdio_read
}

@test "a server that read its client's next line with syscall(SYS_read) still lingers while the client sends" {
	lingers_after_unseen_read raw_read
}

# idle_close [unread] CMD...: a server answers a request, then closes the connection after 1.2 s of
# quiet (its idle timeout); 100 ms later its client writes three times, 100 ms apart. Prints each
# write's fate. With "unread", the client's last words before the quiet are left unread. The client's
# own guard is off: this is about the server's close.
idle_close() {
	local unread=0
	[ "$1" != unread ] || { unread=1; shift; }
	UNREAD=$unread TCPRARE_CLOSEWAIT=off "$@" /usr/bin/python3 -c '
import errno, os, socket, time
l = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(l.getsockname())
s = l.accept()[0]; c.sendall(b"request"); s.recv(100); s.sendall(b"answer"); c.recv(100)
if os.environ["UNREAD"] == "1":
    c.sendall(b"bye")
time.sleep(1.2); s.close()
time.sleep(0.1)
fates = []
for _ in range(3):
    try:
        c.send(b"more"); fates.append("sent")
    except OSError as e:
        fates.append(errno.errorcode[e.errno])
    time.sleep(0.1)
print(" ".join(fates))' 2>"$BATS_TEST_TMPDIR/stderr"
}

@test "a server's close of a connection idle for a second is a plain one, so the client's later writes fail instead of vanishing into a drain" {
	run idle_close
	[ "$output" = "sent EPIPE EPIPE" ]     # the first is lost, the peer's RST fails the rest
	run idle_close with_tcprare
	[ "$output" = "sent EPIPE EPIPE" ]     # a linger would have read and dropped all three
	! grep -q 'linger' "$BATS_TEST_TMPDIR/stderr"
}

# An idle close with input unread sends RST at once without the library; a linger would accept the
# client's next writes and throw them away.
@test "a server's idle close with the client's last words unread is a plain one too, so the client's writes fail" {
	run idle_close unread
	local without=$output
	[[ "$without" =~ ^(ECONNRESET|EPIPE) ]]
	run idle_close unread with_tcprare
	[ "$output" = "$without" ]
	[ "$(grep -c 'linger started' "$BATS_TEST_TMPDIR/stderr")" -eq 0 ]
}

# At exit the library gives the sockets still lingering a second to finish (libtcprare(7), LIMITS);
# then the kernel resets the rest, as it would have at once without the library. Each ends with a
# line of its own: the program's last one said only that it had started.
@test "a socket still lingering when the program exits is ended a second later, and the log says so" {
	with_tcprare timeout 20 /usr/bin/python3 -c '
import socket
l = socket.create_server(("127.0.0.1", 0))
print(l.getsockname()[1], flush=True)
s, _ = l.accept()
s.recv(1)                 # the request, all but its first byte left unread
s.sendall(b"answer\n")
s.close()' >"$BATS_TEST_TMPDIR/port" 2>"$BATS_TEST_TMPDIR/stderr" &
	local server=$!
	track "$server"
	for _ in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.05; done
	# The client sends its request and stays, quiet, for longer than the server's grace.
	timeout 10 /usr/bin/python3 -c '
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"request")
time.sleep(3)' "$(cat "$BATS_TEST_TMPDIR/port")" &
	track $!
	wait "$server"
	cat "$BATS_TEST_TMPDIR/stderr"
	grep -Eq 'linger started fd=[0-9]+ .* unread=6$' "$BATS_TEST_TMPDIR/stderr"
	grep -Eq 'linger timeout fd=[0-9]+ .* bytes=6 ms=[0-9]+ limit=exit$' "$BATS_TEST_TMPDIR/stderr"
}

# A single-threaded server's first lingering close sends the FIN itself and leaves the socket for the
# drain thread, which starts with the program's next wait; a program that execs or _exits first
# never starts it. The close says so itself.
@test "a lingering close followed at once by _exit() is logged, though no drain thread ever starts" {
	run with_tcprare timeout 20 /usr/bin/python3 -c '
import os, socket
l = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(l.getsockname())
s, _ = l.accept()
c.sendall(b"request")
s.recv(1)                 # all but the first byte left unread
s.sendall(b"answer\n")
s.close()
os._exit(0)'
	echo "$output"
	[ "$status" -eq 0 ]
	grep -Eq 'linger started fd=[0-9]+ .* unread=6$' <<<"$output"
}
