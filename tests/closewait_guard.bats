#!/usr/bin/env bats
# The CLOSE_WAIT guard: a write into a connection the peer already closed is refused (EPIPE, SIGPIPE
# as the kernel would), instead of "succeeding" and being lost. Each test shows the loss first.

load helpers
load lib/closewait_probe

# These tests read the guard's log lines alone; the listen backlog's own are pinned in
# listen_backlog.bats.
export TCPRARE_BACKLOG=off

teardown() {
	stop_tracked
}

# idle_server and oneway_client from examples/: prints how many distinct messages arrived.
seed_scenario() {
	local preload=$1 out=$BATS_TEST_TMPDIR/server.out port
	: >"$out" # exists before the first poll for the port: awk must not complain into $output
	"$EXAMPLES/idle_server" -t 300 -d 4000 >"$out" 3>&- &
	local server=$!
	track "$server" # started inside `run`: teardown could not know it otherwise
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	LD_PRELOAD=$preload "$EXAMPLES/oneway_client" "$port" 6 450 >"$BATS_TEST_TMPDIR/client.out" 2>"$BATS_TEST_TMPDIR/client.err"
	wait "$server"
	grep '^received msg' "$out" | sort -u | wc -l
}

@test "the seed's one-way client loses messages without tcprare and none with it" {
	run seed_scenario ""
	[ "$output" -lt 6 ]                 # the loss: writes after each idle close vanished
	run seed_scenario "$PRELOAD"
	[ "$output" -eq 6 ]                 # every message arrived: failed writes were resent
	grep -q 'failed (Broken pipe): reconnecting' "$BATS_TEST_TMPDIR/client.out"
}

@test "a write after the peer closed an idle connection fails with EPIPE and SIGPIPE" {
	run probe
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]     # without: accepted, then lost
	[ "${lines[1]}" = "write2 rc=-1 errno=EPIPE sigpipe=1" ] # only the next write fails
	run probe_with
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -Eq 'closewait blocked fd=[0-9]+ local=127.0.0.1:[0-9]+ peer=127.0.0.1:[0-9]+ bytes=5 idle_ms=[0-9]+ quiet_ms=[23][0-9]{2}$' \
		"$BATS_TEST_TMPDIR/stderr"
}

@test "every write entry point is guarded" {
	for method in write writev send sendto sendmsg sendmmsg sendfile; do
		run probe -m "$method"
		[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ] || { echo "without, $method: $output"; false; }
		run probe_with -m "$method"
		[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ] || { echo "with, $method: $output"; false; }
	done
}

@test "MSG_NOSIGNAL gets EPIPE without SIGPIPE, as from the kernel" {
	for method in send sendto sendmsg sendmmsg; do
		run probe -n -m "$method"
		[ "${lines[1]}" = "write2 rc=-1 errno=EPIPE sigpipe=0" ]   # the kernel's own behaviour
		run probe_with -n -m "$method"
		[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=0" ]
	done
}

@test "a program that ignores SIGPIPE just gets EPIPE" {
	run probe -i
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -i
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=0" ]
}

@test "a program with the default SIGPIPE action dies on the refused write, one write earlier" {
	run probe -k
	[ "$status" -eq 141 ]
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]   # the lost write went through first
	run probe_with -k
	[ "$status" -eq 141 ]
	[ "${#lines[@]}" -eq 0 ]
}

