#!/usr/bin/env bats
# tcprare-doctor: a snapshot of the host's connections in CLOSE_WAIT and its listeners, read through
# netlink sock_diag, each with its process and a verdict. Every test first shows the state it looks
# for with the kernel's own tools (ss, /proc/net/netstat), then what the doctor says about it. Servers
# bind 127.0.0.1 or ::1 on a port the kernel picks, and the doctor is pointed at that port (--port), so
# the rest of the host's sockets never decide a test.

load helpers

DOCTOR=$BUILD/tcprare-doctor
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

setup() {
	setup_scratch
	STARTED=()
}

# Everything a test started is ended here, whether the test passed or not; every program also ends
# on its own (-d, or a bounded sleep) should even this be skipped.
teardown() {
	local pid
	for pid in "${STARTED[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${STARTED[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	stop_netns
}

# start NAME CMD...: CMD (a program, not a shell function, so that its pid is $!) in the background,
# stdout in $SCRATCH/NAME.out, stderr in $SCRATCH/NAME.err. Sets STARTED_PID.
start() {
	local name=$1
	shift
	"$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" 3>&- &
	STARTED_PID=$!
	STARTED+=("$STARTED_PID")
}

# port_of NAME: the N of the first "port N" line NAME printed, waiting for it at most 5 s.
port_of() {
	local port
	for _ in $(seq 100); do
		port=$(awk '$1 == "port" { print $2; exit }' "$SCRATCH/$1.out")
		[ -n "$port" ] && { echo "$port"; return 0; }
		sleep 0.05
	done
	echo "$1 did not start: $(cat "$SCRATCH/$1.err")" >&2
	return 1
}

# until_true CMD: runs the shell command CMD every 50 ms until it succeeds, for at most 5 s.
until_true() {
	timeout 5 bash -c "until $1; do sleep 0.05; done" || { echo "never true: $1" >&2; return 1; }
}

# close_waits PORT: connections in CLOSE_WAIT whose peer is PORT, as ss sees them.
close_waits() {
	ss -Htn state close-wait "( dport = :$1 )" | wc -l
}

# json_check PROGRAM: every line of $output is JSON, and PROGRAM (python, given `lines`, the parsed
# objects) asserts on them.
json_check() {
	"$PYTHON" -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <<<"$output"
	"$PYTHON" -c "import json,sys; lines = [json.loads(l) for l in sys.stdin]
$1" <<<"$output"
}

# The seed's scenario, held: idle_server closes each connection after 300 ms of quiet, and two
# one-way clients connect and sit 20 s before their first write. Sets PORT, CLIENT1, CLIENT2.
seed_clients_in_close_wait() {
	start server "$EXAMPLES/idle_server" ${1:+"$1"} -t 300 -d 20000
	PORT=$(port_of server)
	start client1 "$EXAMPLES/oneway_client" ${1:+"$1"} "$PORT" 1 20000
	CLIENT1=$STARTED_PID
	start client2 "$EXAMPLES/oneway_client" ${1:+"$1"} "$PORT" 1 20000
	CLIENT2=$STARTED_PID
	until_true "[ \$(ss -Htn state close-wait '( dport = :$PORT )' | wc -l) -eq 2 ]"
	sleep 1 # the library's idle threshold, 1 s, since the peer last sent anything
}

