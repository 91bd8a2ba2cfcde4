# Shared by every .bats file: where the build is, and how to run a program with and without tcprare.
bats_require_minimum_version 1.5.0


BUILD=${TCPRARE_BUILD:?run the suite with make test}
LIB=$BUILD/libtcprare.so
PROGS=$BUILD/progs
EXAMPLES=$BUILD/examples
WRAPPER=$BUILD/tcprare

# Under make SANITIZE=1 the library needs the sanitizer runtime loaded first.
if [ "${SANITIZE:-}" = 1 ]; then
	PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so):$LIB"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
else
	PRELOAD=$LIB
fi

# with_tcprare CMD...: CMD with the library preloaded (TCPRARE_* from the caller's environment).
with_tcprare() {
	LD_PRELOAD=$PRELOAD "$@"
}

# Every test gets its own scratch directory, removed afterwards by bats.
setup_scratch() {
	SCRATCH=$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/tcprare.XXXXXX")
}

# --- background processes ---
# track PID: a background process of this test, for stop_tracked in teardown. Kept in a file, not a
# variable, because a test may start it inside `run` or $(...), subshells whose variables teardown
# never sees: a pid known only there outlived the suite (redis-server, tcprare 0.1.0).
track() {
	echo "$1" >>"$BATS_TEST_TMPDIR/pids"
}

# stop_tracked: in teardown, every process track recorded, whatever the test's outcome.
stop_tracked() {
	local pid
	[ -f "$BATS_TEST_TMPDIR/pids" ] || return 0
	while read -r pid; do
		stop_process "$pid"
	done <"$BATS_TEST_TMPDIR/pids"
}

# stop_process PID: SIGTERM, up to 5 s to exit (nginx's master stops its worker first), then SIGKILL.
# Only a process of this session: the pid of one that is gone may since be another run's (tests/run
# gives the suite a session of its own: tests/no_leftovers).
stop_process() {
	[ "$(session_of "$1")" = "$(session_of $$)" ] || return 0
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
}

# session_of PID: its session, field 6 of /proc/PID/stat (counted after the command name, which may
# hold spaces); nothing if PID is gone.
session_of() {
	local line
	read -r line 2>/dev/null <"/proc/$1/stat" || return 0
	read -r _ _ _ line _ <<<"${line##*) }"
	echo "$line"
}

# skip_unless_root: tests that need network namespaces. Under CI a skip is a failure.
require_root() {
	if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
		[ "${CI:-}" = true ] && { echo "CI needs root and unshare -n for this test" >&2; return 1; }
		skip "needs root and unshare -n"
	fi
}

# --- network namespaces (listen_backlog.bats) ---
# start_netns: a private network namespace with lo up, held open by a sleeping process $NETNS_PID.
# Tests that need it call require_root first; stop_netns in teardown ends the holder.
start_netns() {
	unshare -n sleep 600 3>&- &
	NETNS_PID=$!
	# unshare(2) runs just before the exec of sleep: wait until the holder is in its own namespace.
	for _ in $(seq 200); do
		[ "$(readlink "/proc/$NETNS_PID/ns/net")" != "$(readlink /proc/$$/ns/net)" ] && break
		sleep 0.01
	done
	[ "$(readlink "/proc/$NETNS_PID/ns/net")" != "$(readlink /proc/$$/ns/net)" ] ||
		{ echo "start_netns: no new network namespace" >&2; return 1; }
	in_netns ip link set lo up
}

# in_netns CMD...: CMD (a program, not a shell function) inside the namespace of start_netns.
in_netns() {
	nsenter -t "$NETNS_PID" -n -- "$@"
}

stop_netns() {
	[ -z "${NETNS_PID:-}" ] || kill "$NETNS_PID" 2>/dev/null || true
}

# listen_overflows: TcpExt ListenOverflows of the namespace (the first "TcpExt:" line names the
# columns, the second holds the values; "MPTcpExt:" lines do not match $1).
listen_overflows() {
	awk '$1 == "TcpExt:" { if (!col) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i }
		else { print $col; exit } }' "/proc/$NETNS_PID/net/netstat"
}
