#!/usr/bin/env bats
# A program gives up its last descriptor of a socket not only with close(): dup2() or dup3() of
# another file over it, fclose() of a FILE made with fdopen(), freopen() of one. The kernel's close
# is the same, and so is the loss: with the peer's input unread, RST, and the rest of the answer is
# gone. The library's close is the same too: each test shows the loss without it first, then the
# whole answer with the library at its default settings.

load helpers
load lib/early_answer

# These tests read the linger log lines alone; the listen backlog's own are pinned in listen_backlog.bats.
export TCPRARE_BACKLOG=off

setup() {
	unset TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_SUMMARY TCPRARE_LOG
}

teardown() {
	stop_server
	stop_tracked
}

probe() { "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/linger_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }

# an_upload_cut_short_then_whole HOW: a 16 MiB upload answered early with 1 MiB by a server that gives
# the connection up by HOW; cut short by RST without the library, whole with it.
an_upload_cut_short_then_whole() {
	serve "" -c "$1"
	run "$EXAMPLES/upload_client" "$port"
	cut_short
	stop_server

	serve "$PRELOAD" -c "$1"
	run "$EXAMPLES/upload_client" "$port"
	[ "$status" -eq 0 ]
	[ "$output" = "expected=1048576 received=1048576 error=none" ]
	wait_for_log "linger drained fd=[0-9]+ local=127\.0\.0\.1:$port .* end=eof$"
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

# reset_then_eof SCENARIO OUTPUT: linger_probe SCENARIO prints OUTPUT (printf's format) and then how
# the peer's read ended: RST without the library; EOF with it, which logs one lingering close.
reset_then_eof() {
	run probe "$1"
	[ "$output" = "$(printf "$2 end=ECONNRESET")" ]
	run probe_with "$1"
	[ "$output" = "$(printf "$2 end=eof")" ]
	[ "$(grep -Ec 'linger started fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' \
		"$BATS_TEST_TMPDIR/stderr")" -eq 1 ]
}

@test "dup2() and dup3() over a connection return the number, and the program's epoll set forgets the lingering socket" {
	reset_then_eof dup2 'dup2 rc=fd errno=0\nepoll_events=0\npeer got=1000'
	reset_then_eof dup3 'dup3 rc=fd errno=0\nepoll_events=0\npeer got=1000'
}

# A dup2() that fails leaves the socket where it was: still in the epoll set, still answering, and its
# close() later lingers as any other.
@test "a dup2() onto a connection that fails with EBADF leaves it open, in its epoll set, and working" {
	reset_then_eof dup2bad 'dup2bad rc=-1 errno=EBADF\nepoll_events=1\ndup2bad sent=ok\npeer got=0'
}

# The last 4 bytes are in the FILE's buffer: fclose() writes them, then closes. The number is free
# when fclose() returns (a new socket gets it).
@test "fclose() of an fdopen()ed connection writes its buffer, returns 0, frees the number, and the peer gets a FIN instead of RST" {
	reset_then_eof fclose 'fclose rc=0 errno=0\nsame_number=1\npeer got=1004'
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
	reset_then_eof freopen 'freopen ok=1\nfclose rc=0 errno=0\nsame_number=1\npeer got=1004'
}

@test "with TCPRARE_LINGER=observe or off, dup2() and fclose() change nothing, and observe logs the RST they send" {
	local how without
	for how in dup2 fclose; do
		run probe "$how"
		without=$output
		TCPRARE_LINGER=observe run probe_with "$how"
		[ "$output" = "$without" ]
		grep -Eq 'linger observed fd=[0-9]+ local=127\.0\.0\.1:[0-9]+ peer=127\.0\.0\.1:[0-9]+ unread=5000$' \
			"$BATS_TEST_TMPDIR/stderr"
		! grep -q 'linger started' "$BATS_TEST_TMPDIR/stderr"
		TCPRARE_LINGER=off run probe_with "$how"
		[ "$output" = "$without" ]
		[ ! -s "$BATS_TEST_TMPDIR/stderr" ]
	done
}