@test "clients holding connections their server closed are listed in CLOSE_WAIT with their pid and name" {
	seed_clients_in_close_wait
	ss -Htn state close-wait "( dport = :$PORT )"
	[ "$(close_waits "$PORT")" -eq 2 ]

	run -1 "$DOCTOR" --port "$PORT"
	echo "$output"
	local client
	for client in "$CLIENT1" "$CLIENT2"; do
		grep -Eq "^close_wait pid=$client prog=oneway_client local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:$PORT unsent=0 unread=0 eof_read=no last_recv_ms=[0-9]{4,} uid=$(id -u)\$" <<<"$output"
	done
	[ "$(grep -c '^    finding: the peer closed, and has sent nothing for [0-9.]* s; the next write will be lost: run the program under tcprare (TCPRARE_CLOSEWAIT=on)$' <<<"$output")" -eq 2 ]
	grep -q "^tcprare-doctor: [0-9]* findings among 2 connections in CLOSE_WAIT and 1 listener (net.core.somaxconn=[0-9]*)\$" <<<"$output"

	run -1 "$DOCTOR" --json --port "$PORT"
	echo "$output"
	json_check "
import re
waits = [l for l in lines if l['kind'] == 'close_wait']
assert sorted(l['pid'] for l in waits) == sorted([$CLIENT1, $CLIENT2]), waits
for l in waits:
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', l['time']), l
    assert l['prog'] == 'oneway_client' and l['peer'] == '127.0.0.1:$PORT', l
    assert l['unsent'] == 0 and l['unread'] == 0 and l['eof_read'] is False, l
    assert l['last_recv_ms'] >= 1000 and l['finding'] is True, l
    assert l['setting'] == 'TCPRARE_CLOSEWAIT=on', l
assert lines[-1]['kind'] == 'summary' and lines[-1]['close_wait'] == 2, lines[-1]"

	run -1 "$DOCTOR" --pid "$CLIENT1"
	echo "$output"
	grep -q "^close_wait pid=$CLIENT1 prog=oneway_client " <<<"$output"
	[ -z "$(grep "pid=$CLIENT2" <<<"$output")" ]
}

@test "bytes a program never read, and an end it has read, are told apart from ss's Recv-Q" {
	# One connection gets 12 bytes and the server's close, unread; on the other, the client reads the end.
	start holder "$PYTHON" -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
unread = socket.create_connection(s.getsockname()); a, _ = s.accept(); a.sendall(b"hello there\n"); a.close()
ended = socket.create_connection(s.getsockname()); b, _ = s.accept(); b.close()
while ended.recv(100): pass
print("port", s.getsockname()[1], flush=True)
time.sleep(20)'
	local holder=$STARTED_PID
	PORT=$(port_of holder)
	until_true "[ \$(ss -Htn state close-wait '( dport = :$PORT )' | wc -l) -eq 2 ]"
	# The kernel counts the FIN in Recv-Q until the program reads the end: 12 + 1, and 0.
	ss -Htn state close-wait "( dport = :$PORT )"
	[ "$(ss -Htn state close-wait "( dport = :$PORT )" | awk '{ print $1 }' | sort -n | tr '\n' ' ')" = "0 13 " ]

	run "$DOCTOR" --port "$PORT"
	echo "$output"
	grep -q "^close_wait pid=$holder prog=python3 .* unsent=0 unread=12 eof_read=no " <<<"$output"
	grep -q "^close_wait pid=$holder prog=python3 .* unsent=0 unread=0 eof_read=yes " <<<"$output"
	grep -q "^    ok: the program has read the peer's close (end of data) and still holds the connection" <<<"$output"
}

