#!/usr/bin/env bash
# make valgrind: the demo's three rare states (examples/demo.sh), each program run under valgrind's
# memcheck with the library preloaded, and the library at work in it: the CLOSE_WAIT guard (client),
# the lingering close (server, TCPRARE_LINGER=on) and the raised backlog with the accept-queue watch
# (server; no network namespace), and that last once more with the backlog only observed so that the
# accept queue runs full. Fails on any memcheck error (invalid read or write, uninitialised
# value, bad free, fd misuse) or definite leak, printing valgrind's report, and when the library did
# not load (every program must print its exit summary). Short runs: about 35 s in all.
#
#   tests/fuzz/valgrind_demo.sh [BUILD]     (BUILD: build by default; make all first)
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; exit 1; }
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
lib=$BUILD/libtcprare.so
ex=$BUILD/examples
for f in "$lib" "$ex/idle_server" "$ex/oneway_client" "$ex/early_answer_server" "$ex/upload_client" \
	"$ex/slow_accept_server" "$ex/burst_client"; do
	[ -e "$f" ] || { echo "valgrind: $f is missing: run make first"; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0

# vg NAME PROGRAM ARGS...: PROGRAM under memcheck with the library preloaded, its output in
# $dir/NAME.out, the library's log in $dir/NAME.log, valgrind's report in $dir/NAME.vg.
vg() {
	local name=$1
	shift
	LD_PRELOAD=$lib TCPRARE_LOG="$dir/$name.log" TCPRARE_SUMMARY=on \
		timeout -k 5 120 valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite --track-origins=yes --track-fds=no --trace-children=no \
		--log-file="$dir/$name.vg" "$@" >"$dir/$name.out" 2>"$dir/$name.err"
}

# check NAME RC: valgrind's verdict on one program, and the library's summary line from it.
check() {
	local name=$1 rc=$2
	if [ "$rc" != 0 ] || [ -s "$dir/$name.vg" ]; then
		echo "valgrind: $name: FAILED (exit $rc)"
		cat "$dir/$name.vg" "$dir/$name.err"
		failed=1
	elif ! grep -qE ' summary tcp_sockets=|"event":"summary"' "$dir/$name.log" 2>/dev/null; then
		echo "valgrind: $name: the library wrote no exit summary: was it loaded?"
		cat "$dir/$name.log" "$dir/$name.err" 2>/dev/null
		failed=1
	else
		echo "valgrind: $name: clean; the library's log:"
		sed 's/^/          /' "$dir/$name.log"
	fi
}

wait_port() { # wait_port FILE PID: the port a server printed, once it has
	local port
	for _ in $(seq 600); do
		port=$(awk '/^port/ {print $2}' "$1" 2>/dev/null)
		[ -n "$port" ] && { echo "$port"; return 0; }
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# 1. CLOSE_WAIT: the server closes connections idle for 200 ms, the client writes every 400 ms; the
#    guard, told that 100 ms of quiet make an idle close, fails the write into the closed connection.
vg idle_server "$ex/idle_server" -t 200 -d 9000 &
server=$!
if port=$(wait_port "$dir/idle_server.out" $server); then
	TCPRARE_CLOSEWAIT_IDLE_MS=100 vg oneway_client "$ex/oneway_client" "$port" 6 400
	check oneway_client $?
	echo "          client: $(tail -1 "$dir/oneway_client.out")"
else
	echo "valgrind: idle_server did not start"
	failed=1
fi
wait $server
check idle_server $?

# 2. Lingering close: the server answers 1 MiB early and closes with a 16 MiB upload unread.
TCPRARE_LINGER=on vg early_answer_server "$ex/early_answer_server" -d 6000 &
server=$!
if port=$(wait_port "$dir/early_answer_server.out" $server); then
	vg upload_client "$ex/upload_client" "$port"
	check upload_client $?
	echo "          client: $(cat "$dir/upload_client.out")"
else
	echo "valgrind: early_answer_server did not start"
	failed=1
fi
wait $server
check early_answer_server $?

# 3. Listen backlog: 30 clients at once against listen(fd, 5) and a slow accept loop.
vg slow_accept_server "$ex/slow_accept_server" -w 20 -d 8000 &
server=$!
if port=$(wait_port "$dir/slow_accept_server.out" $server); then
	vg burst_client "$ex/burst_client" -n 30 -t 5000 "$port"
	check burst_client $?
	echo "          client: $(cat "$dir/burst_client.out")"
else
	echo "valgrind: slow_accept_server did not start"
	failed=1
fi
wait $server
check slow_accept_server $?

# 4. The same with the backlog only observed, so that the queue runs full and the accept-queue watch
#    reports it; JSON log lines.
TCPRARE_BACKLOG=observe TCPRARE_LOG_FORMAT=json vg slow_accept_server_observe "$ex/slow_accept_server" -w 20 -d 8000 &
server=$!
if port=$(wait_port "$dir/slow_accept_server_observe.out" $server); then
	TCPRARE_LOG_FORMAT=json vg burst_client_observe "$ex/burst_client" -n 30 -t 5000 "$port"
	check burst_client_observe $?
	echo "          client: $(cat "$dir/burst_client_observe.out")"
else
	echo "valgrind: slow_accept_server (backlog observed) did not start"
	failed=1
fi
wait $server
check slow_accept_server_observe $?

[ $failed = 0 ] && echo "valgrind: ok" || echo "valgrind: FAILED"
exit $failed
