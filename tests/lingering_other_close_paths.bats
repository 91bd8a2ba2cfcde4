#!/usr/bin/env bats
# A program gives up its last descriptor of a socket not only with close(): dup2() or dup3() of
# another file over it, fclose() of a FILE made with fdopen(), freopen() of one. The kernel's close
# is the same, and so is the loss: with the peer's input unread, RST, and the rest of the answer is
# gone. The library's close is the same too: each test shows the loss without it first, then the
# whole answer with the library at its default settings.

load helpers

# These tests read the linger log lines alone; the listen backlog's own are pinned in listen_backlog.bats.
export TCPRARE_BACKLOG=off

setup() {
	unset TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_SUMMARY TCPRARE_LOG
}

teardown() {
	stop_tracked
}

probe() { "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }

# serve PRELOAD HOW: early_answer_server giving up each connection by HOW (-c), in the background,
# with LD_PRELOAD=PRELOAD (empty: without the library). Sets $port; its stderr goes to server.err.
serve() {
	local out=$BATS_TEST_TMPDIR/server.out
	: >"$out"
	LD_PRELOAD=$1 "$EXAMPLES/early_answer_server" -c "$2" -d 20000 >"$out" 2>"$BATS_TEST_TMPDIR/server.err" 3>&- &
	track $!
	port=
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	[ -n "$port" ]
}

stop_server() {
	stop_tracked
	rm -f "$BATS_TEST_TMPDIR/pids"
}

# until_logged PATTERN: until the server's log has a line matching the extended regex (at most 5 s).
until_logged() {
	for _ in $(seq 100); do
		grep -Eq "$1" "$BATS_TEST_TMPDIR/server.err" && return 0
		sleep 0.05
	done
	echo "no line matching '$1' in:" >&2
	cat "$BATS_TEST_TMPDIR/server.err" >&2
	return 1
}

# an_upload_cut_short_then_whole HOW: a 4 MiB upload answered early with 1 MiB by a server that gives
# the connection up by HOW; cut short by RST without the library, whole with it.
an_upload_cut_short_then_whole() {
	serve "" "$1"
	run "$EXAMPLES/upload_client" "$port"
	[ "$status" -eq 1 ]
	[[ "$output" =~ ^expected=1048576\ received=([0-9]+)\ error=ECONNRESET$ ]]
	[ "${BASH_REMATCH[1]}" -lt 1048576 ]
	stop_server

	serve "$PRELOAD" "$1"
	run "$EXAMPLES/upload_client" "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	until_logged "linger drained fd=[0-9]+ local=127\.0\.0\.1:$port .* end=eof$"
	grep -Eq "linger started fd=[0-9]+ local=127\.0\.0\.1:$port peer=127\.0\.0\.1:[0-9]+ unread=[0-9]+$" \
		"$BATS_TEST_TMPDIR/server.err"
}

@test "a server that copies /dev/null over its connection with dup2() cuts the early answer short without tcprare, and delivers it whole with it" {
	an_upload_cut_short_then_whole dup2
}

@test "a server that copies /dev/null over its connection with dup3() cuts the early answer short without tcprare, and delivers it whole with it" {
	an_upload_cut_short_then_whole dup3
}

@test "a server that answers through fdopen() and fclose() cuts the answer short without tcprare, and delivers it whole with it" {
	an_upload_cut_short_then_whole fclose
}

# linger_probe: client and server in one process; the client reads only after the server's call has
# returned, so a call that waited for its peer would never return (alarm).

@test "dup2() over a connection returns the number, and the program's epoll set forgets the lingering socket" {
	run probe dup2
	[ "$output" = "$(printf 'dup2 rc=fd errno=0\nepoll_events=0\npeer got=1000 end=ECONNRESET')" ]
	run probe_with dup2
	[ "$output" = "$(printf 'dup2 rc=fd errno=0\nepoll_events=0\npeer got=1000 end=eof')" ]
	grep -Eq 'linger started fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' "$BATS_TEST_TMPDIR/stderr"
}

@test "dup3() over a connection returns the number, and the program's epoll set forgets the lingering socket" {
	run probe dup3
	[ "$output" = "$(printf 'dup3 rc=fd errno=0\nepoll_events=0\npeer got=1000 end=ECONNRESET')" ]
	run probe_with dup3
	[ "$output" = "$(printf 'dup3 rc=fd errno=0\nepoll_events=0\npeer got=1000 end=eof')" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

# A dup2() that fails leaves the socket where it was: still in the epoll set, still answering, and its
# close() later lingers as any other.
@test "a dup2() onto a connection that fails with EBADF leaves it open, in its epoll set, and working" {
	run probe dup2bad
	[ "$output" = "$(printf 'dup2bad rc=-1 errno=EBADF\nepoll_events=1\ndup2bad sent=ok\npeer got=0 end=ECONNRESET')" ]
	run probe_with dup2bad
	[ "$output" = "$(printf 'dup2bad rc=-1 errno=EBADF\nepoll_events=1\ndup2bad sent=ok\npeer got=0 end=eof')" ]
	[ "$(grep -c 'linger started' "$BATS_TEST_TMPDIR/stderr")" -eq 1 ]
}

# The last 4 bytes are in the FILE's buffer: fclose() writes them, then closes. The number is free
# when fclose() returns (a new socket gets it).
@test "fclose() of an fdopen()ed connection writes its buffer, returns 0, frees the number, and the peer gets a FIN instead of RST" {
	run probe fclose
	[ "$output" = "$(printf 'fclose rc=0 errno=0\nsame_number=1\npeer got=1004 end=ECONNRESET')" ]
	run probe_with fclose
	[ "$output" = "$(printf 'fclose rc=0 errno=0\nsame_number=1\npeer got=1004 end=eof')" ]
	grep -Eq 'linger started fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' "$BATS_TEST_TMPDIR/stderr"
}

@test "an fclose() whose flush fails returns EOF with the write's errno, with or without tcprare" {
	run probe fclose_epipe
	[ "${lines[0]}" = "fclose rc=-1 errno=EPIPE" ]
	[ "${lines[1]}" = "same_number=1" ]
	local without=$output
	run probe_with fclose_epipe
	[ "$output" = "$without" ]
}

@test "freopen() of an fdopen()ed connection onto /dev/null writes its buffer, and the peer gets a FIN instead of RST" {
	run probe freopen
	[ "$output" = "$(printf 'freopen ok=1\nfclose rc=0 errno=0\nsame_number=1\npeer got=1004 end=ECONNRESET')" ]
	run probe_with freopen
	[ "$output" = "$(printf 'freopen ok=1\nfclose rc=0 errno=0\nsame_number=1\npeer got=1004 end=eof')" ]
	grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
}

@test "observe mode logs the dup2() and fclose() that send RST, and changes nothing" {
	local how
	for how in dup2 fclose; do
		run probe "$how"
		local without=$output
		TCPRARE_LINGER=observe run probe_with "$how"
		[ "$output" = "$without" ]
		grep -Eq 'linger observed fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' \
			"$BATS_TEST_TMPDIR/stderr"
		! grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
	done
}

@test "TCPRARE_LINGER=off leaves dup2() and fclose() alone" {
	local how
	for how in dup2 fclose; do
		run probe "$how"
		local without=$output
		TCPRARE_LINGER=off run probe_with "$how"
		[ "$output" = "$without" ]
		[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
	done
}