@test "a backlog-5 listener that overflowed under a burst is listed with its drops and the setting that helps" {
	require_root
	start_netns
	in_netns sysctl -qw net.core.somaxconn=4096
	start server nsenter -t "$NETNS_PID" -n -- "$EXAMPLES/slow_accept_server" -w 2 -d 30000
	local server=$STARTED_PID
	PORT=$(port_of server)
	local before after
	before=$(listen_overflows)
	in_netns timeout 20 "$EXAMPLES/burst_client" -n 100 -t 2000 "$PORT"
	after=$(listen_overflows)
	echo "ListenOverflows: $before -> $after"
	[ "$after" -gt "$before" ] # the loss, as the kernel counts it

	run -1 in_netns "$DOCTOR" --port "$PORT"
	echo "$output"
	grep -Eq "^listener pid=$server prog=slow_accept_server local=127\.0\.0\.1:$PORT backlog=5 queue=[0-9]+ drops=[0-9]+ somaxconn=4096 uid=0\$" <<<"$output"
	local drops
	drops=$(sed -n 's/^listener .* drops=\([0-9]*\) .*/\1/p' <<<"$output")
	[ "$drops" -ge $((after - before)) ] # every overflow is one of the listener's own drops
	grep -q "^    finding: accept queue overflowed $drops times (SYNs and final ACKs dropped; clients waited for retransmissions).*: tcprare raises the backlog to net.core.somaxconn, 4096 (TCPRARE_BACKLOG=max)\$" <<<"$output"

	# Handshakes the burst left half-made still reach the full queue for a moment: drops may grow.
	run -1 in_netns "$DOCTOR" --json --port "$PORT"
	json_check "
l = lines[0]
assert l['kind'] == 'listener' and l['pid'] == $server and l['prog'] == 'slow_accept_server', l
assert l['local'] == '127.0.0.1:$PORT' and l['backlog'] == 5 and l['drops'] >= $drops, l
assert l['somaxconn'] == 4096 and l['finding'] is True and l['setting'] == 'TCPRARE_BACKLOG=max', l"

	# The same server under tcprare: the backlog is somaxconn, the burst drops nothing, nothing found.
	start fixed nsenter -t "$NETNS_PID" -n -- env LD_PRELOAD="$PRELOAD" TCPRARE_LOG=off \
		"$EXAMPLES/slow_accept_server" -w 2 -d 30000
	PORT=$(port_of fixed)
	in_netns timeout 30 "$EXAMPLES/burst_client" -n 100 -t 20000 "$PORT"
	run -0 in_netns "$DOCTOR" --port "$PORT"
	echo "$output"
	grep -Eq "^listener pid=$STARTED_PID prog=slow_accept_server local=127\.0\.0\.1:$PORT backlog=4096 queue=0 drops=0 " <<<"$output"
	grep -q '^    ok: nothing dropped$' <<<"$output"
}

@test "IPv6 listeners and connections in CLOSE_WAIT are listed with their [::1] addresses" {
	[ -e /proc/net/if_inet6 ] || skip "no IPv6 on this host"
	seed_clients_in_close_wait -6
	ss -Htn state close-wait "( dport = :$PORT )"
	[ "$(close_waits "$PORT")" -eq 2 ]
	start listener "$EXAMPLES/slow_accept_server" -6 -d 20000
	local listener=$STARTED_PID listener_port
	listener_port=$(port_of listener)

	run -1 "$DOCTOR" --port "$PORT"
	echo "$output"
	grep -Eq "^close_wait pid=$CLIENT1 prog=oneway_client local=\[::1\]:[0-9]+ peer=\[::1\]:$PORT unsent=0 unread=0 eof_read=no " <<<"$output"
	grep -Eq "^close_wait pid=$CLIENT2 prog=oneway_client local=\[::1\]:[0-9]+ peer=\[::1\]:$PORT " <<<"$output"
	grep -q "^listener pid=[0-9]* prog=idle_server local=\[::1\]:$PORT backlog=16 " <<<"$output"

	run -1 "$DOCTOR" --json --port "$listener_port"
	echo "$output"
	json_check "
l = lines[0]
assert l['kind'] == 'listener' and l['pid'] == $listener and l['local'] == '[::1]:$listener_port', l
assert l['backlog'] == 5 and l['finding'] is True, l"
}

