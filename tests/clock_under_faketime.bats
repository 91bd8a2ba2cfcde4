#!/usr/bin/env bats
# The library's clock is the kernel's: a preload that fakes time for the program (libfaketime, with
# its clock frozen or slowed) does not change when the guard looks or when a lingering close ends.
# The library used to read libc's clock_gettime and wait in libc's epoll_wait, which libfaketime
# replaces for every library in the process: each test first shows that clock standing still (or
# running slow) under the same preload (clock_pause), then the library keeping its limits anyway.

load helpers

# These tests read the guard's and the linger's log lines alone.
export TCPRARE_BACKLOG=off

# FAKETIME for libfaketime: a frozen clock, unless a test sets another.
FAKE_TIME="2020-01-01 00:00:00"

# Debian's faketime package; elsewhere wherever the library is usually installed. Under CI a skip
# is a failure: .ci/run installs it.
find_faketime() {
	local lib
	for lib in $(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$') \
		/usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 \
		/usr/local/lib/faketime/libfaketime.so.1; do
		[ -f "$lib" ] && { FAKETIME_LIB=$lib; return 0; }
	done
	[ "${CI:-}" = true ] && { echo "CI needs libfaketime (Debian: apt-get install faketime)" >&2; return 1; }
	skip "libfaketime is not installed (Debian: apt-get install faketime)"
}

setup() {
	unset TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_CLOSEWAIT TCPRARE_LOG_FORMAT
	find_faketime
}

# Under make SANITIZE=1 the programs are instrumented too: the sanitizer runtime comes first in
# every LD_PRELOAD, with or without tcprare.
SANITIZER_PRELOAD=${PRELOAD%"$LIB"}

# faked CMD...: CMD under libfaketime (frozen clock unless FAKE_TIME says otherwise), without tcprare.
faked() { timeout 20 env LD_PRELOAD="$SANITIZER_PRELOAD$FAKETIME_LIB" FAKETIME="$FAKE_TIME" "$@"; }
# faked_with_tcprare CMD...: the same, tcprare preloaded first (after the sanitizer runtime under
# make SANITIZE=1), libfaketime after it; stderr (the log) into $BATS_TEST_TMPDIR/stderr.
faked_with_tcprare() {
	timeout 20 env LD_PRELOAD="$PRELOAD:$FAKETIME_LIB" FAKETIME="$FAKE_TIME" "$@" 2>"$BATS_TEST_TMPDIR/stderr"
}

@test "libfaketime's frozen clock stands still for every library in the program, across a real pause" {
	run "$PROGS/clock_pause" 400
	[ "${lines[0]}" != "monotonic_coarse_ms=0" ]
	run faked "$PROGS/clock_pause" 400
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "monotonic_coarse_ms=0" ] # the clock the library read before: no pause, ever
	[ "${lines[1]}" = "realtime_year=2020" ]
}

# closewait_probe: its server closes after 300 ms of quiet; the client writes 100 ms later.
@test "under libfaketime's frozen clock a write after the peer closed an idle connection still fails with EPIPE" {
	export TCPRARE_CLOSEWAIT_IDLE_MS=200
	run faked "$PROGS/closewait_probe"
	[ "${lines[0]}" = "write1 rc=5 errno=0 sigpipe=0" ]      # without tcprare: accepted, then lost
	run faked "$PROGS/clock_pause" 400
	[ "${lines[0]}" = "monotonic_coarse_ms=0" ]             # what the guard measured the pause with
	run faked_with_tcprare "$PROGS/closewait_probe"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	# the pause the guard saw is the real one (about 400 ms), not the frozen clock's 0
	grep -Eq 'closewait blocked fd=[0-9]+ .* bytes=5 idle_ms=([3-9][0-9]{2}|[0-9]{4}) quiet_ms=[0-9]+$' \
		"$BATS_TEST_TMPDIR/stderr"
}

# idle_server and oneway_client from examples/, the client under libfaketime: prints how many
# distinct messages arrived. Runs inside bats' run, a subshell: the server's pid goes into a file
# for teardown.
seed_scenario() {
	local preload=$1 out=$BATS_TEST_TMPDIR/server.out port server
	: >"$out"
	"$EXAMPLES/idle_server" -t 300 -d 4000 >"$out" 3>&- &
	server=$!
	echo "$server" >"$BATS_TEST_TMPDIR/server.pid"
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	timeout 20 env LD_PRELOAD="$preload" FAKETIME="$FAKE_TIME" "$EXAMPLES/oneway_client" "$port" 6 450 \
		>"$BATS_TEST_TMPDIR/client.out" 2>"$BATS_TEST_TMPDIR/client.err"
	# The server ends by itself 4 s after its start; at most 10 s more before it is stopped.
	for _ in $(seq 200); do kill -0 "$server" 2>/dev/null || break; sleep 0.05; done
	kill "$server" 2>/dev/null
	wait "$server"
	grep '^received msg' "$out" | sort -u | wc -l
}

