#!/usr/bin/env bats
# The intervention log: one line per event, text or JSON, to stderr, a file or syslog, never torn,
# never written into a descriptor the program took over.

load helpers

# These tests read the guard's log lines alone; the listen backlog's own are pinned in
# listen_backlog.bats.
export TCPRARE_BACKLOG=off
# Their peers close at once: every FIN counts here (how the guard tells an idle close from a
# half-close is closewait_guard.bats's business).
export TCPRARE_CLOSEWAIT_IDLE_MS=0

json_check() { # every line of $1 is a JSON object with the common keys; prints the line count
	python3 - "$1" <<'PY'
import json, re, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o["time"]
    for key in ("pid", "prog", "event", "action", "fd", "local", "peer"):
        assert key in o, (key, line)
    n += 1
print(n)
PY
}

@test "a text line names pid, program, event, action, descriptor and both addresses" {
	run --separate-stderr with_tcprare "$PROGS/closewait_probe"
	[[ "${stderr_lines[0]}" =~ ^tcprare\[[0-9]+\]\ closewait_probe:\ closewait\ blocked\ fd=[0-9]+\ local=127\.0\.0\.1:[0-9]+\ peer=127\.0\.0\.1:[0-9]+\ bytes=5\ idle_ms=[0-9]+\ quiet_ms=[0-9]+$ ]]
}

@test "JSON lines parse with a real JSON parser and carry the event's own keys" {
	TCPRARE_LOG_FORMAT=json with_tcprare "$PROGS/closewait_probe" -6 >/dev/null 2>"$BATS_TEST_TMPDIR/log"
	run json_check "$BATS_TEST_TMPDIR/log"
	[ "$output" -ge 1 ]
	python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert (o["event"],o["action"],o["bytes"])==("closewait","blocked",5) and o["peer"].startswith("[::1]:"), o' \
		"$BATS_TEST_TMPDIR/log"
}

@test "TCPRARE_LOG=PATH writes to the file, with %p expanded to the pid" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/tcprare.%p.log" run --separate-stderr with_tcprare "$PROGS/log_storm" -n 3
	[ "$output" = "refused 3" ]
	[ -z "$stderr" ]
	run cat "$BATS_TEST_TMPDIR"/tcprare.*.log
	[ "${#lines[@]}" -ge 1 ]
	[[ "${lines[0]}" == *"closewait blocked"* ]]
}

@test "a log file shared by a parent and its forked child has no torn lines" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/shared.log" TCPRARE_LOG_FORMAT=json \
		run with_tcprare "$PROGS/log_storm" -f -n 300
	[ "${lines[0]}" = "refused 300" ]
	[ "${lines[1]}" = "refused 300" ]
	run json_check "$BATS_TEST_TMPDIR/shared.log"
	[ "$output" -eq 600 ]
	[ "$(python3 -c 'import json,sys; print(len({json.loads(l)["pid"] for l in open(sys.argv[1])}))' "$BATS_TEST_TMPDIR/shared.log")" -eq 2 ]
}

@test "with %p, a forked child logs to a file of its own" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/own.%p.log" run with_tcprare "$PROGS/log_storm" -f -n 5
	[ "$(ls "$BATS_TEST_TMPDIR"/own.*.log | wc -l)" -eq 2 ]
}

@test "with %p, a process and its forked child that then give up root still log to files of their own" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to give it up"
	local dir=$BATS_TEST_TMPDIR/dropped
	mkdir -m 700 "$dir" # only root may create files here: the files must be open before the drop
	TCPRARE_LOG="$dir/%p.log" run with_tcprare "$PROGS/log_storm" -f -u -n 3
	[ "${lines[0]}" = "refused 3" ]
	[ "${lines[1]}" = "refused 3" ]
	[ "$(grep -l 'closewait blocked' "$dir"/*.log | wc -l)" -eq 2 ]
}

@test "a child forked while its parent's other threads are logging logs its own lines" {
	local dir=$BATS_TEST_TMPDIR/forked
	mkdir "$dir"
	TCPRARE_BACKLOG=max TCPRARE_LOG="$dir/%p.log" run with_tcprare "$PROGS/fork_while_logging" 300
	[ "$output" = "forked 300" ]
	[ "$(ls "$dir" | wc -l)" -eq 301 ]                       # the parent and every child
	[ "$(grep -L 'backlog raised' "$dir"/*.log | wc -l)" -eq 0 ] # not one of them silent
}

@test "a program that dup2s a file over stderr never gets log lines in it" {
	local mine=$BATS_TEST_TMPDIR/program.err
	run --separate-stderr with_tcprare "$PROGS/log_storm" -n 3 -r "$mine"
	[ "$output" = "refused 3" ]
	! grep -q tcprare "$mine"
}

@test "a program that closes every descriptor keeps a working log file" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/kept.log" run with_tcprare "$PROGS/log_storm" -n 3 -c
	[ "$output" = "refused 3" ]
	grep -q 'closewait blocked' "$BATS_TEST_TMPDIR/kept.log"
}

@test "after closefrom() closed the log file behind the library's back, it is reopened" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/reopened.log" run with_tcprare "$PROGS/log_storm" -n 3 -C
	[ "$output" = "refused 3" ]
	grep -q 'closewait blocked' "$BATS_TEST_TMPDIR/reopened.log"
}

