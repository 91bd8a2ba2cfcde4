#!/usr/bin/env bats
# Hardening: every intervention at once under threads and fork, and programs that do what the
# library's own bookkeeping would rather they did not: run out of descriptors, close every number at
# startup, put their files over the library's log descriptor, run out of address space.
#
# Most of these are must-not-harm tests: there is no rare state to repair, and the program, run without
# the library, shows what it must see with it too. Where the library's part can be shown to act (or
# to step aside), the test says so.

load helpers

setup() {
	unset TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_CLOSEWAIT TCPRARE_CLOSEWAIT_SCOPE \
		TCPRARE_CLOSEWAIT_IDLE_MS TCPRARE_BACKLOG TCPRARE_PORTS TCPRARE_LOG TCPRARE_LOG_FORMAT TCPRARE_SUMMARY
	LOG=$BATS_TEST_TMPDIR/tcprare.log
}

# all_on CMD...: CMD with every intervention on, each at its most active setting.
all_on() {
	TCPRARE_LINGER=on TCPRARE_CLOSEWAIT=on TCPRARE_CLOSEWAIT_SCOPE=all TCPRARE_CLOSEWAIT_IDLE_MS=0 \
		TCPRARE_BACKLOG=max "$@"
}

# stress [with_tcprare] [ARGS...]: the stress program (tests/progs/stress.c); its complaints go to a
# file, shown when a test fails.
stress() {
	if [ "${1:-}" = with_tcprare ]; then
		shift
		with_tcprare "$PROGS/stress" "$@" 2>"$BATS_TEST_TMPDIR/stderr"
	else
		"$PROGS/stress" "$@" 2>"$BATS_TEST_TMPDIR/stderr"
	fi
}

show_stderr() { cat "$BATS_TEST_TMPDIR/stderr" >&2; false; }

# The stress program checks what must hold with or without the library (every byte a write reported
# as written arrives, no descriptor leaks, no stale epoll event, no reset but where a close leaves
# input unread); -t adds what the interventions promise. Without the library both rare states occur
# in it, so the second run shows them repaired, not absent. Under SANITIZE=1 its children run the
# program anew (-x): AddressSanitizer's allocator is not fork-safe, and a child forked while another
# thread held its lock deadlocks in malloc, with or without the library.
@test "threads and forked children sharing, copying, half-closing and epoll-registering sockets lose nothing, leak nothing and never hang with every intervention on" {
	local args=()
	[ "${SANITIZE:-}" != 1 ] || args=(-x)
	run stress "${args[@]}"
	[ "$status" -eq 0 ] || show_stderr
	[[ "${lines[0]}" =~ ^ok\ connections=2400\ bytes=[0-9]+$ ]]
	# Without the library: unread closes reset, and late writes into CLOSE_WAIT are accepted and lost.
	[[ "${lines[1]}" =~ ^unread\ eof=0\ reset=([0-9]+)\ .*\ late\ refused=0\ lost=([0-9]+)\ nofin=0\  ]]
	[ "${BASH_REMATCH[1]}" -gt 0 ]
	[ "${BASH_REMATCH[2]}" -gt 0 ]

	TCPRARE_LOG=$LOG TCPRARE_SUMMARY=on all_on run stress with_tcprare -t "${args[@]}"
	[ "$status" -eq 0 ] || show_stderr
	[[ "${lines[0]}" =~ ^ok\ connections=2400\ bytes=[0-9]+$ ]]
	[[ "${lines[1]}" =~ ^unread\ eof=[1-9][0-9]*\ reset=0\ .*\ late\ refused=[1-9][0-9]*\ lost=0\ nofin=0\  ]]
	# The parent and its six children each lingered, none timed out. A close skips lingering only where
	# a child really held the socket at that moment: accepted just before a fork() in another thread,
	# and still open in the child until it closes what it inherited (the program counts those apart).
	[ "$(grep -c ' summary .* linger_started=[1-9][0-9]* .*linger_timeout=0 linger_observed=0 ' "$LOG")" -eq 7 ]
	! grep 'linger skipped' "$LOG" | grep -v ' reason=shared$'
}

# --- descriptor exhaustion ---

