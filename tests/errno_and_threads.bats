#!/usr/bin/env bats
# A pass-through hook is invisible: every hooked call returns what libc returns and leaves errno as
# libc leaves it, on success and on failure. And the descriptor table holds up under threads and fork.

load helpers

# errno_diff [ARG]: the probe's output without the library, then with it; prints the difference.
errno_diff() {
	"$PROGS/errno_probe" "$@" >"$BATS_TEST_TMPDIR/without" 2>"$BATS_TEST_TMPDIR/without.stderr"
	with_tcprare "$PROGS/errno_probe" "$@" >"$BATS_TEST_TMPDIR/with" 2>"$BATS_TEST_TMPDIR/with.stderr"
	diff "$BATS_TEST_TMPDIR/without" "$BATS_TEST_TMPDIR/with"
}

@test "every hooked call returns the same value and errno with tcprare as without" {
	run errno_diff
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# the probe ran to its end, and its successes left the sentinel errno alone
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/without")" = "close rc=0 errno=4242" ]
	grep -qx 'write rc=5 errno=4242' "$BATS_TEST_TMPDIR/with"
	grep -qx 'accept4_eagain rc=-1 errno=EAGAIN' "$BATS_TEST_TMPDIR/with"
	grep -qx 'connect_refused rc=-1 errno=ECONNREFUSED' "$BATS_TEST_TMPDIR/with"
}

@test "calls and errno stay the same when every write is checked" {
	TCPRARE_CLOSEWAIT_IDLE_MS=0 run errno_diff
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/without")" = "close rc=0 errno=4242" ]
}

# reversed_range [with_tcprare]: only the close_range() calls with first > last.
reversed_range() { "$@" "$PROGS/errno_probe" reversed-range 2>"$BATS_TEST_TMPDIR/stderr"; }

@test "close_range() with its bounds reversed fails with EINVAL, as without tcprare" {
	run reversed_range
	[ "${lines[0]}" = "close_range_reversed_einval rc=-1 errno=EINVAL" ]
	local without=$output
	run reversed_range with_tcprare
	[ "$output" = "$without" ]
}

@test "write entry points given bad pointers or too many buffers fail as without tcprare" {
	run errno_diff bad-arguments
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	grep -qx 'writev_efault rc=-1 errno=EFAULT' "$BATS_TEST_TMPDIR/without"
}

# hammer [with_tcprare]: the stress program; its complaints land in stderr, shown if a test fails.
hammer() { "$@" "$PROGS/hammer" 2>"$BATS_TEST_TMPDIR/stderr"; }

@test "threads and forked children share and recycle sockets without a byte lost or a descriptor leaked" {
	run hammer
	[ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/stderr"; false; }
	[ "$output" = "ok bytes=1200000" ]
	run hammer with_tcprare
	[ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/stderr"; false; }
	[ "$output" = "ok bytes=1200000" ]
}

@test "the threaded stress passes when every write is checked" {
	TCPRARE_CLOSEWAIT_IDLE_MS=0 run hammer with_tcprare
	[ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/stderr"; false; }
	[ "$output" = "ok bytes=1200000" ]
}
