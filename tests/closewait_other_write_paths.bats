#!/usr/bin/env bats
# The CLOSE_WAIT guard on the writes that do not go through write() or send() in the program: stdio
# on a socket (glibc writes a stream's buffer through its internal __write), dprintf, bash's
# /dev/tcp, splice; and on connections the library never saw connect() make: sendto() with
# MSG_FASTOPEN, a connect() interrupted by a signal. Each test shows the loss without the library
# first.

load helpers
load lib/closewait_probe

export TCPRARE_BACKLOG=off # the interrupted connect needs the probe's own backlog of 0

teardown() {
	stop_tracked
}

# lost_then_refused "FERROR" METHOD...: through each METHOD, the first write after the idle close is
# accepted (and lost) without the library, and refused with it. FERROR: "ferror" for the stdio methods,
# whose lines end in the stream's error flag (clear, then set).
lost_then_refused() {
	local without=" ferror=0" with=" ferror=1" method
	[ "$1" = ferror ] || without="" with=""
	shift
	for method; do
		run probe -m "$method"
		[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0$without" ] || { echo "without, $method: $output"; return 1; }
		run probe_with -m "$method"
		[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1$with" ] || { echo "with, $method: $output"; return 1; }
	done
}

@test "a line written with fprintf and fflush on a stream fdopen()ed on the socket fails with EPIPE, SIGPIPE and ferror() instead of being lost" {
	run probe -m fprintf
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0 ferror=0" ]     # without: accepted, then lost
	[ "${lines[1]}" = "write2 rc=-1 errno=EPIPE sigpipe=1 ferror=1" ] # glibc's failed write, one later
	run probe_with -m fprintf
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1 ferror=1" ]
	grep -Eq 'closewait blocked fd=[0-9]+ local=127.0.0.1:[0-9]+ peer=127.0.0.1:[0-9]+ bytes=5 idle_ms=[0-9]+ quiet_ms=[0-9]+$' \
		"$BATS_TEST_TMPDIR/stderr"
}

@test "every stdio output entry point on a socket is guarded, on fdopen()'s stream and on stdout" {
	lost_then_refused ferror fputs fwrite fputc putc vfprintf fputs_unlocked fprintf_chk fflush printf puts putchar vprintf
}

# A call that only fills the buffer sends nothing: if it counted as a write, the guard would take the
# connection for busy and let the flush after the idle close through.
@test "bytes that sat in a stream's buffer while the peer timed out do not hide its idle close" {
	run probe -B -m fputs
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0 ferror=0" ]
	run probe_with -B -m fputs
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1 ferror=1" ]
	grep -q 'closewait blocked .* bytes=11 ' "$BATS_TEST_TMPDIR/stderr" # six buffered bytes and the line
}

@test "fclose() of a stream whose buffered bytes would go into an idle-closed connection fails with EPIPE and SIGPIPE" {
	run probe -B -m fclose
	[ "${lines[0]}" = "write1 rc=0 errno=0 sigpipe=0" ] # the flush went into the closed connection
	run probe_with -B -m fclose
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -q 'closewait blocked .* bytes=6 ' "$BATS_TEST_TMPDIR/stderr"
}

@test "dprintf and vdprintf after an idle close fail with EPIPE and SIGPIPE instead of being lost" {
	lost_then_refused "" dprintf vdprintf
}

@test "splice from a pipe into a socket after an idle close fails with EPIPE and SIGPIPE instead of being lost" {
	run probe -m splice
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	[ "${lines[1]}" = "write2 rc=-1 errno=EPIPE sigpipe=1" ] # the kernel's own answer, one write later
	run probe_with -m splice
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

@test "stdio to a server that half-closed at once and reads on gets every line through, with tcprare too" {
	for method in fprintf putchar; do
		run probe -H -q -w 0 -p 300 -m "$method"
		[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0 ferror=0\nwrite2 rc=5 errno=0 sigpipe=0 ferror=0\nserver got 10')" ]
		run probe_with -H -q -w 0 -p 300 -m "$method"
		[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0 ferror=0\nwrite2 rc=5 errno=0 sigpipe=0 ferror=0\nserver got 10')" ]
		[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
	done
}

@test "observe mode changes nothing a stdio program sees and logs its lossy write" {
	run probe -m fprintf
	local without=$output
	TCPRARE_CLOSEWAIT=observe run probe_with -m fprintf
	[ "$output" = "$without" ]
	grep -q 'closewait observed fd=[0-9]* .* bytes=5' "$BATS_TEST_TMPDIR/stderr"
}

# send_lines PRELOAD: a bash script sends three lines over /dev/tcp to idle_server (which closes a
# connection after 1.2 s without data), 1.5 s apart; when echo fails it reconnects and sends the line
# again. Prints the lines the server received.
send_lines() {
	local out=$BATS_TEST_TMPDIR/server.out port
	: >"$out"
	"$EXAMPLES/idle_server" -t 1200 -d 10000 >"$out" 3>&- &
	track $!
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	PORT=$port LD_PRELOAD=$1 bash -c '
		trap "" PIPE
		send() { echo "$1" >&3 || { exec 3<>"/dev/tcp/127.0.0.1/$PORT" && echo "$1" >&3; }; }
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		send "msg 1"; sleep 1.5; send "msg 2"; sleep 1.5; send "msg 3"' 2>"$BATS_TEST_TMPDIR/bash.err" || true
	sleep 0.1 # the server reads the last line
	grep '^received' "$out"
}

@test "a bash script on /dev/tcp that reconnects when echo fails gets every line to a server that closes idle connections" {
	unset TCPRARE_CLOSEWAIT_IDLE_MS # the defaults: a second of quiet
	run send_lines ""
	[ "$output" = "$(printf 'received msg 1\nreceived msg 3')" ] # msg 2 went into the closed connection
	run send_lines "$PRELOAD"
	[ "$output" = "$(printf 'received msg 1\nreceived msg 2\nreceived msg 3')" ]
	[ "$(grep -c 'echo: write error: Broken pipe' "$BATS_TEST_TMPDIR/bash.err")" -eq 2 ]
	grep -q 'bash: closewait blocked fd=1 ' "$BATS_TEST_TMPDIR/bash.err"
}

@test "a connection made by sendto with MSG_FASTOPEN is guarded like one made by connect" {
	[ $(($(cat /proc/sys/net/ipv4/tcp_fastopen) & 1)) -eq 1 ] || skip "client TCP Fast Open is off (net.ipv4.tcp_fastopen)"
	run probe -c fastopen
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -c fastopen
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

@test "a connection whose connect() a signal interrupted, completed by the kernel, is guarded like any other" {
	run probe -c eintr
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -c eintr
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

# fastopen_close: a Python client sends its request with sendto(MSG_FASTOPEN), leaves the answer
# unread and closes: a plain close answers the unread bytes with RST. Prints what the server's next
# read gets.
fastopen_close() {
	/usr/bin/python3 -c '
import socket, time
listener = socket.create_server(("127.0.0.1", 0))
client = socket.socket()
client.sendto(b"request", socket.MSG_FASTOPEN, listener.getsockname())
server, _ = listener.accept()
server.recv(100)
server.send(b"an answer the client never reads")
time.sleep(0.1)
client.close()
time.sleep(0.3)
try:
    print("server read", len(server.recv(100)), "bytes: EOF")
except ConnectionResetError:
    print("server read ECONNRESET")'
}

@test "a connection Python made with sendto(MSG_FASTOPEN) lingers on close like one made with connect" {
	[ $(($(cat /proc/sys/net/ipv4/tcp_fastopen) & 1)) -eq 1 ] || skip "client TCP Fast Open is off (net.ipv4.tcp_fastopen)"
	run --separate-stderr fastopen_close
	[ "$output" = "server read ECONNRESET" ]
	LD_PRELOAD=$PRELOAD run --separate-stderr fastopen_close
	[ "$output" = "server read 0 bytes: EOF" ]
	[[ "$stderr" == *"linger started fd="* ]]
}