# harden_emfile lowers its soft RLIMIT_NOFILE to 64, lets three sockets linger, then opens files until
# EMFILE and, while no descriptor is free, tries socket/accept/dup and closes three more sockets with
# unread input. The library needs a descriptor for a lingering close: with none free, that close is
# a plain one (the kernel's reset, as without the library) and the program is none the wiser.
@test "a program that runs out of descriptors while sockets linger keeps its own EMFILE, every close returns 0, and the lingering sockets still finish" {
	run "$PROGS/harden_emfile"
	[ "$status" -ne 77 ] || skip "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^filled=[0-9]+\ errno=EMFILE$ ]]
	[ "${lines[1]}" = "exhausted socket=EMFILE accept=EMFILE dup=EMFILE" ]
	[ "${lines[2]}" = "closes rc=0,0,0 errno_kept=1" ]
	[ "${lines[3]}" = "before eof=0 reset=3 answer_bytes=300" ]
	[ "${lines[4]}" = "during eof=0 reset=3 answer_bytes=300" ]
	[ "${lines[5]}" = "sockets_left=1 other_added=0" ]

	TCPRARE_LINGER=on TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_emfile"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^filled=[0-9]+\ errno=EMFILE$ ]]
	[ "${lines[1]}" = "exhausted socket=EMFILE accept=EMFILE dup=EMFILE" ]
	[ "${lines[2]}" = "closes rc=0,0,0 errno_kept=1" ]
	[ "${lines[3]}" = "before eof=3 reset=0 answer_bytes=300" ]   # lingered, and finished meanwhile
	[ "${lines[4]}" = "during eof=0 reset=3 answer_bytes=300" ]   # plain closes, as without the library
	[ "${lines[5]}" = "sockets_left=1 other_added=3" ]             # the drain thread's epoll instance and pipe
	grep -Eq 'linger skipped fd=[0-9]+ .* reason=descriptors$' "$LOG"
}

# With -f FREE the process's first lingering close comes when only FREE descriptors are free. The
# process has one thread, so no drain thread yet (it starts after a close lingers), and no
# descriptors: the close needs four, the drain's epoll instance and doorbell pipe, which the first
# lingering close makes, and its copy of the socket. With fewer it is a plain one, and nothing of the
# attempt stays open (other_added: the drain's epoll instance and pipe, once they are made).
@test "when no descriptor is left for the lingering copy, the close is a plain one and nothing of the attempt stays open" {
	run "$PROGS/harden_emfile" -f 0
	[ "$status" -ne 77 ] || skip "$output"
	[ "$output" = "fresh free=0 close=0 errno_kept=1 client=reset other_added=0" ]
	TCPRARE_LINGER=on TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_emfile" -f 0
	[ "$output" = "fresh free=0 close=0 errno_kept=1 client=reset other_added=0" ]
	[ "$(grep -Ec 'linger skipped fd=[0-9]+ .* reason=descriptors$' "$LOG")" -eq 1 ]
	TCPRARE_LINGER=on TCPRARE_LOG=/dev/null run with_tcprare "$PROGS/harden_emfile" -f 3
	[ "$output" = "fresh free=3 close=0 errno_kept=1 client=reset other_added=0" ]
	TCPRARE_LINGER=on TCPRARE_LOG=/dev/null run with_tcprare "$PROGS/harden_emfile" -f 4
	[ "$output" = "fresh free=4 close=0 errno_kept=1 client=eof other_added=3" ]
	TCPRARE_LINGER=on TCPRARE_LOG=/dev/null run with_tcprare "$PROGS/harden_emfile" -f 8
	[ "$output" = "fresh free=8 close=0 errno_kept=1 client=eof other_added=3" ]
}

# --- the drain's own descriptors closed behind the library's back (a raw close_range()) ---

# harden_doorbell closes one end of the doorbell pipe, then at once a socket that lingers (its close
# rings), idles a second, then closes 4 more. The library before this test: the reading end gone, the
# ring's write killed the program with SIGPIPE; the writing end gone, the drain thread spun on the
# pipe's end of file (about 100 ticks a second), and the 4 were reset.
@test "a doorbell end closed behind the library's back neither kills the program with SIGPIPE nor spins the drain thread, and lingering resumes" {
	local end
	for end in read write; do
		run "$PROGS/harden_doorbell" "$end"
		[ "$status" -eq 0 ]
		[ "${lines[0]}" = "closed=none next=reset" ]
		[ "${lines[2]}" = "after eof=0 reset=4" ]                     # the loss, without the library
		TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_doorbell" "$end"
		[ "$status" -eq 0 ]
		[[ "${lines[0]}" =~ ^closed=$end\ next=(eof|reset)$ ]]
		[[ "${lines[1]}" =~ ^cpu_ticks=([0-9]+)$ ]]
		[ "${BASH_REMATCH[1]}" -lt 50 ]                               # idle, not spinning
		[ "${lines[2]}" = "after eof=4 reset=0" ]
	done
}

