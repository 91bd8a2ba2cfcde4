#!/usr/bin/env bats
# The log never harms its host: no log line raises a signal in the program or makes it wait, at load
# or later, in any thread. A line that cannot be written now (a pipe full or without a reader) is
# dropped, and the exit summary counts it as log_dropped.
#
# Each harm below happened with the library as it was: a program killed by SIGPIPE or SIGXFSZ, or
# stopped by SIGTTOU, for a line it never wrote; a program held before main by a FIFO; a server
# stalled by a full stderr pipe.
# Where the harm has a baseline without the library (the same program writing the line itself), the
# test shows it first.

load helpers
load lib/real_servers # PY, SERVER_PIDS, track and stop_process

setup() {
	setup_real_servers
}

teardown() {
	stop_real_servers
}

# A listener that prints "ready" on stdout, waits (up to 10 s) until nobody reads stdout's pipe any
# more, then listens: the library logs "backlog raised" there. With "say" it then writes a line to
# stderr itself. SIGPIPE as command-line tools set it, so that `| head` ends them quietly (Python
# itself ignores it).
QUIET_LISTENER='
import select, signal, socket, sys, time
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
print("ready", flush=True)
p = select.poll(); p.register(1, 0)   # POLLERR: the pipe has no reader left
deadline = time.monotonic() + 10
while not p.poll(100):
    if time.monotonic() > deadline: sys.exit(3)
socket.create_server(("127.0.0.1", 0))
if sys.argv[1:] == ["say"]:
    sys.stderr.write("listening\n"); sys.stderr.flush()'

@test "a listener whose stderr pipe lost its reader, as in 'server 2>&1 | head -1', is not killed by the library's log line" {
	local status_file=$SCRATCH/status
	# Without the library: a line of the program's own into that pipe kills it (128 + SIGPIPE).
	run bash -c '{ "$1" -c "$2" say; echo $? >"$3"; } 2>&1 | head -1' _ "$PY" "$QUIET_LISTENER" "$status_file"
	[ "$output" = ready ]
	[ "$(cat "$status_file")" -eq 141 ]
	# With it, the program writes nothing to stderr; the library's "backlog raised" line is dropped.
	run bash -c '{ LD_PRELOAD=$4 "$1" -c "$2"; echo $? >"$3"; } 2>&1 | head -1' _ "$PY" "$QUIET_LISTENER" \
		"$status_file" "$PRELOAD"
	[ "$output" = ready ]
	[ "$(cat "$status_file")" -eq 0 ]
}

@test "a TCPRARE_LOG FIFO that no process reads does not hold the program before main, and the reason is said" {
	local fifo=$SCRATCH/log.fifo
	mkfifo "$fifo"
	# Opening a FIFO for writing waits for a reader: a plain open never returns.
	run timeout 1 sh -c 'exec 4>"$1"' _ "$fifo"
	[ "$status" -eq 124 ]
	TCPRARE_LOG=$fifo run --separate-stderr timeout 20 env LD_PRELOAD="$PRELOAD" "$PY" -c '
import socket; socket.create_server(("127.0.0.1", 0)); print("main ran")'
	[ "$status" -eq 0 ]
	[ "$output" = "main ran" ]
	[[ "${stderr_lines[0]}" == "tcprare: TCPRARE_LOG=$fifo cannot be opened (no process reads that FIFO"* ]]
	[[ "${stderr_lines[1]}" == "tcprare["*"] python3"*": backlog raised "* ]] # on stderr instead
}

# with_log_fifo_reader FIFO CMD...: CMD under the library with TCPRARE_LOG=FIFO, holding the FIFO's
# only reader as fd 3 (opened read-write, which does not wait), so that the library's open succeeds.
# Without a shell of ours in between holding a copy: CMD closing fd 3 leaves the FIFO without reader.
with_log_fifo_reader() {
	local fifo=$1
	shift
	TCPRARE_LOG=$fifo sh -c 'preload=$1 fifo=$2; shift 2; exec 3<>"$fifo"; exec env LD_PRELOAD="$preload" "$@"' \
		_ "$PRELOAD" "$fifo" "$@"
}

