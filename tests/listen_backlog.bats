#!/usr/bin/env bats
# The listen backlog: a small backlog is raised to net.core.somaxconn (or TCPRARE_BACKLOG=N), so a burst
# of connects no longer overflows the accept queue, where Linux drops SYNs and final ACKs and clients
# wait a second or more for a retransmission. Each test runs in its own network namespace, so its
# ListenOverflows counter and somaxconn are its own; the tests of the loss show it first.

load helpers

setup() {
	require_root
	setup_scratch
	start_netns
	in_netns sysctl -qw net.core.somaxconn=4096 # the default since Linux 5.4, whatever the kernel
	SERVERS=()
}

teardown() {
	local pid
	for pid in "${SERVERS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	stop_netns
}

# serve NAME PRELOAD CMD...: starts CMD in the namespace in the background with LD_PRELOAD=PRELOAD,
# stdout in $SCRATCH/NAME.out and stderr in $SCRATCH/NAME.err, and waits for its first line. Sets
# SERVER (its pid, killed in teardown) and PORT (from "port N" in that line, if there is one).
serve() {
	local name=$1 preload=$2
	shift 2
	nsenter -t "$NETNS_PID" -n -- env LD_PRELOAD="$preload" "$@" \
		>"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" 3>&- &
	SERVER=$!
	SERVERS+=("$SERVER")
	for _ in $(seq 200); do
		[ -s "$SCRATCH/$name.out" ] && break
		kill -0 "$SERVER" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$SCRATCH/$name.out" ] || { echo "$name did not start:"; cat "$SCRATCH/$name.err"; return 1; }
	PORT=$(awk '{ for (i = 1; i < NF; i++) if ($i == "port") { print $(i + 1); exit } }' "$SCRATCH/$name.out")
}

# stop SERVER: ends a server before the test does.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# The backlog of the TCP listener on PORT, as the kernel applied it: for a LISTEN socket ss's Send-Q.
backlog_of() {
	in_netns ss -Hltn "sport = :$1" | awk '{ print $3 }'
}