# harden_linger_end closes 1000 sockets that would linger, one every 100 us, while the drain thread,
# its descriptors closed, ends: each must be closed by it (FIN after a linger, or RST as a plain
# close), none handed over behind its last walk over the slots and left open (about 100 were).
@test "sockets handed over while the drain thread ends, its descriptors closed behind its back, each get their FIN or RST" {
	run "$PROGS/harden_linger_end"
	[ "$output" = "eof=0 reset=1000 stranded=0" ]
	TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_linger_end"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^eof=[0-9]+\ reset=[0-9]+\ stranded=0$ ]]
}

# --- a daemoniser's close loop ---

# Stevens' daemon_init closes every number below sysconf(_SC_OPEN_MAX). The library's log file is
# refused with EBADF, exactly what a number that is not open gives, so the loop cannot tell; every
# number the program really had is closed. harden_daemon writes its report to a file it opens after
# the loop (its stdout is gone).
@test "a daemoniser that closes every descriptor up to the limit at startup keeps the log file and lingering closes working, and meets no descriptor it did not open" {
	run "$PROGS/harden_daemon" -o "$BATS_TEST_TMPDIR/without"
	[ "$status" -eq 0 ]
	run cat "$BATS_TEST_TMPDIR/without"
	[[ "${lines[0]}" =~ ^loop\ open_before=([0-9]+)\ closed=([0-9]+)\ refused=0\ other_errors=0$ ]]
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
	[ "${lines[1]}" = "reopened 0 1 2 report=3" ]
	[ "${lines[2]}" = "served eof=0 reset=3 errors=0" ]                  # plain closes: reset

	TCPRARE_LINGER=on TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_daemon" -o "$BATS_TEST_TMPDIR/with"
	[ "$status" -eq 0 ]
	run cat "$BATS_TEST_TMPDIR/with"
	[[ "${lines[0]}" =~ ^loop\ open_before=([0-9]+)\ closed=([0-9]+)\ refused=1\ other_errors=0$ ]]
	[ "${BASH_REMATCH[1]}" = "$(( BASH_REMATCH[2] + 1 ))" ]
	[[ "${lines[1]}" =~ ^refused\ [0-9]+\ "$LOG"$ ]]                      # the log file, and nothing else
	[ "${lines[2]}" = "reopened 0 1 2 report=3" ]                        # the low numbers are the program's
	[ "${lines[3]}" = "served eof=3 reset=0 errors=0" ]                  # lingered
	[ "$(grep -c 'linger started' "$LOG")" -eq 3 ]                       # logged after the loop
	[ "$(grep -c 'linger drained .* end=eof$' "$LOG")" -eq 3 ]
}

# --- the log descriptor taken over ---

# intervention_log.bats covers dup2 over stderr, close_range and closefrom over the log file; here the
# program dup2s, then dup3s, onto the very number the log file has (found through /proc/self/fd).
@test "a program that dup2s or dup3s its own file over the library's log descriptor gets the number, and the log goes on in the log file" {
	local mine=$BATS_TEST_TMPDIR/mine
	TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_logfd" "$LOG" "$mine"
	[ "$status" -eq 0 ]
	[ "$output" = "found=1 dup2=1 dup3=1 moved=1 cloexec=1 closed=1,1" ]
	[ "$(cat "$mine")" = "$(printf 'mine 1\nmine 2')" ]                 # the program's lines, and only those
	[ "$(grep -c 'backlog raised' "$LOG")" -eq 3 ]                       # before, between and after
}

# Four threads log (a listen each, 1,200 in all) while the main thread closes the log file's descriptor
# behind the library's back 50 times, as closefrom() would. Whichever thread logs next reopens it, one
# at a time: `make tsan` runs the same program under ThreadSanitizer, where reopening from two threads
# at once used to race. A line written in the instant between the check and the close is lost.
@test "threads that log while the log file is closed behind the library's back keep logging into one reopened file and leak nothing" {
	TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_logswitch" "$LOG"
	[ "$status" -eq 0 ]
	[ "$output" = "log_fds=1 other_fds_added=0" ]
	[ "$(grep -c 'backlog raised' "$LOG")" -ge 1150 ]
	[ "$(grep -cv 'backlog raised' "$LOG")" -eq 0 ]
}

# The copy that a lingering close leaves looks like an unused number to the program, so the program
# may dup2 onto it, here while the drain thread is reading the peer's stream. The linger ends there;
# the drain thread must never close the program's descriptor that took the copy's place.
@test "a program that dup2s onto the number of a lingering copy keeps that number" {
	TCPRARE_LINGER=on TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_dup2_copy"
	[ "$status" -eq 0 ]
	[ "$output" = "lingered=50 kept=50" ]
}

# --- out of memory ---

