#!/usr/bin/env bats
# tcprare-watch: the rare states of programs the library cannot reach, reported live from kernel
# tracepoints. Each test runs its programs in a network namespace of its own (the suite and other
# users of the host make their own resets meanwhile), first shows the loss, then finds it in the
# watcher's output with the right process. The watcher is started before the scenario and waited for
# (its "ready" line on stderr: programs attached); every process a test starts is ended in teardown.
# Needs root. Where tcprare-watch is not built, or the kernel refuses its programs, the test says why
# on a line of its own and skips (not built is a failure under CI=true, whose .ci/run installs the tools).

load helpers

WATCH=$BUILD/tcprare-watch

setup_file() {
	# The Go client is built once per run, from the standard library only: no network is needed.
	export GO_CLIENT=$BATS_FILE_TMPDIR/go_oneway_client GO_PROBLEM=
	if ! command -v go >/dev/null; then
		GO_PROBLEM="go is not installed (Debian: golang-go)"
	elif ! (cd "$BATS_TEST_DIRNAME/go" && CGO_ENABLED=0 GO111MODULE=off GOPROXY=off GOFLAGS= \
		GOCACHE="$BATS_FILE_TMPDIR/gocache" GOPATH="$BATS_FILE_TMPDIR/gopath" \
		timeout 300 go build -o "$GO_CLIENT" oneway_client.go) >"$BATS_FILE_TMPDIR/go.log" 2>&1; then
		GO_PROBLEM="go build failed: $(tail -3 "$BATS_FILE_TMPDIR/go.log")"
	fi
	rm -rf "$BATS_FILE_TMPDIR/gocache" "$BATS_FILE_TMPDIR/gopath"
}

setup() {
	require_root
	if [ ! -x "$WATCH" ]; then
		say "tcprare-watch is not built: make says which of clang, bpftool, libbpf-dev is missing"
		[ "${CI:-}" = true ] && return 1
		skip "tcprare-watch is not built"
	fi
	setup_scratch
	STARTED=()
	WATCHER=
	start_netns
}

teardown() {
	local pid
	[ -z "$WATCHER" ] || kill -TERM "$WATCHER" 2>/dev/null || true
	for pid in "${STARTED[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.1
	for pid in $WATCHER "${STARTED[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	stop_netns
	[ -z "${SCRATCH:-}" ] || { echo "--- watcher's stdout:"; cat "$SCRATCH/watch.out"; echo "--- stderr:"; cat "$SCRATCH/watch.err"; } 2>/dev/null || true
}

# say TEXT: a line of its own in bats' output, beside the test's result.
say() {
	echo "# $*" >&3
}

# start_watcher ARGS...: tcprare-watch ARGS in the background (stdout in $SCRATCH/watch.out), and
# waits (at most 20 s) for its ready line. Where it cannot load its programs, skips with its reason.
start_watcher() {
	"$WATCH" "$@" >"$SCRATCH/watch.out" 2>"$SCRATCH/watch.err" 3>&- &
	WATCHER=$!
	for _ in $(seq 400); do
		grep -q '^tcprare-watch: ready' "$SCRATCH/watch.err" && return 0
		kill -0 "$WATCHER" 2>/dev/null || break
		sleep 0.05
	done
	if ! kill -0 "$WATCHER" 2>/dev/null; then
		local rc=0
		wait "$WATCHER" || rc=$?
		WATCHER=
		if [ "$rc" = 2 ]; then
			say "$(head -1 "$SCRATCH/watch.err")"
			skip "the kernel refused tcprare-watch's programs"
		fi
	fi
	echo "tcprare-watch did not get ready:"
	cat "$SCRATCH/watch.err"
	return 1
}

# stop_watcher [SIGNAL]: ends it (TERM by default), at most 10 s, and sets WATCH_STATUS.
stop_watcher() {
	kill "-${1:-TERM}" "$WATCHER"
	wait_exit "$WATCHER" 10
	WATCH_STATUS=0
	wait "$WATCHER" || WATCH_STATUS=$?
	WATCHER=
}

# wait_exit PID SECONDS: until PID has exited, or fails after SECONDS.
wait_exit() {
	local tenths=$(($2 * 10))
	while kill -0 "$1" 2>/dev/null; do
		((tenths-- > 0)) || { echo "process $1 still running after $2 s"; return 1; }
		sleep 0.1
	done
}