@test "a log FIFO whose reader left raises no SIGPIPE in the program" {
	local fifo=$SCRATCH/log.fifo
	mkfifo "$fifo"
	local program='
import os, signal, socket, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
own = os.open(sys.argv[2], os.O_WRONLY) if sys.argv[1] == "say" else None
os.close(3)                                   # the only reader
if own is not None: os.write(own, b"listening\n")
socket.create_server(("127.0.0.1", 0))        # the library logs "backlog raised" into the FIFO
print("lived")'
	# Without the library: the program's own line into that FIFO kills it.
	run sh -c 'exec 3<>"$1"; shift; exec "$@"' _ "$fifo" "$PY" -c "$program" say "$fifo"
	[ "$status" -eq 141 ]
	run with_log_fifo_reader "$fifo" "$PY" -c "$program" quiet
	[ "$status" -eq 0 ]
	[ "$output" = lived ]
}

@test "a SIGPIPE the program has pending stays pending, and the library's own failed write leaves none" {
	local fifo=$SCRATCH/log.fifo
	mkfifo "$fifo"
	# A program that blocks SIGPIPE and looks at what is pending (as one that sigwaits for it would).
	local program='
import os, signal, socket, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
if sys.argv[1] == "own":                      # its own write into a pipe without reader
    r, w = os.pipe(); os.close(r)
    try: os.write(w, b"x")
    except BrokenPipeError: pass
before = signal.SIGPIPE in signal.sigpending()
os.close(3)                                   # the log FIFO loses its only reader
socket.create_server(("127.0.0.1", 0))        # "backlog raised": EPIPE, and the kernel queues SIGPIPE
print("before=%d after=%d" % (before, signal.SIGPIPE in signal.sigpending()))'
	run with_log_fifo_reader "$fifo" "$PY" -c "$program" none
	[ "$output" = "before=0 after=0" ]
	run with_log_fifo_reader "$fifo" "$PY" -c "$program" own
	[ "$output" = "before=1 after=1" ]
}

@test "a log file that reaches the process's file size limit does not kill the program with SIGXFSZ" {
	local log=$SCRATCH/tcprare.log
	# RLIMIT_FSIZE at 4 KiB; 100 listens log some 11 KiB. SIGXFSZ as C programs have it (Python
	# ignores it); "say": the program writes 8 KiB into a file of its own instead.
	local program='
import os, resource, signal, socket, sys
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
if sys.argv[1] == "say":
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for _ in range(8): os.write(fd, b"x" * 1024)
for _ in range(100):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen()
print("lived")'
	run "$PY" -c "$program" say "$SCRATCH/own"
	[ "$status" -eq $((128 + 25)) ] # SIGXFSZ
	TCPRARE_LOG=$log run with_tcprare "$PY" -c "$program" quiet
	[ "$status" -eq 0 ]
	[ "$output" = lived ]
	[ "$(grep -c 'backlog raised' "$log")" -ge 30 ]
	[ "$(stat -c %s "$log")" -le 4096 ]
}

# A supervisor that reads the server's stderr only at the end: a single process (so that teardown
# can stop it), waiting up to 300 s for $1 to exist, then reading to EOF. It prints how many lines it
# got and how many of them were not whole log lines.
SUPERVISOR='
import os, re, sys, time
deadline = time.monotonic() + 300
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.1)
lines = sys.stdin.buffer.read().splitlines()
torn = [l for l in lines if not re.fullmatch(rb"tcprare\[\d+\] early_answer_server: \w+ \w+ fd=\d+ .*", l)]
print("lines=%d torn=%d" % (len(lines), len(torn)))
print(*torn[:3], sep="\n", file=sys.stderr)'