# value NAME LINE: the number after NAME= in a line of key=value fields.
value() {
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

# burst N DEADLINE_MS [-6]: burst_client against $PORT, never preloaded; sets BURST (its line) and
# OVERFLOWS (how much the namespace's ListenOverflows grew meanwhile).
burst() {
	local before
	before=$(listen_overflows)
	BURST=$(in_netns "$EXAMPLES/burst_client" ${3:+"$3"} -n "$1" -t "$2" "$PORT")
	OVERFLOWS=$(($(listen_overflows) - before))
	echo "burst: $BURST overflows=$OVERFLOWS" # shown when a test fails
}

# The loss, as the seed saw it: the queue overflowed and clients waited for retransmissions.
assert_loss() {
	[ "$OVERFLOWS" -gt 0 ]
	[ "$(value retransmitted "$BURST")" -gt 0 ]
	[ "$(value served "$BURST")" -lt "$1" ]
}

# Every client served at once: no overflow, no retransmission, nothing failed or pending.
assert_all_served() {
	[ "$OVERFLOWS" -eq 0 ]
	[ "$(value served "$BURST")" -eq "$1" ]
	[ "$(value failed "$BURST")" -eq 0 ]
	[ "$(value pending "$BURST")" -eq 0 ]
	[ "$(value retransmitted "$BURST")" -eq 0 ]
}

@test "a burst overflows a backlog of 5 and stalls clients without tcprare, and is served in full with it" {
	serve without "" "$EXAMPLES/slow_accept_server" -w 2 -d 30000
	burst 100 2000
	assert_loss 100
	stop "$SERVER"

	serve with "$PRELOAD" "$EXAMPLES/slow_accept_server" -w 2 -d 30000
	[ "$(backlog_of "$PORT")" -eq 4096 ]
	burst 100 20000
	assert_all_served 100
	grep -q "^tcprare\[[0-9]*\] slow_accept_server: backlog raised fd=3 local=127.0.0.1:$PORT peer=- requested=5 asked=4096 effective=4096\$" \
		"$SCRATCH/with.err"
}

@test "python's http.server drops a burst without tcprare and serves it all under the wrapper" {
	mkdir "$SCRATCH/www"
	echo hello >"$SCRATCH/www/index.html"
	# Debian's python (socketserver's backlog of 5), unbuffered so that "Serving HTTP on ... port N" shows
	local http=(/usr/bin/python3 -u -m http.server --bind 127.0.0.1 --directory "$SCRATCH/www" 0)
	serve without "" "${http[@]}"
	burst 200 2000
	assert_loss 200
	stop "$SERVER"

	# Under SANITIZE=1 the sanitizer runtimes stand in for an LD_PRELOAD the user already has.
	local before=${PRELOAD%"$LIB"}
	serve with "${before%:}" "$WRAPPER" -- "${http[@]}"
	[ "$(backlog_of "$PORT")" -eq 4096 ]
	burst 200 20000
	assert_all_served 200
	grep -q "python3: backlog raised fd=[0-9]* local=127.0.0.1:$PORT peer=- requested=5 asked=4096 effective=4096\$" \
		"$SCRATCH/with.err"
}

@test "an IPv6 listener's backlog is raised too" {
	serve without "" "$EXAMPLES/slow_accept_server" -6 -d 30000
	[ "$(backlog_of "$PORT")" -eq 5 ]
	stop "$SERVER"

	serve with "$PRELOAD" "$EXAMPLES/slow_accept_server" -6 -w 2 -d 30000
	[ "$(backlog_of "$PORT")" -eq 4096 ]
	grep -q "backlog raised fd=3 local=\[::1\]:$PORT peer=- requested=5 asked=4096 effective=4096\$" "$SCRATCH/with.err"
	burst 100 20000 -6
	assert_all_served 100
}

@test "a backlog that net.core.somaxconn cuts short is reported as truncated" {
	in_netns sysctl -qw net.core.somaxconn=300
	# the library asks 1000 for a program asking 5
	TCPRARE_BACKLOG=1000 serve fixed "$PRELOAD" "$EXAMPLES/slow_accept_server" -d 30000
	[ "$(backlog_of "$PORT")" -eq 300 ]
	grep -q "backlog truncated fd=3 local=127.0.0.1:$PORT peer=- requested=5 asked=1000 effective=300 sysctl=net.core.somaxconn\$" \
		"$SCRATCH/fixed.err"
	stop "$SERVER"

	# the program asks 1000 itself
	serve own "$PRELOAD" "$EXAMPLES/slow_accept_server" -b 1000 -d 30000
	[ "$(backlog_of "$PORT")" -eq 300 ]
	grep -q "backlog truncated fd=3 local=127.0.0.1:$PORT peer=- requested=1000 asked=1000 effective=300 sysctl=net.core.somaxconn\$" \
		"$SCRATCH/own.err"
	stop "$SERVER"

	# INT_MAX, like a negative backlog, asks for the kernel's maximum (systemd-socket-activate does),
	# and gets it: nothing to report
	serve max "$PRELOAD" "$EXAMPLES/slow_accept_server" -b 2147483647 -d 30000
	[ "$(backlog_of "$PORT")" -eq 300 ]
	! grep -q backlog "$SCRATCH/max.err"
}

@test "a program's own larger backlog is never lowered" {
	TCPRARE_BACKLOG=64 serve server "$PRELOAD" "$EXAMPLES/slow_accept_server" -b 1000 -d 30000
	[ "$(backlog_of "$PORT")" -eq 1000 ]
	[ ! -s "$SCRATCH/server.err" ]          # nothing raised, nothing truncated
}

@test "a program that calls listen() again on its listener keeps the raised backlog" {
	local relisten='
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(5)
s.listen(7)
print("port", s.getsockname()[1], flush=True)
time.sleep(30)'
	serve without "" /usr/bin/python3 -c "$relisten"
	[ "$(backlog_of "$PORT")" -eq 7 ]       # the second call sets the backlog
	stop "$SERVER"

	serve with "$PRELOAD" /usr/bin/python3 -c "$relisten"
	[ "$(backlog_of "$PORT")" -eq 4096 ]
	[ "$(grep -c 'backlog raised' "$SCRATCH/with.err")" -eq 2 ]
	grep -q "backlog raised fd=3 local=127.0.0.1:$PORT peer=- requested=5 asked=4096 effective=4096\$" "$SCRATCH/with.err"
	grep -q "backlog raised fd=3 local=127.0.0.1:$PORT peer=- requested=7 asked=4096 effective=4096\$" "$SCRATCH/with.err"
}

@test "observe mode leaves the backlog at 5 and the loss as it was, and reports the full accept queue" {
	# The server exits on its own after 4 s, so that it prints its summary.
	TCPRARE_BACKLOG=observe TCPRARE_SUMMARY=on serve server "$PRELOAD" "$EXAMPLES/slow_accept_server" -w 2 -d 4000
	[ "$(backlog_of "$PORT")" -eq 5 ]
	burst 100 2000
	assert_loss 100                         # the same loss as without the library
	wait "$SERVER"
	local log=$SCRATCH/server.err
	cat "$log"
	grep -q "backlog observed fd=3 local=127.0.0.1:$PORT peer=- requested=5 would_ask=4096 effective=5\$" "$log"
	grep -q "accept_queue full fd=3 local=127.0.0.1:$PORT peer=- waiting=[0-9]* backlog=5 times=1\$" "$log"
	local summary
	summary=$(grep ' summary ' "$log")
	[ "$(value backlog_raised "$summary")" -eq 0 ]
	[ "$(value backlog_observed "$summary")" -eq 1 ]
	[ "$(value accept_queue_full "$summary")" -gt 0 ]
	[ "$(value netns_listen_overflows "$summary")" -gt 0 ]
}

@test "TCPRARE_BACKLOG=off leaves listen() alone and logs nothing" {
	TCPRARE_BACKLOG=off serve server "$PRELOAD" "$EXAMPLES/slow_accept_server" -d 30000
	[ "$(backlog_of "$PORT")" -eq 5 ]
	[ ! -s "$SCRATCH/server.err" ]
}

@test "TCPRARE_BACKLOG=64 gives a program asking for 5 a backlog of exactly 64" {
	TCPRARE_BACKLOG=64 serve server "$PRELOAD" "$EXAMPLES/slow_accept_server" -d 30000
	[ "$(backlog_of "$PORT")" -eq 64 ]
	grep -q "backlog raised fd=3 local=127.0.0.1:$PORT peer=- requested=5 asked=64 effective=64\$" "$SCRATCH/server.err"
}

@test "a UNIX-domain listener is never touched" {
	serve server "$PRELOAD" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(5)
print("listening", flush=True)
time.sleep(30)' "$SCRATCH/sock"
	# for a listening UNIX socket too, ss's Send-Q is the backlog
	[ "$(in_netns ss -Hlx | awk -v path="$SCRATCH/sock" '$5 == path { print $4 }')" -eq 5 ]
	[ ! -s "$SCRATCH/server.err" ]
}