# in_background NAME CMD...: CMD in the namespace, stdout/stderr in $SCRATCH/NAME.{out,err}; sets
# BG_PID, which is CMD's own pid (nsenter and env exec it), ended in teardown.
in_background() {
	local name=$1
	shift
	nsenter -t "$NETNS_PID" -n -- "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" 3>&- &
	BG_PID=$!
	STARTED+=("$BG_PID")
}

# serve NAME CMD...: a server in the background; waits (10 s) for its "port N" line: sets PORT, SERVER.
serve() {
	local name=$1
	in_background "$@"
	SERVER=$BG_PID
	for _ in $(seq 200); do
		grep -q 'port [0-9]' "$SCRATCH/$name.out" 2>/dev/null && break
		kill -0 "$SERVER" 2>/dev/null || break
		sleep 0.05
	done
	PORT=$(grep -o 'port [0-9]*' "$SCRATCH/$name.out" | head -1 | cut -d' ' -f2)
	[ -n "$PORT" ] || { echo "$name did not start:"; cat "$SCRATCH/$name.err"; return 1; }
}

# events EVENT ACTION: the watcher's JSON lines of that event in our namespace.
events() {
	grep -F "\"event\":\"$1\",\"action\":\"$2\"" "$SCRATCH/watch.out" | grep -F "\"netns\":$NETNS_INODE}" || true
}

# key NAME: the value of NAME in each JSON line on stdin (numbers and plain strings).
key() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}

@test "a static Go client loses a message to each idle close, beyond LD_PRELOAD, and watch reports each lossy write with its pid" {
	[ -z "$GO_PROBLEM" ] || { say "$GO_PROBLEM"; [ "${CI:-}" != true ] || return 1; skip "$GO_PROBLEM"; }
	NETNS_INODE=$(stat -Lc %i "/proc/$NETNS_PID/ns/net")
	# LD_PRELOAD cannot act on it: the wrapper says so.
	run "$WRAPPER" -- "$GO_CLIENT"
	[[ $output == *"is statically linked: libtcprare cannot act on it"* ]]

	# Every namespace is watched: ours is only picked out of the output.
	start_watcher --json
	serve server "$EXAMPLES/idle_server" -t 300 -d 20000
	# A pause of 700 ms after each message: the server has closed the connection by then.
	in_background client env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.log" "$GO_CLIENT" "$PORT" 6 700
	local client=$BG_PID
	wait_exit "$client" 30
	sleep 0.5
	stop_watcher
	cat "$SCRATCH/client.out"

	# The loss: messages the client took as sent that never reached the server.
	grep -q '^sent 6 messages, [1-9][0-9]* writes failed and were resent$' "$SCRATCH/client.out"
	local lost
	lost=$(for i in 1 2 3 4 5 6; do grep -qx "received msg $i" "$SCRATCH/server.out" || echo "msg $i"; done)
	echo "lost: $lost"
	[ -n "$lost" ]
	[ "$(wc -l <<<"$lost")" -ge 2 ]
	# The library, preloaded, saw nothing: Go made its system calls itself.
	[ ! -s "$SCRATCH/tcprare.log" ]

	# Each lossy write reported once, with the Go client's pid and the message's size.
	events closewait lost
	[ "$(events closewait lost | wc -l)" -eq "$(wc -l <<<"$lost")" ]
	[ "$(events closewait lost | key pid | sort -u)" = "$client" ]
	[ "$(events closewait lost | key prog | sort -u)" = "$(basename "$GO_CLIENT")" ] # not cut to comm's 15
	[ "$(events closewait lost | key bytes | sort -u)" = 6 ]
	[ "$(events closewait lost | key peer | sort -u)" = "127.0.0.1:$PORT" ]
	# The quiet before the FIN is about the server's idle timeout.
	local quiet
	for quiet in $(events closewait lost | key quiet_ms); do
		[ "$quiet" -ge 250 ]
		[ "$quiet" -le 1000 ]
	done
	[ "$WATCH_STATUS" -eq 0 ]
	grep -q "\"event\":\"summary\",\"closewait_lost\":[1-9]" "$SCRATCH/watch.out"
}