teardown() {
	local pid
	pid=$(cat "$BATS_TEST_TMPDIR/server.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
}

@test "the seed's one-way client under libfaketime's frozen clock loses messages without tcprare and none with it" {
	export TCPRARE_CLOSEWAIT_IDLE_MS=200
	run seed_scenario "$SANITIZER_PRELOAD$FAKETIME_LIB"
	[ "$output" -lt 6 ]
	[ "$output" -gt 0 ]                 # the client ran
	run seed_scenario "$PRELOAD:$FAKETIME_LIB"
	[ "$output" -eq 6 ]
	grep -q 'failed (Broken pipe): reconnecting' "$BATS_TEST_TMPDIR/client.out"
}

# linger_silent prints closed=N, base (sockets before accepting), after_close (right after the
# closes) and after_wait (once the count is back at base, or 3 s later).
@test "under libfaketime's frozen clock a lingering socket whose peer sends nothing is closed after TCPRARE_LINGER_IDLE_MS" {
	run faked "$PROGS/clock_pause" 400
	[ "${lines[0]}" = "monotonic_coarse_ms=0" ]             # what the drain thread measured with
	TCPRARE_LINGER=on TCPRARE_LINGER_IDLE_MS=1000 run faked_with_tcprare "$PROGS/linger_silent" -n 4
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "closed=4" ]
	local base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$((base + 4))" ]         # lingering
	[ "${lines[3]}" = "after_wait=$base" ]                  # and over within 3 s
	# each ended at its idle limit, a second of real time after it began
	[ "$(grep -Ec 'linger timeout fd=[0-9]+ .* bytes=1 ms=1[0-9]{3} limit=idle$' "$BATS_TEST_TMPDIR/stderr")" -eq 4 ]
}

# The trickling clients are in the same process: TCPRARE_CLOSEWAIT=off lets them write as a peer
# without the library would.
@test "under libfaketime's frozen clock a lingering socket whose peer keeps sending is closed after TCPRARE_LINGER_MS" {
	TCPRARE_CLOSEWAIT=off TCPRARE_LINGER=on TCPRARE_LINGER_MS=1000 \
		run faked_with_tcprare "$PROGS/linger_silent" -n 4 -t
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "closed=4" ]
	local base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$((base + 4))" ]
	[ "${lines[3]}" = "after_wait=$base" ]
	[ "$(grep -Ec 'linger timeout fd=[0-9]+ .* bytes=[1-9][0-9]* ms=1[0-9]{3} limit=total$' "$BATS_TEST_TMPDIR/stderr")" -eq 4 ]
}

# elapsed_ms CMD...: runs CMD (its output in $output, as run's) and sets $elapsed to the real
# milliseconds it took, by bash's own clock (bash is not under libfaketime here).
elapsed_ms() {
	local start=${EPOCHREALTIME/[.,]/}
	run "$@"
	elapsed=$(( (${EPOCHREALTIME/[.,]/} - start) / 1000 ))
}

@test "under libfaketime's clock at half speed a lingering socket still ends after TCPRARE_LINGER_IDLE_MS of real time" {
	FAKE_TIME="+0 x0.5"
	elapsed_ms faked "$PROGS/clock_pause" 400
	[ "${lines[0]#monotonic_coarse_ms=}" -lt 500 ] # 400 ms by the program's clock...
	[ "$elapsed" -ge 700 ]                          # ...took twice that: its clock and its waits run slow
	TCPRARE_LINGER=on TCPRARE_LINGER_IDLE_MS=1000 elapsed_ms faked_with_tcprare "$PROGS/linger_silent" -n 4
	[ "$status" -eq 0 ]
	local base=${lines[1]#base=}
	[ "${lines[2]}" = "after_close=$((base + 4))" ]
	[ "${lines[3]}" = "after_wait=$base" ]
	[ "$(grep -Ec 'linger timeout fd=[0-9]+ .* bytes=1 ms=1[0-9]{3} limit=idle$' "$BATS_TEST_TMPDIR/stderr")" -eq 4 ]
	[ "$elapsed" -lt 1800 ]  # a second of real time, not two
}

@test "under libfaketime's frozen clock the log's timestamps are the kernel's time, not the fake one" {
	run faked "$PROGS/clock_pause" 0
	[ "${lines[1]}" = "realtime_year=2020" ]
	TCPRARE_LOG_FORMAT=json TCPRARE_CLOSEWAIT_IDLE_MS=200 run faked_with_tcprare "$PROGS/closewait_probe"
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	local year
	year=$(date -u +%Y)
	grep -Eq "^\{\"time\":\"$year-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z\",.*\"event\":\"closewait\"" "$BATS_TEST_TMPDIR/stderr"
	! grep -q '"time":"2020-' "$BATS_TEST_TMPDIR/stderr"
}
