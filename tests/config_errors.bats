#!/usr/bin/env bats
# Every TCPRARE_* variable with a bad value: one line on stderr naming the variable, the value and
# what it accepts; the setting keeps its default; the host program's output and exit code unchanged.

load helpers

host() { with_tcprare sh -c 'echo host output; exit 7'; }

# expect_rejected VAR VALUE PATTERN: exactly one stderr line, naming VAR=VALUE and matching PATTERN.
expect_rejected() {
	local var=$1 value=$2 pattern=$3
	run --separate-stderr env "$var=$value" LD_PRELOAD="$PRELOAD" sh -c 'echo host output; exit 7'
	[ "$status" -eq 7 ] || { echo "exit $status for $var=$value"; return 1; }
	[ "$output" = "host output" ] || { echo "stdout changed for $var=$value: $output"; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "want one line for $var=$value, got: $stderr"; return 1; }
	[[ "$stderr" == "tcprare: $var=$value is not valid: expected "* ]] || { echo "bad line: $stderr"; return 1; }
	[[ "$stderr" =~ $pattern ]] || { echo "line lacks '$pattern': $stderr"; return 1; }
}

@test "good settings print nothing and change nothing" {
	TCPRARE_CLOSEWAIT=observe TCPRARE_CLOSEWAIT_IDLE_MS=0 TCPRARE_CLOSEWAIT_SCOPE=all TCPRARE_LINGER=on \
	TCPRARE_LINGER_MS=5000 TCPRARE_LINGER_IDLE_MS=2000 TCPRARE_LINGER_MAX=100 TCPRARE_BACKLOG=1024 TCPRARE_PORTS=80,8000-8100 TCPRARE_LOG=stderr \
	TCPRARE_LOG_FORMAT=json TCPRARE_SUMMARY=off run --separate-stderr host
	[ "$status" -eq 7 ]
	[ "$output" = "host output" ]
	[ -z "$stderr" ]
}

@test "an empty setting counts as unset" {
	TCPRARE_CLOSEWAIT= TCPRARE_LOG= run --separate-stderr host
	[ "$status" -eq 7 ]
	[ -z "$stderr" ]
}

@test "a bad mode names the variable and the three modes" {
	expect_rejected TCPRARE_CLOSEWAIT yes "on, observe or off; using on"
	expect_rejected TCPRARE_LINGER maybe "on, observe or off; using on"
}

@test "a bad number is named: not a number, negative, a unit suffix, out of range" {
	expect_rejected TCPRARE_CLOSEWAIT_IDLE_MS abc "milliseconds from 0 to 86400000; using 1000"
	expect_rejected TCPRARE_CLOSEWAIT_IDLE_MS -5 "milliseconds from 0 to 86400000"
	expect_rejected TCPRARE_CLOSEWAIT_IDLE_MS 99999999999999999999 "milliseconds from 0"
	expect_rejected TCPRARE_LINGER_MS 5s "milliseconds from 1 to 600000; using 30000"
	expect_rejected TCPRARE_LINGER_MS 0 "milliseconds from 1 to 600000"
	expect_rejected TCPRARE_LINGER_IDLE_MS 2s "milliseconds from 1 to 600000; using 5000"
	expect_rejected TCPRARE_LINGER_MAX 0 "a count from 1 to 16384; using a quarter of RLIMIT_NOFILE"
	expect_rejected TCPRARE_LINGER_MAX 20000 "a count from 1 to 16384"
}

@test "a bad scope, backlog, log destination, format or summary is named" {
	expect_rejected TCPRARE_CLOSEWAIT_SCOPE everything "connected or all; using connected"
	expect_rejected TCPRARE_BACKLOG huge "max, observe, off or a backlog from 1 to 65535; using max"
	expect_rejected TCPRARE_BACKLOG 0 "a backlog from 1 to 65535"
	expect_rejected TCPRARE_BACKLOG 70000 "a backlog from 1 to 65535"
	expect_rejected TCPRARE_LOG bogus "stderr, syslog, off or a file path"
	expect_rejected TCPRARE_LOG_FORMAT xml "text or json; using text"
	expect_rejected TCPRARE_SUMMARY 2 "on or off; using off"
}

@test "a bad port list is named: empty item, zero, reversed range, words" {
	for list in "80,,81" "0" "90-80" "http" "80," "70000"; do
		expect_rejected TCPRARE_PORTS "$list" "ports or ranges such as 80,8000-8100"
	done
}

@test "an unwritable log path is named and the log falls back to stderr" {
	TCPRARE_LOG=/nonexistent/dir/tcprare.log run --separate-stderr host
	[ "$status" -eq 7 ]
	[ "$output" = "host output" ]
	[[ "$stderr" == "tcprare: TCPRARE_LOG=/nonexistent/dir/tcprare.log cannot be opened (No such file or directory)"* ]]
}

@test "a per-process log path (%p) in a directory that does not exist is named at start, before any line" {
	TCPRARE_LOG=/nonexistent/dir/tcprare.%p.log run --separate-stderr host
	[ "$status" -eq 7 ]
	[ "$output" = "host output" ]
	[[ "$stderr" == "tcprare: TCPRARE_LOG=/nonexistent/dir/tcprare.%p.log cannot be opened (No such file or directory)"* ]]
}

@test "a bad value is named once, not again by every program the host starts, which keep the default too" {
	local starts='sh -c "echo child: \${TCPRARE_SUMMARY-unset} \${TCPRARE_LOG-unset}"; echo parent'
	run --separate-stderr env TCPRARE_SUMMARY=1 LD_PRELOAD="$PRELOAD" sh -c "$starts"
	[ "${#stderr_lines[@]}" -eq 1 ]
	[ "$output" = "$(printf 'child: unset unset\nparent')" ]
	run --separate-stderr env TCPRARE_LOG=/nonexistent/dir/tcprare.log LD_PRELOAD="$PRELOAD" sh -c "$starts"
	[ "${#stderr_lines[@]}" -eq 1 ]
	[ "$output" = "$(printf 'child: unset unset\nparent')" ]
}

@test "control characters in a bad value are not echoed to the terminal" {
	run --separate-stderr env TCPRARE_CLOSEWAIT=$'o\e[2Jn\nx' LD_PRELOAD="$PRELOAD" sh -c 'exit 0'
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "tcprare: TCPRARE_CLOSEWAIT=o?[2Jn?x is not valid"* ]]
}

@test "a rejected setting keeps its default: the guard stays on" {
	TCPRARE_CLOSEWAIT=yes run --separate-stderr with_tcprare "$PROGS/closewait_probe" -w 1100   # the default: 1 s
	[ "${lines[0]}" = "write1 rc=-1 errno=EPIPE sigpipe=1" ]
}