# harden_enomem sets RLIMIT_AS to the process's current size, so every new mapping fails: the table
# page for descriptor 300 (dup2's target) and the drain thread's stack. The write through 300 into
# CLOSE_WAIT shows the library's part: refused when the table knows 300 (no limit), passed through as
# without the library when it could not record it (its peer closes at once, so every FIN counts:
# TCPRARE_CLOSEWAIT_IDLE_MS=0). Under SANITIZE=1 the drain thread is left out:
# AddressSanitizer's own pthread_create dies when it cannot map the new thread's state.
@test "with no address space left, dup2, write and close still work and keep errno, and the library only does less" {
	local linger=on control_client=eof
	[ "${SANITIZE:-}" != 1 ] || { linger=off; control_client=reset; }
	run "$PROGS/harden_enomem"
	[ "$status" -ne 77 ] || skip "$output"
	[ "$output" = "dup2=300 errno_kept=1 write=1 close=0 linger_close=0 errno_kept=1 client=reset" ]

	TCPRARE_CLOSEWAIT_IDLE_MS=0 TCPRARE_LINGER=$linger TCPRARE_LOG=/dev/null run with_tcprare "$PROGS/harden_enomem" -n   # the control: no limit
	[ "$output" = "dup2=300 errno_kept=1 write=EPIPE close=0 linger_close=0 errno_kept=1 client=$control_client" ]

	# The close lingers (it sends the FIN itself); the drain thread cannot start under the limit, and
	# the read that tried ends the linger, after the FIN.
	TCPRARE_CLOSEWAIT_IDLE_MS=0 TCPRARE_LINGER=$linger TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_enomem"
	[ "$status" -ne 77 ] || skip "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "dup2=300 errno_kept=1 write=1 close=0 linger_close=0 errno_kept=1 client=$control_client" ]
}

# --- the drain thread's start ---

# The first lingering close makes the drain's epoll instance and pipe; a close another thread makes
# meanwhile waits for them (once it was a plain one, "linger skipped reason=thread", and its peer was
# reset). harden_linger_start makes the first closes of fresh processes from 8 threads at once:
# without the library all reset; with it, every one lingers.
@test "closes made by several threads at once as the process's first lingering closes all linger" {
	run "$PROGS/harden_linger_start"
	[ "$output" = "rounds=20 closes=160 eof=0 reset=160" ]
	TCPRARE_LINGER=on TCPRARE_LOG=$LOG run with_tcprare "$PROGS/harden_linger_start"
	[ "$output" = "rounds=20 closes=160 eof=160 reset=0" ]
	! grep -q 'linger skipped' "$LOG"
}

confined() { TCPRARE_SUMMARY=on with_tcprare "$PROGS/seccomp_server" "$1" 2>"$BATS_TEST_TMPDIR/stderr"; }

# A program that confines itself with seccomp allows the system calls it makes itself and has any
# other kill it: one of the library's (a close's TCP_INFO, the drain thread's epoll_wait) did. The
# library now stands down as the filter goes in, while its own calls are still allowed, and says so.
@test "a program that installs a seccomp filter, with prctl() or through syscall() as libseccomp does, is never killed for a system call of the library's" {
	[ "${SANITIZE:-}" != 1 ] || skip "the sanitizer runtime makes system calls of its own at exit, which the filter refuses"
	for mode in prctl syscall tsync; do
		run "$PROGS/seccomp_server" "$mode"
		[ "$status" -eq 0 ]
		[ "$output" = served ]
		run confined "$mode"
		cat "$BATS_TEST_TMPDIR/stderr"
		[ "$status" -eq 0 ]          # 159 (SIGSYS) before
		[ "$output" = served ]
		grep -q '^tcprare: seccomp_server installs a seccomp filter: every repair is off from here on' "$BATS_TEST_TMPDIR/stderr"
		! grep -q ' summary ' "$BATS_TEST_TMPDIR/stderr" # its getpid() the filter refused
	done
	# tsync: the drain thread, running for the first connection's lingering close, ended it first
	grep -Eq 'linger (timeout|skipped) fd=[0-9]+ .* (limit|reason)=seccomp$' "$BATS_TEST_TMPDIR/stderr"
}

# libseccomp's seccomp_init() and systemd's checks ask whether the kernel has seccomp with calls
# that fail and install nothing: the library goes on as before.
@test "asking whether the kernel has seccomp, as libseccomp and systemd do, leaves every repair on" {
	[ "${SANITIZE:-}" != 1 ] || skip "the sanitizer runtime makes system calls of its own at exit, which the filter refuses"
	run confined probe
	cat "$BATS_TEST_TMPDIR/stderr"
	[ "$status" -eq 0 ]
	[ "$output" = probed ]
	! grep -q 'installs a seccomp filter' "$BATS_TEST_TMPDIR/stderr"
	grep -Eq 'linger started fd=[0-9]+ .* unread=4999$' "$BATS_TEST_TMPDIR/stderr"
}
