#!/usr/bin/env bats
# The descriptor table stays true as descriptors are copied, inherited by a child, and closed by routes
# other than close(). The CLOSE_WAIT guard is the witness: its write on the connected socket whose peer
# closed is refused (EPIPE) only while the library rightly knows that descriptor for that socket.
# Where the library changes what the program sees, each test shows the program without it first.

load helpers

# These tests read the guard's log lines alone; the listen backlog's own are pinned in
# listen_backlog.bats.
export TCPRARE_BACKLOG=off
# Their peers close at once: every FIN counts here (how the guard tells an idle close from a
# half-close is closewait_guard.bats's business).
export TCPRARE_CLOSEWAIT_IDLE_MS=0

probe() { "$PROGS/fd_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/fd_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }

# copy_is_guarded SCENARIO: the write on the copy is lost without the library and refused with it.
copy_is_guarded() {
	run probe "$1"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "target rc=5 errno=0" ]          # without: accepted, then lost
	run probe_with "$1"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "target rc=-1 errno=EPIPE" ]
	grep -q "closewait blocked fd=${lines[0]#copy=} " "$BATS_TEST_TMPDIR/stderr"
}

@test "a write on a dup() of a closed connection is refused" {
	copy_is_guarded dup
}

@test "a write on a dup2() copy of a closed connection is refused" {
	copy_is_guarded dup2
	[ "${lines[0]}" = "copy=50" ]
}

@test "a write on a close-on-exec dup3() copy of a closed connection is refused" {
	copy_is_guarded dup3
	[ "${lines[0]}" = "copy=51" ]
}

@test "a write on an F_DUPFD_CLOEXEC copy of a closed connection is refused" {
	copy_is_guarded fdupfd
	[ "${lines[0]}" = "copy=60" ]
}

@test "a forked child's write on the inherited closed connection is refused" {
	run probe fork
	[ "$status" -eq 0 ]
	[ "$output" = "target rc=5 errno=0" ]
	run probe_with fork
	[ "$status" -eq 0 ]
	[ "$output" = "target rc=-1 errno=EPIPE" ]
}

# file_takes_the_number SCENARIO: the socket, whose peer's FIN the library has already seen, goes
# away without close(); a regular file takes its number and is written like any file.
file_takes_the_number() {
	run probe "$1"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'first rc=5 errno=0\nsame_number=1\ntarget rc=5 errno=0')" ]
	run probe_with "$1"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "first rc=-1 errno=EPIPE" ]       # the FIN is cached in the table now
	[ "${lines[1]}" = "same_number=1" ]
	[ "${lines[2]}" = "target rc=5 errno=0" ]           # the file is not taken for the socket
	[ "$(grep -c closewait "$BATS_TEST_TMPDIR/stderr")" -eq 1 ]
}

@test "a file on the number of a socket closed by a raw syscall is written normally" {
	file_takes_the_number rawclose
}

@test "a file on the number of a socket closed by close_range() is written normally" {
	file_takes_the_number closerange
}

@test "a file on the number of a socket closed by fclose() is written normally" {
	file_takes_the_number fclose
}

@test "a file dup2()ed over a closed connection is written normally" {
	run probe dup2over
	[ "$output" = "$(printf 'first rc=5 errno=0\ntarget rc=5 errno=0')" ]
	run probe_with dup2over
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'first rc=-1 errno=EPIPE\ntarget rc=5 errno=0')" ]
}

@test "a failed dup2() onto a closed connection leaves its writes guarded" {
	run probe dup2bad
	[ "$output" = "$(printf 'dup2 rc=-1 errno=EBADF\ntarget rc=5 errno=0')" ]
	run probe_with dup2bad
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "dup2 rc=-1 errno=EBADF" ]
	[ "${lines[1]}" = "target rc=-1 errno=EPIPE" ]
}

@test "a failed dup3() onto a closed connection leaves its writes guarded" {
	run probe dup3bad
	[ "$output" = "$(printf 'dup3 rc=-1 errno=EINVAL\ntarget rc=5 errno=0')" ]
	run probe_with dup3bad
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "dup3 rc=-1 errno=EINVAL" ]
	[ "${lines[1]}" = "target rc=-1 errno=EPIPE" ]
}

@test "a connection accepted on a UNIX listener that took a stale TCP listener's number is left alone" {
	run "$PROGS/stale_listener"
	[ "$output" = "$(printf 'same_number=1\nserver write rc=5 errno=0')" ]
	# accepted sockets are guarded only with SCOPE=all: the widest the guard gets
	TCPRARE_CLOSEWAIT_SCOPE=all run --separate-stderr with_tcprare "$PROGS/stale_listener"
	[ "$output" = "$(printf 'same_number=1\nserver write rc=5 errno=0')" ]
	[ -z "$stderr" ]
	# listen() on the reused number drops the stale entry: only the TCP listener was a TCP socket
	TCPRARE_SUMMARY=on run --separate-stderr with_tcprare "$PROGS/stale_listener"
	[[ "$stderr" == *"summary tcp_sockets=1 "* ]]
}