@test "the exit status is 0 when nothing is found, 1 for findings and 2 for a bad option" {
	start roomy "$EXAMPLES/slow_accept_server" -b 4096 -d 20000
	local roomy
	roomy=$(port_of roomy)
	run -0 "$DOCTOR" --port "$roomy"
	echo "$output"
	grep -q '^    ok: nothing dropped$' <<<"$output"
	grep -q '^tcprare-doctor: nothing found among 0 connections in CLOSE_WAIT and 1 listener ' <<<"$output"

	start small "$EXAMPLES/slow_accept_server" -d 20000
	PORT=$(port_of small)
	run -1 "$DOCTOR" --port="$PORT"
	echo "$output"
	grep -q '^    finding: a backlog of 5 overflows under a burst of connects; nothing dropped yet: ' <<<"$output"
	grep -q '^tcprare-doctor: 1 finding among 0 connections in CLOSE_WAIT and 1 listener ' <<<"$output"

	run -2 "$DOCTOR" --port=0
	[ "$output" = "tcprare-doctor: option '--port' needs a number from 1 to 65535, not '0'
Try 'tcprare-doctor --help'." ]
	run -2 "$DOCTOR" --pid=12x
	run -2 "$DOCTOR" --json=yes
	[ "${lines[0]}" = "tcprare-doctor: option '--json=yes' takes no value" ]
	run -2 "$DOCTOR" --frobnicate
	[ "${lines[0]}" = "tcprare-doctor: unknown option '--frobnicate'" ]
	run -2 "$DOCTOR" --pid 2147483647 # a pid no process has
	[ "$output" = "tcprare-doctor: no process 2147483647" ]
	run -0 "$DOCTOR" --help
	grep -q '^Exit status: 0 nothing found, 1 findings, 2 trouble' <<<"$output"
	run -0 "$DOCTOR" --version
	[[ "$output" =~ ^tcprare-doctor\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unprivileged user sees root's sockets, with their owner hidden and a note that says so" {
	require_root
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	local as_nobody=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
	seed_clients_in_close_wait
	ss -Htn state close-wait "( dport = :$PORT )"
	[ "$(close_waits "$PORT")" -eq 2 ]

	run -1 "${as_nobody[@]}" "$DOCTOR" --port "$PORT"
	echo "$output"
	[ "$(grep -c '^close_wait pid=- prog=- owner=hidden local=127\.0\.0\.1:[0-9]* peer=127\.0\.0\.1:'"$PORT"' unsent=0 unread=0 eof_read=no last_recv_ms=[0-9]* uid=0$' <<<"$output")" -eq 2 ]
	grep -q "^listener pid=- prog=- owner=hidden local=127\.0\.0\.1:$PORT backlog=16 " <<<"$output"
	grep -q "^tcprare-doctor: the owner of 3 sockets is hidden (pid=- owner=hidden): /proc shows a process's descriptors only to its own user and root ([0-9]* of [0-9]* processes hidden from uid $(id -u nobody)); run as root to see them\$" <<<"$output"

	run -1 "${as_nobody[@]}" "$DOCTOR" --json --port "$PORT"
	json_check "
for l in lines[:-1]:
    assert l['pid'] is None and l['prog'] is None and l['owner'] == 'hidden' and l['uid'] == 0, l
assert lines[-1]['hidden_owners'] == 3 and lines[-1]['hidden_processes'] > 0, lines[-1]"

	run -2 "${as_nobody[@]}" "$DOCTOR" --pid "$CLIENT1"
	[ "$output" = "tcprare-doctor: cannot read /proc/$CLIENT1/fd: it belongs to another user; run as that user or root" ]

	# root sees who they are
	run -1 "$DOCTOR" --port "$PORT"
	grep -q "^close_wait pid=$CLIENT1 prog=oneway_client " <<<"$output"
	[ -z "$(grep 'owner=hidden' <<<"$output")" ]
}

@test "make install puts tcprare-doctor and its man page in place, and make uninstall removes them" {
	local repo=$BATS_TEST_DIRNAME/..
	mkdir -p "$SCRATCH/src"
	cp -pR "$repo/Makefile" "$repo/docs" "$repo/diag" "$SCRATCH/src/"
	# Installs what the suite runs against: nothing is rebuilt (-o), and neither the outer make's flags
	# nor an LD_PRELOAD reach this make.
	local make=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u LD_PRELOAD make -s -C "$SCRATCH/src" BUILD="$BUILD"
		PREFIX="$SCRATCH/prefix" DESTDIR= -o "$BUILD/libtcprare.so" -o "$BUILD/tcprare" -o "$BUILD/tcprare-doctor")
	"${make[@]}" install
	run -0 "$SCRATCH/prefix/bin/tcprare-doctor" --version
	[ "$output" = "$("$DOCTOR" --version)" ]
	[ -s "$SCRATCH/prefix/share/man/man1/tcprare-doctor.1" ]
	if command -v groff >/dev/null; then
		run -0 env -u LD_PRELOAD groff -man -ww -z "$SCRATCH/prefix/share/man/man1/tcprare-doctor.1"
		[ -z "$output" ]
	fi
	"${make[@]}" uninstall
	[ ! -e "$SCRATCH/prefix/bin/tcprare-doctor" ]
	[ ! -e "$SCRATCH/prefix/share/man/man1/tcprare-doctor.1" ]
}