@test "a server with lingering on whose stderr is read only at the end answers 1,500 sequential connections whole" {
	local done=$SCRATCH/clients.done port=
	# The supervisor reads the pipe only once the clients are done. Each connection logs "linger
	# started" and "linger drained" (some 200 bytes), so the pipe's 64 KiB fill after ~320
	# connections; the library's blocking write then held the drain thread, lingering sockets never
	# got their FIN, and the server stalled.
	exec {to_supervisor}> >(exec "$PY" -c "$SUPERVISOR" "$done" >"$SCRATCH/supervisor.out" 2>"$SCRATCH/supervisor.err" 3>&-)
	SERVER_PIDS+=($!)
	track $!
	TCPRARE_LINGER=on LD_PRELOAD=$PRELOAD "$EXAMPLES/early_answer_server" -r 1000 -d 300000 \
		>"$SCRATCH/server.out" 2>&"$to_supervisor" {to_supervisor}>&- 3>&- &
	SERVER_PIDS+=($!)
	track $!
	exec {to_supervisor}>&-
	for _ in $(seq 200); do
		port=$(sed -n 's/^port //p' "$SCRATCH/server.out")
		[ -n "$port" ] && break
		sleep 0.05
	done
	[ -n "$port" ]
	run "$PY" "$BATS_TEST_DIRNAME/lib/sequential_uploads.py" "$port" 1500 1000 240
	touch "$done"
	[ "$output" = "whole=1500" ]
	# The supervisor got the lines that fitted, every one whole; the rest were dropped, not waited for.
	stop_process "${SERVER_PIDS[1]}"
	for _ in $(seq 200); do
		[ -s "$SCRATCH/supervisor.out" ] && break
		sleep 0.05
	done
	cat "$SCRATCH/supervisor.out" "$SCRATCH/supervisor.err" >&2
	[[ "$(cat "$SCRATCH/supervisor.out")" =~ ^lines=([0-9]+)\ torn=0$ ]]
	[ "${BASH_REMATCH[1]}" -gt 300 ]
	[ "${BASH_REMATCH[1]}" -lt 3000 ]
}

@test "the exit summary counts the log lines that were dropped" {
	local filled=$SCRATCH/filled drained=$SCRATCH/drained
	# 2,000 listens, a "backlog raised" line each, into a stderr pipe that no one reads meanwhile:
	# some 200 KiB for a 64 KiB pipe. Then the reader drains the pipe, and the program exits.
	local program='
import os, socket, sys, time
for _ in range(2000):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)'
	local reader='
import os, sys, time
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
got = bytearray()
os.set_blocking(0, False)
try:
    while chunk := os.read(0, 65536): got += chunk
except BlockingIOError:
    pass
open(sys.argv[2], "w").close()
os.set_blocking(0, True)
while chunk := os.read(0, 65536): got += chunk
sys.stdout.buffer.write(got)'
	TCPRARE_SUMMARY=on LD_PRELOAD=$PRELOAD "$PY" -c "$program" "$filled" "$drained" 2>&1 >/dev/null 3>&- |
		"$PY" -c "$reader" "$filled" "$drained" >"$SCRATCH/stderr" 3>&-
	local written dropped
	written=$(grep -c 'backlog raised' "$SCRATCH/stderr")
	dropped=$(sed -n 's/.* summary .* log_dropped=\([0-9]*\).*/\1/p' "$SCRATCH/stderr")
	[ "$dropped" -gt 0 ]
	[ "$((written + dropped))" -eq 2000 ] # every line either written whole or counted
}

@test "a background job writing to a terminal with TOSTOP set is not stopped by the library's log line" {
	local program='
import os, socket, sys
if sys.argv[1:] == ["say"]: os.write(2, b"listening\n")
socket.create_server(("127.0.0.1", 0))        # the library logs "backlog raised" to the terminal'
	local job=$BATS_TEST_DIRNAME/lib/background_on_terminal.py
	# Without the library: a line of the job's own stops it with SIGTTOU.
	run timeout 60 "$PY" "$job" "$PY" -c "$program" say
	[ "$output" = "result: stopped by SIGTTOU" ]
	run timeout 60 "$PY" "$job" env LD_PRELOAD="$PRELOAD" "$PY" -c "$program"
	[ "$output" = "result: exited 0" ]
}