@test "non-blocking sockets are guarded" {
	run probe -b
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -b
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

@test "IPv6 sockets are guarded" {
	run probe -6
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -6
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -q 'local=\[::1\]:[0-9]* peer=\[::1\]:' "$BATS_TEST_TMPDIR/stderr"
}

@test "an idle close is seen behind data the client ignored" {
	run probe -q
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -q
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

@test "an idle close that comes with a parting message the client never reads is guarded" {
	run probe -F
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -F
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -Eq 'closewait blocked .* quiet_ms=[0-9]{3}$' "$BATS_TEST_TMPDIR/stderr" # from the greeting on
}

@test "the first write on a connection that the server closed while it stood idle is guarded" {
	run probe -f
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	run probe_with -f
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

# What a peer that half-closes and still reads looks like: its FIN comes with the conversation, not
# after a quiet spell. It may be a close too, and then the write is lost as without the library.
@test "a server that answers and half-closes at once, as nginx does after an early reply, gets the client's later writes" {
	run probe -H -q -w 0 -p 300
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
	run probe_with -H -q -w 0 -p 300
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
	[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
}

@test "a server that half-closes as soon as the connection is up, as a sink does, gets the client's first writes" {
	run probe_with -H -f -w 0 -p 300
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
	[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
}

@test "a client that goes on writing, with long pauses, to a server that half-closed is never refused" {
	run probe_with -H -q -w 0 -p 400 -g 400
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
	[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
}

# EOF says only that the peer stopped sending, not that it still reads: the quiet before the FIN tells.
@test "a program that read the idle close's EOF itself still has its next write refused, not lost" {
	run probe -e
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]   # accepted, and lost
	run probe_with -e
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -q 'closewait blocked fd=[0-9]* .* bytes=5 ' "$BATS_TEST_TMPDIR/stderr"
}

@test "shutting down reading through a dup of the socket is not mistaken for the peer's FIN" {
	run probe -R
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
	run probe_with -R
	[ "$output" = "$(printf 'write1 rc=5 errno=0 sigpipe=0\nwrite2 rc=5 errno=0 sigpipe=0\nserver got 10')" ]
}

@test "a write of zero bytes into CLOSE_WAIT returns 0, as from the kernel" {
	run with_tcprare python3 -c '
import socket, time
l = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(l.getsockname())
l.accept()[0].close(); time.sleep(0.05)
print(c.send(b""))'
	[ "$output" = 0 ]
}

@test "a close after less quiet than TCPRARE_CLOSEWAIT_IDLE_MS is not taken for an idle close" {
	TCPRARE_CLOSEWAIT_IDLE_MS=1000 run probe_with -w 300 -p 1000 # the write, 1.3 s on, is looked at
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
}

@test "by default, a close after a second of quiet is an idle close and a shorter one is not" {
	unset TCPRARE_CLOSEWAIT_IDLE_MS
	run probe_with -w 1200
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	grep -Eq 'closewait blocked fd=[0-9]+ .* bytes=5 idle_ms=[0-9]+ quiet_ms=1[0-9]{3}$' "$BATS_TEST_TMPDIR/stderr"
	run probe_with -w 300 -p 1000
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
}

@test "observe mode changes nothing the program sees and logs the lossy write" {
	run probe
	local without=$output
	TCPRARE_CLOSEWAIT=observe run probe_with
	[ "$output" = "$without" ]
	grep -q 'closewait observed fd=[0-9]* .* bytes=5' "$BATS_TEST_TMPDIR/stderr"
}

@test "TCPRARE_CLOSEWAIT=off leaves writes alone" {
	TCPRARE_CLOSEWAIT=off run probe_with
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
}

@test "TCPRARE_PORTS limits the guard to the listed ports" {
	TCPRARE_PORTS=1-5 run probe_with         # the probe's kernel-chosen ports are never below 1024
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]
	TCPRARE_PORTS=1024-65535 run probe_with
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

# The legal case: the client shut down its sending side after its request and still reads.
# halfclose_server reads a request without waiting for EOF, pauses, then writes a long response.

@test "a server under tcprare answers a half-closing client of its own in full" {
	run "$PROGS/halfclose_pair"
	[ "$output" = "client got 100000 bytes" ]              # legal TCP, without the library
	run with_tcprare "$PROGS/halfclose_pair"
	[ "$output" = "client got 100000 bytes" ]              # and with the default policy
	TCPRARE_CLOSEWAIT_SCOPE=all run with_tcprare "$PROGS/halfclose_pair"
	[ "$output" = "client got 100000 bytes" ]              # the FIN came with the request
}

# A slow uploader pauses (longer than the idle threshold) before its last part and its FIN; the
# server reads to EOF, then answers. Quiet before the FIN, as before an idle close: but a server that
# read its client's EOF is answering a half-close, and is never refused.
@test "a server under tcprare with SCOPE=all answers a slow uploader that paused before half-closing in full" {
	TCPRARE_CLOSEWAIT_SCOPE=all run with_tcprare python3 -c '
import socket, threading, time
listener = socket.create_server(("127.0.0.1", 0))
def serve():
    s = listener.accept()[0]
    while s.recv(65536):
        pass
    s.sendall(bytes(100000))
    s.close()
threading.Thread(target=serve).start()
c = socket.create_connection(listener.getsockname())
c.sendall(b"part 1"); time.sleep(0.5); c.sendall(b"part 2"); time.sleep(0.5)
c.shutdown(socket.SHUT_WR)
got = 0
while chunk := c.recv(65536):
    got += len(chunk)
print("client got", got)'
	[ "$output" = "client got 100000" ]
}

# halfclose_response CLIENT...: a server under tcprare (default policy) answers one half-closing
# client; prints how many bytes the client got. The server is detached from bats' fd 3 and killed
# afterwards, so a failing client can never hang the suite.
halfclose_response() {
	local out=$BATS_TEST_TMPDIR/server.out port
	: >"$out" # exists before the first poll for the port: awk must not complain into $output
	with_tcprare "$PROGS/halfclose_pair" -s 1 >"$out" 2>&1 3>&- &
	local server=$!
	track "$server" # started inside `run`: teardown could not know it otherwise
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	printf 'request\n' | "$@" "$port" | wc -c
	kill "$server" 2>/dev/null || true
	! grep -q 'closewait' "$out"
}
socat_halfclose() { timeout 10 socat -t 5 - "TCP:127.0.0.1:$1"; } # shuts down its sending side at stdin's end
nc_halfclose() { timeout 10 nc -N 127.0.0.1 "$1"; }                # -N: shutdown(SHUT_WR) at stdin's end

@test "a server under tcprare answers socat, which half-closes, in full" {
	command -v socat >/dev/null || skip "socat is not installed"
	run halfclose_response socat_halfclose
	[ "$status" -eq 0 ]
	[ "$output" -eq 100000 ]
}

@test "a server under tcprare answers nc -N, which half-closes, in full" {
	[ "$(nc -h 2>&1 | grep -c -- '[[:space:]]-N[[:space:]]')" -gt 0 ] || skip "this nc has no -N (Debian: netcat-openbsd)"
	run halfclose_response nc_halfclose
	[ "$status" -eq 0 ]
	[ "$output" -eq 100000 ]
}

# A real one-way client against the seed's server: prints how many messages the client believed it
# sent minus how many arrived, i.e. how many were lost silently.
real_client_losses() {
	local client=$1 preload=$2 out=$BATS_TEST_TMPDIR/server.out port believed
	: >"$out" # exists before the first poll for the port: awk must not complain into $output
	# -d: long enough for a python started under a preloaded AddressSanitizer on a busy machine
	"$EXAMPLES/idle_server" -t 300 -d 5000 >"$out" 3>&- &
	local server=$!
	track "$server" # started inside `run`: teardown could not know it otherwise
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	believed=$(LD_PRELOAD=$preload TCPRARE_LOG=off "$client" "$port")
	wait "$server"
	echo $((believed - $(grep -c '^received msg' "$out")))
}

# socat -u only writes to the socket, never reads it. -v logs each message before writing it, and
# socat stops at the first failed write: believed sent = logged - 1.
socat_oneway() {
	local logged
	logged=$( (echo msg 1; sleep 0.5; echo msg 2; sleep 0.5; echo msg 3; sleep 0.3) |
		socat -v -u - "TCP:127.0.0.1:$1" 2>&1 | grep -c '^msg')
	echo $((logged - 1))
}

# python_oneway PORT [reads_eof]: three messages 0.5 s apart; prints how many it believed sent. With
# reads_eof it reads the server's EOF (the idle close) before its second message, as a program on a
# half-open socket does (Node's allowHalfOpen), and writes on.
python_oneway() {
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sent = 0
for i in (1, 2, 3):
    try:
        s.sendall(b"msg %d\n" % i)
        sent += 1
    except OSError:
        break
    if i == 1 and sys.argv[2:] == ["reads_eof"]:
        s.recv(100)  # the server never answers: this returns EOF at its idle close
    time.sleep(0.5)
print(sent)' "$@"
}

@test "socat as a one-way client loses a message without tcprare and none with it" {
	command -v socat >/dev/null || skip "socat is not installed"
	run real_client_losses socat_oneway ""
	[ "$output" -eq 1 ]
	run real_client_losses socat_oneway "$PRELOAD"
	[ "$output" -eq 0 ]
}

@test "a python client loses a message without tcprare and none with it" {
	run real_client_losses python_oneway ""
	[ "$output" -eq 1 ]
	run real_client_losses python_oneway "$PRELOAD"
	[ "$output" -eq 0 ]
}

python_reads_eof() { python_oneway "$1" reads_eof; }

@test "a python client that reads the idle close's EOF and writes on loses a message without tcprare and none with it" {
	run real_client_losses python_reads_eof ""
	[ "$output" -eq 1 ]
	run real_client_losses python_reads_eof "$PRELOAD"
	[ "$output" -eq 0 ]
}

# netcat-openbsd reads the FIN, shuts down reading and writes its next line from stdin. It exits 0
# either way; what differs is whether it was told: observe mode logs the write it lost.
@test "netcat, which reads the server's FIN and writes on, loses the next line without tcprare and is refused it with it" {
	local out=$BATS_TEST_TMPDIR/server.out port mode server
	for mode in observe on; do
		: >"$out"
		"$EXAMPLES/idle_server" -t 300 -d 3000 >"$out" 3>&- &
		server=$!
		track "$server"
		for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
		(echo msg 1; sleep 1; echo msg 2; sleep 0.5; echo msg 3) |
			TCPRARE_CLOSEWAIT=$mode with_tcprare timeout 10 nc 127.0.0.1 "$port" 2>"$BATS_TEST_TMPDIR/nc.$mode" || true
		wait "$server"                                       # it prints what it received as it exits
		[ "$(grep '^received' "$out")" = "received msg 1" ]
	done
	grep -q 'closewait observed fd=[0-9]* .* bytes=6 ' "$BATS_TEST_TMPDIR/nc.observe"
	grep -q 'closewait blocked fd=[0-9]* .* bytes=6 ' "$BATS_TEST_TMPDIR/nc.on"
}

# A socket adopted at start (inherited across exec) or received has no write history here: its first
# write is looked at, and the connection's own quiet before the FIN decides. The library's clock used
# to start at the adoption, so a write in the program's first moments was never checked.
@test "with SCOPE=all, a connection inherited across exec is guarded from its first write" {
	inherited_write() {
		"$@" python3 -c '
import socket, subprocess, sys, time
l = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(l.getsockname())
s = l.accept()[0]
c.sendall(b"hello"); s.recv(100)
time.sleep(0.4)  # an idle connection: quiet for longer than the threshold
s.close()        # the server closes it
time.sleep(0.1)
child = "import errno, os, sys\ntry:\n os.write(int(sys.argv[1]), b\"msg\"); print(\"written\")\n" \
        "except OSError as e:\n print(errno.errorcode[e.errno])"
subprocess.run([sys.executable, "-c", child, str(c.fileno())], pass_fds=[c.fileno()])' 2>"$BATS_TEST_TMPDIR/stderr"
	}
	TCPRARE_CLOSEWAIT_SCOPE=all run inherited_write
	[ "$output" = written ]                       # and lost
	TCPRARE_CLOSEWAIT_SCOPE=all run inherited_write with_tcprare
	[ "$output" = EPIPE ]
	grep -q 'closewait blocked fd=[0-9]* .* bytes=3 ' "$BATS_TEST_TMPDIR/stderr"
}