@test "after closefrom(), the number the log had is the program's again" {
	TCPRARE_LOG="$BATS_TEST_TMPDIR/taken.log" run with_tcprare "$PROGS/log_storm" -n 3 -C -T
	[[ "${lines[0]}" =~ ^took\ [0-9]+:\ 1,\ close_range\ closed\ it:\ 1,\ closed\ it:\ 1$ ]]
	[ "${lines[1]}" = "refused 3" ]
	grep -q 'closewait blocked' "$BATS_TEST_TMPDIR/taken.log"
}

@test "events on one socket are rate-limited, and the count of the rest is kept" {
	# one socket, many refused writes: one line, and the summary counts them all
	run --separate-stderr env TCPRARE_SUMMARY=on LD_PRELOAD="$PRELOAD" python3 -c '
import socket, time
l = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(l.getsockname())
l.accept()[0].close(); time.sleep(0.05)
for _ in range(50):
    try: c.send(b"x")
    except BrokenPipeError: pass'
	[ "$(grep -c 'closewait blocked' <<<"$stderr")" -eq 1 ]
	grep -q 'summary tcp_sockets=3 closewait_blocked=50 closewait_observed=0' <<<"$stderr"   # listener, client, accepted
}

@test "TCPRARE_LOG=off silences the log but the guard still acts" {
	TCPRARE_LOG=off run --separate-stderr with_tcprare "$PROGS/closewait_probe"
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
	[ -z "$stderr" ]
}

@test "the exit summary is one line of every counter, in JSON too" {
	TCPRARE_SUMMARY=on TCPRARE_LOG_FORMAT=json run --separate-stderr with_tcprare "$PROGS/log_storm" -n 2
	python3 -c 'import json,sys; o=json.loads(sys.argv[1].splitlines()[-1]); assert o["event"]=="summary" and o["closewait_blocked"]==2, o' "$stderr"
}

@test "when stderr is a socket, as for inetd-style servers, lines go to syslog and never into it" {
	require_root
	# a private /dev (mount namespace) with our own /dev/log
	run unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec "$@"' sh \
		python3 "$BATS_TEST_DIRNAME/lib/stderr_socket.py" env LD_PRELOAD="$PRELOAD" "$PROGS/closewait_probe"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^syslog:\ \<29\>tcprare\[[0-9]+\]:\ closewait_probe:\ closewait\ blocked\ fd= ]]
	[ "${lines[1]}" = "stderr: " ]
	[ "${lines[2]}" = "stdout: write1 rc=-1 errno=EPIPE sigpipe=1" ]
}

@test "a process that never had a TCP socket prints no summary" {
	TCPRARE_SUMMARY=on run --separate-stderr with_tcprare sh -c 'echo quiet'
	[ "$output" = quiet ]
	[ -z "$stderr" ]
}

@test "a forked child's exit summary counts only its own events" {
	TCPRARE_BACKLOG=max TCPRARE_SUMMARY=on run --separate-stderr with_tcprare python3 -c '
import os, socket, time
l = socket.create_server(("127.0.0.1", 0)); c = socket.create_connection(l.getsockname())
l.accept()[0].close(); time.sleep(0.05)
try: c.send(b"x")
except BrokenPipeError: pass
pid = os.fork()
if pid == 0: socket.socket(); exit(0)
os.waitpid(pid, 0)'
	[ "$(grep -c 'summary .*closewait_blocked=1 ' <<<"$stderr")" -eq 1 ]   # the parent
	[ "$(grep -c 'summary tcp_sockets=1 closewait_blocked=0 ' <<<"$stderr")" -eq 1 ]   # the child
	# the namespace's overflows since the parent's listen() are the parent's to report, not the child's
	[ "$(grep -c 'summary .*netns_listen_overflows=' <<<"$stderr")" -eq 1 ]
	grep -q 'summary .*closewait_blocked=1 .*netns_listen_overflows=' <<<"$stderr"
}

@test "a forked child that had no socket of its own prints no summary" {
	TCPRARE_SUMMARY=on run --separate-stderr with_tcprare /usr/bin/python3 -c '
import os, socket
s = socket.socket()
pid = os.fork()
if pid == 0: exit(0)
os.waitpid(pid, 0)'
	[ "$status" -eq 0 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "tcprare["*"] python3: summary tcp_sockets=1 "* ]] # the parent's alone
}

@test "a program that retitles itself, as nginx workers do, is logged under the name it started with" {
	command -v perl >/dev/null || skip "perl is not installed"
	# Assigning \$0 overwrites the argv memory that glibc's program_invocation_short_name points into.
	TCPRARE_BACKLOG=max run --separate-stderr with_tcprare perl -MIO::Socket::INET -e \
		'$0 = "xx: worker process"; IO::Socket::INET->new(Listen => 5, LocalAddr => "127.0.0.1:0") or die'
	[ "$status" -eq 0 ]
	[[ "${stderr_lines[0]}" =~ ^tcprare\[[0-9]+\]\ perl:\ backlog\ raised\  ]]
}

@test "the summary counts a socket once, however often it was duplicated" {
	TCPRARE_SUMMARY=on run --separate-stderr with_tcprare python3 -c '
import socket; s = socket.socket(); copies = [s.dup(), s.dup()]'
	grep -q 'summary tcp_sockets=1 ' <<<"$stderr"
}