@test "a server that closes with an upload unread sends RST, and watch reports the reset with the server's pid and the unread bytes" {
	NETNS_INODE=$(stat -Lc %i "/proc/$NETNS_PID/ns/net")
	start_watcher --json --netns "/proc/$NETNS_PID/ns/net"
	serve server "$EXAMPLES/early_answer_server" -r 1048576 -d 20000

	# The loss: the answer is cut short by the RST.
	run timeout 20 nsenter -t "$NETNS_PID" -n -- "$EXAMPLES/upload_client" "$PORT"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"error=ECONNRESET"* ]]
	sleep 0.5
	stop_watcher

	events linger reset
	[ "$(events linger reset | wc -l)" -eq 1 ]
	[ "$(events linger reset | key pid)" = "$SERVER" ]
	[ "$(events linger reset | key prog)" = early_answer_server ]
	[ "$(events linger reset | key local)" = "127.0.0.1:$PORT" ]
	[ "$(events linger reset | key unread)" -gt 0 ]
}

@test "a burst overflows a backlog of 5, and watch reports the overflow with the listener's port, pid and drops" {
	NETNS_INODE=$(stat -Lc %i "/proc/$NETNS_PID/ns/net")
	start_watcher --json --netns "/proc/$NETNS_PID/ns/net"
	serve server "$EXAMPLES/slow_accept_server" -w 2 -d 30000

	# The loss, as listen_backlog.bats shows it: the queue overflowed and clients waited.
	local before burst
	before=$(listen_overflows)
	burst=$(timeout 30 nsenter -t "$NETNS_PID" -n -- "$EXAMPLES/burst_client" -n 100 -t 2000 "$PORT")
	echo "burst: $burst, ListenOverflows +$(($(listen_overflows) - before))"
	[ $(($(listen_overflows) - before)) -gt 0 ]
	[[ $burst == *" retransmitted="[1-9]* ]]
	sleep 1.5 # a second line's worth: the drops since the first are shown at most once a second
	stop_watcher

	events accept_queue overflow
	[ "$(events accept_queue overflow | wc -l)" -ge 1 ]
	[ "$(events accept_queue overflow | key pid | sort -u)" = "$SERVER" ]
	[ "$(events accept_queue overflow | key local | sort -u)" = "127.0.0.1:$PORT" ]
	[ "$(events accept_queue overflow | key backlog | sort -u)" = 5 ]
	[ "$(events accept_queue overflow | key drops | awk '{ s += $1 } END { print s }')" -gt 0 ]
}

@test "--duration ends the watcher with the counts per event, and so does SIGTERM" {
	# No namespace of ours has events: every count is 0.
	local start=$SECONDS
	start_watcher --netns "/proc/$NETNS_PID/ns/net" --duration 1
	wait_exit "$WATCHER" 10
	wait "$WATCHER"
	WATCHER=
	[ $((SECONDS - start)) -le 5 ]
	grep -Eq '^[0-9:.]+ tcprare-watch\[[0-9]+\]: summary closewait_lost=0 linger_reset=0 accept_queue_overflow=0$' \
		"$SCRATCH/watch.out"

	# One reset on close, seen by its client (linger_probe is both ends): then SIGTERM.
	start_watcher --json --netns "/proc/$NETNS_PID/ns/net"
	in_background probe "$PROGS/linger_probe" plain
	wait_exit "$BG_PID" 10
	grep -q '^peer got=[0-9]* end=ECONNRESET$' "$SCRATCH/probe.out"
	sleep 0.3
	stop_watcher TERM
	[ "$WATCH_STATUS" -eq 0 ]
	grep -q '"event":"summary","closewait_lost":0,"linger_reset":1,"accept_queue_overflow":0}$' "$SCRATCH/watch.out"
}

@test "tcprare-watch names what is missing when it cannot load, never libbpf's ulimit advice" {
	# Without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, as a container without the capabilities runs it.
	command -v capsh >/dev/null || skip "capsh is not installed (Debian: libcap2-bin)"
	run timeout 20 capsh --drop=cap_bpf,cap_perfmon,cap_sys_admin -- -c "exec '$WATCH' --duration 1"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"needs CAP_BPF and CAP_PERFMON"* ]]
	[[ $output != *ulimit* && $output != *MEMLOCK* ]]
}
