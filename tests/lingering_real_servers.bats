#!/usr/bin/env bats
# Lingering close (on by default) in real, unmodified servers from Debian: nginx under load (an
# epoll program), python's http.server, socat and python's forking servers. The uploads show the loss
# without the library first; the forking servers are must-not-harm tests (a socket open at fork is
# never lingered, so the children's connections must come out as they do without the library).
# Needs nginx (nginx-light), haproxy, ab (apache2-utils), socat and curl; a missing one skips, or fails under CI.

load helpers
load lib/real_servers

SERVERS=$BATS_TEST_DIRNAME/lib/lingering_servers.py

setup() {
	setup_real_servers
}

teardown() {
	stop_real_servers
	stop_netns
}

# port_from NAME: the port a python server printed first ("... port N ..."), waiting for it.
port_from() {
	local port
	for _ in $(seq 200); do
		port=$(sed -n '1s/.*port \([0-9][0-9]*\).*/\1/p' "$SCRATCH/$1.out")
		[ -n "$port" ] && { echo "$port"; return 0; }
		sleep 0.05
	done
	echo "$1 printed no port: $(cat "$SCRATCH/$1.out" "$SCRATCH/$1.err")" >&2
	return 1
}

# count_log WORDS: lines with WORDS in the per-process logs (TCPRARE_LOG=$SCRATCH/tcprare.%p.log).
count_log() {
	cat "$SCRATCH"/tcprare.*.log 2>/dev/null | grep -c -- "$1" || true
}

# stop_for_summary SIGNAL: stops the first server with SIGNAL, on which it exits cleanly, waits for the
# summary the library writes at exit, and prints the logs.
stop_for_summary() {
	kill "-$1" "${SERVER_PIDS[0]}"
	for _ in $(seq 100); do
		grep -q ' summary ' "$SCRATCH"/tcprare.*.log 2>/dev/null && break
		sleep 0.05
	done
	cat "$SCRATCH"/tcprare.*.log
}

# --- nginx ---

# start_nginx: one worker, static files from $SCRATCH/www (file.bin: 100 KB), the library at its default settings, each
# process logging to its own file. lingering_close off: nginx just closes, and the library lingers.
start_nginx() {
	PORT=$(free_port)
	mkdir -p "$SCRATCH/www"
	head -c 100000 /dev/urandom >"$SCRATCH/www/file.bin"
	nginx_conf "master_process on; worker_processes 1;" "lingering_close off; keepalive_requests 50;" \
		"root $SCRATCH/www;"
	local nginx
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
	start_server nginx env LD_PRELOAD="$PRELOAD" TCPRARE_SUMMARY=on \
		TCPRARE_LOG="$SCRATCH/tcprare.%p.log" "$nginx" -p "$SCRATCH" -c "$SCRATCH/nginx.conf" -e stderr
	wait_listening "$PORT"
}

# nginx_clean_stop: stops nginx and checks it reported nothing worse than a notice (an epoll_ctl or
# descriptor mix-up would show as [alert] or [crit]) and that its worker summed up its sockets.
nginx_clean_stop() {
	stop_process "${SERVER_PIDS[0]}"
	for _ in $(seq 100); do
		grep -q ' summary .*tcp_sockets=[1-9]' "$SCRATCH"/tcprare.*.log 2>/dev/null && break
		sleep 0.05
	done
	! grep -E '\[(warn|error|crit|alert|emerg)\]' "$SCRATCH/nginx.err"
	grep ' summary .*tcp_sockets=[1-9]' "$SCRATCH"/tcprare.*.log
}

# ab_check OUTPUT: ab's report of 5000 requests, all answered with the whole 100 KB file.
ab_check() {
	grep -E '^Complete requests: +5000$' <<<"$1"
	grep -E '^Failed requests: +0$' <<<"$1"
	grep -E '^HTML transferred: +500000000 bytes$' <<<"$1"
	! grep -E '^Non-2xx responses' <<<"$1"
}

# Each of these closes follows a finished exchange (the request read, the whole answer written). Where
# part of the 100 KB answer is still unsent at the close, the close lingers (a request arriving then
# would otherwise cut it); the others are plain. Either way nginx, an epoll program, sees nothing.
@test "nginx under sustained load answers all 5000 requests whole" {
	need nginx ab
	start_nginx
	run timeout 60 ab -q -n 5000 -c 20 "http://127.0.0.1:$PORT/file.bin"
	echo "$output"
	[ "$status" -eq 0 ]
	ab_check "$output"
	echo "lingered: $(count_log 'linger started'), skipped: $(count_log 'linger skipped')"
	[ "$(count_log 'linger skipped')" -eq 0 ]
	nginx_clean_stop
}

@test "nginx with keep-alive under sustained load answers all 5000 requests whole" {
	need nginx ab
	start_nginx
	run timeout 60 ab -q -k -n 5000 -c 20 "http://127.0.0.1:$PORT/file.bin"
	echo "$output"
	[ "$status" -eq 0 ]
	ab_check "$output"
	grep -E '^Keep-Alive requests: +[1-9][0-9]*$' <<<"$output"
	# keepalive_requests 50: nginx closes each connection after its 50th answer.
	echo "lingered: $(count_log 'linger started')"
	[ "$(count_log 'linger skipped')" -eq 0 ]
	nginx_clean_stop
}

# Why a lingering socket must leave the program's epoll sets first: a registration belongs to the
# socket, not to the number, so an instance the library cannot see (made and filled with raw system
# calls) goes on reporting the lingering socket under the number the program has since reused.
@test "a lingering socket leaves the program's epoll set, which would otherwise report it under its reused number" {
	TCPRARE_LOG=off TCPRARE_LINGER=off run with_tcprare timeout 20 "$PY" "$SERVERS" epoll_reuse raw
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "events: none" ]     # a plain close ends the registration
	TCPRARE_LOG=off run with_tcprare timeout 20 "$PY" "$SERVERS" epoll_reuse libc
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "events: none" ]     # the library took it out of the program's instance
	TCPRARE_LOG=off run with_tcprare timeout 20 "$PY" "$SERVERS" epoll_reuse raw
	[ "$status" -eq 0 ]
	local fd=${lines[0]##* }
	[ "${lines[0]}" = "old fd $fd new fd $fd" ]
	[[ "${lines[1]}" =~ ^events:\ fd=$fd\ mask=0x[0-9a-f]+$ ]] # the old, lingering socket's, under the new number
}

# nginx itself reads and discards an upload its answer does not need (even with lingering_close off),
# so the unread upload is shown with python's http.server, which never reads it.

# curl_post PORT FILE: curl uploads 8 MB and reads the 2 MB answer (at 5 MB/s, so that the server
# closes while most of the answer still waits in its send queue); prints "SIZE rc=RC".
curl_post() {
	local size rc=0
	size=$(timeout 20 curl -sS -H 'Expect:' --limit-rate 5M -o /dev/null -w '%{size_download}' \
		--data-binary @"$SCRATCH/upload" "http://127.0.0.1:$1/$2" 2>>"$SCRATCH/curl.err") || rc=$?
	echo "$size rc=$rc"
}

@test "an answer to an upload the server never reads is cut by a reset without tcprare and arrives whole with it" {
	need curl
	mkdir -p "$SCRATCH/www"
	head -c 2000000 /dev/zero >"$SCRATCH/www/answer"
	head -c 8000000 /dev/zero >"$SCRATCH/upload"
	start_server plain "$PY" -u "$SERVERS" answer_post "$SCRATCH/www"
	local plain
	plain=$(port_from plain)
	local i results=()
	for i in 1 2 3 4 5; do
		results+=("$(curl_post "$plain" answer)")
	done
	echo "without: ${results[*]}"
	# A reset (curl: 56) and part of the answer, nearly every time: about 1 run in 100 the server's
	# send queue happens to be short enough at its close for curl's window to take it all.
	local cut=0
	for r in "${results[@]}"; do
		[ "$r" = "2000000 rc=0" ] || cut=$((cut + 1))
	done
	[ "$cut" -ge 3 ]
	grep -q 'Connection reset by peer' "$SCRATCH/curl.err"

	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		"$PY" -u "$SERVERS" answer_post "$SCRATCH/www"
	local lingering
	lingering=$(port_from lingering)
	results=()
	for i in 1 2 3 4 5; do
		results+=("$(curl_post "$lingering" answer)")
	done
	echo "with: ${results[*]}"
	for r in "${results[@]}"; do
		[ "$r" = "2000000 rc=0" ]
	done
	[ "$(count_log 'linger started')" -eq 5 ]
}

# python3 -m http.server (HTTP/1.0) answers one request and closes. Two ways its close finds input
# unread, and resets the connection while most of a 2 MB answer still waits in its send queue: a
# body the GET carries, which it never reads, and a second, pipelined request.

# get_cut_then_whole GET_ARGS...: five requests without the library, each cut short by a reset;
# then five with it, each whole, and each close a linger.
get_cut_then_whole() {
	mkdir -p "$SCRATCH/www"
	head -c 2000000 /dev/zero >"$SCRATCH/www/answer"
	start_server plain env PYTHONUNBUFFERED=1 "$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local plain i
	plain=$(port_from plain)
	for i in 1 2 3 4 5; do
		run timeout 20 "$PY" "$SERVERS" get "$plain" /answer "$@"
		echo "without: $output"
		[[ $output =~ ^got\ ([0-9]+)\ end=ECONNRESET$ ]]
		[ "${BASH_REMATCH[1]}" -lt 2000000 ]
	done

	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		PYTHONUNBUFFERED=1 "$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local lingering headers
	lingering=$(port_from lingering)
	headers=$(curl -sS -D - -o /dev/null "http://127.0.0.1:$lingering/answer" | wc -c)
	for i in 1 2 3 4 5; do
		run timeout 20 "$PY" "$SERVERS" get "$lingering" /answer "$@"
		echo "with: $output"
		[ "$output" = "got $((headers + 2000000)) end=eof" ]
	done
	[ "$(count_log 'linger started')" -ge 5 ]   # and curl's own, perhaps
}

@test "a GET with a body python3 -m http.server never reads: the answer is cut without tcprare and whole with it" {
	get_cut_then_whole body 100000
}

@test "pipelined requests to python3 -m http.server: the first answer is cut without tcprare and whole with it" {
	get_cut_then_whole pipelined
}

@test "python3 -m http.server refusing a large POST: the uploader gets a broken pipe without tcprare and the 501 with it" {
	mkdir -p "$SCRATCH/www"
	head -c 8000000 /dev/zero >"$SCRATCH/upload"
	head -c 10 /dev/zero >"$SCRATCH/small"
	start_server plain env PYTHONUNBUFFERED=1 "$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local plain
	plain=$(port_from plain)
	local answer                                      # what it answers to an upload that fits the buffers
	answer=$(timeout 30 "$PY" "$SERVERS" upload "http://127.0.0.1:$plain/" "$SCRATCH/small")
	[[ $answer == "status 501 "[1-9]* ]]
	local i
	for i in 1 2 3 4 5; do
		run timeout 30 "$PY" "$SERVERS" upload "http://127.0.0.1:$plain/" "$SCRATCH/upload"
		echo "without: $output"
		[[ $output == "error BrokenPipeError:"* || $output == "error ConnectionResetError:"* ]]
	done

	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		PYTHONUNBUFFERED=1 "$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local lingering
	lingering=$(port_from lingering)
	for i in 1 2 3 4 5; do
		run timeout 30 "$PY" "$SERVERS" upload "http://127.0.0.1:$lingering/" "$SCRATCH/upload"
		echo "with: $output"
		[ "$output" = "$answer" ]
	done
	[ "$(count_log 'linger started')" -eq 5 ]
	grep 'linger drained .* end=eof' "$SCRATCH"/tcprare.*.log
}

@test "the wrapper form tcprare -- python3 -m http.server gives the uploader its 501" {
	mkdir -p "$SCRATCH/www"
	head -c 8000000 /dev/zero >"$SCRATCH/upload"
	head -c 100000 /dev/urandom >"$SCRATCH/www/file.bin"
	# Under SANITIZE=1 the sanitizer runtimes must come first: they stand in for an LD_PRELOAD the user
	# already has, and the wrapper appends the library beside it (build-asan/libtcprare.so) after them.
	local before=${PRELOAD%"$LIB"}
	start_server wrapped env LD_PRELOAD="${before%:}" PYTHONUNBUFFERED=1 \
		"$WRAPPER" "--log=$SCRATCH/tcprare.%p.log" -- \
		"$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local port
	port=$(port_from wrapped)
	local i
	for i in 1 2 3; do
		run timeout 30 "$PY" "$SERVERS" upload "http://127.0.0.1:$port/" "$SCRATCH/upload"
		echo "$output"
		[[ $output == "status 501 "[1-9]* ]]
	done
	# A plain download through the same server is untouched.
	if command -v curl >/dev/null; then
		curl -sS --max-time 10 -o "$SCRATCH/got" "http://127.0.0.1:$port/file.bin"
		cmp "$SCRATCH/got" "$SCRATCH/www/file.bin"
	fi
	[ "$(count_log 'python3: linger started')" -ge 3 ]
}

# A close after the program's own shutdown(), with nothing unread, lingers: data the peer sends after
# it would draw RST. Such a linger is quiet: it has lines only once data comes. python's http.server
# shuts down and closes after every answer; a body sent 0.2 s after the request's headers comes after
# that close, while most of a 2 MB answer still waits for the slow reader.
@test "a GET whose body comes after python3 -m http.server shut down and closed: the answer is cut without tcprare, and whole with it, its quiet linger logged as the body comes" {
	get_cut_then_whole late_body 100
	[ "$(count_log 'linger started .* unread=0$')" -eq 5 ]
	for _ in $(seq 100); do # the drain logs as the client's FIN comes, after its last read
		[ "$(count_log 'linger drained .* bytes=100 ')" -eq 5 ] && break
		sleep 0.05
	done
	[ "$(count_log 'linger drained .* bytes=100 ')" -eq 5 ]
}

# --- haproxy: shuts its side down before every close, and closes ---

# start_haproxy [OPTION]: answering by itself (no backend), with OPTION in its frontend, the library
# at its default settings; in the namespace of start_netns if there is one.
start_haproxy() {
	PORT=$(free_port)
	cat >"$SCRATCH/haproxy.cfg" <<-EOF
		global
			maxconn 4096 # haproxy sets RLIMIT_NOFILE from it; a quarter of that are the lingering slots
		defaults
			mode http
			timeout connect 5s
			timeout client 5s
			timeout server 5s
		frontend answer
			bind 127.0.0.1:$PORT
			${1:-}
			http-request return status 200 content-type text/plain string "answered"
	EOF
	local haproxy
	haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
	local netns=() # nsenter, not in_netns: the server's pid must be haproxy's, for stop_for_summary
	[ -z "${NETNS_PID:-}" ] || netns=(nsenter -t "$NETNS_PID" -n --)
	start_server haproxy "${netns[@]}" env LD_PRELOAD="$PRELOAD" TCPRARE_SUMMARY=on \
		TCPRARE_LOG="$SCRATCH/tcprare.%p.log" "$haproxy" -f "$SCRATCH/haproxy.cfg" -db
	"${netns[@]}" bash -c "$(declare -f wait_listening); wait_listening $PORT"
}

# Every close follows haproxy's own shutdown(), with nothing unread: each lingers, in case data
# comes, but none comes from ab, and a linger that drains nothing changes nothing on the wire. Two
# lines a request for that would cost haproxy a fifth of its throughput (docs/PERFORMANCE.md, 9d).
@test "haproxy, which shuts down before every close, answers all 2000 requests, its lingers quiet: no line, only the summary's count" {
	need haproxy ab
	start_haproxy
	run ab -n 2000 -c 10 "http://127.0.0.1:$PORT/"
	grep -E '^Complete requests: +2000$' <<<"$output"
	grep -E '^Failed requests: +0$' <<<"$output"
	stop_for_summary USR1 # haproxy's soft stop
	[ "$(count_log 'linger ')" -eq 0 ]
	[ "$(count_log ' summary .* linger_started=0 .* linger_quiet=[1-9]')" -eq 1 ]
}

# haproxy's option nolinger shuts down, sets SO_LINGER {1, 0} and closes: the kernel then resets the
# connection, counted as TCPAbortOnData (most of them: not one whose client's FIN came first). The
# library, which would linger after that shutdown, must leave the choice alone, as its setsockopt
# hook tells it, without asking the kernel at each close (a library that lingers: no reset at all).
# In a namespace of its own, so that the count is haproxy's alone.
@test "haproxy with option nolinger resets its connections with tcprare as without: the SO_LINGER it sets is its choice" {
	need haproxy
	require_root
	start_netns
	local without
	PRELOAD= start_haproxy "option nolinger"
	run in_netns "$PY" -c "$ANSWERS_DESPITE_RESETS" "$PORT" 200
	[ "$output" = "answered=200" ]
	without=$(aborts_on_data)
	[ "$without" -ge 100 ]
	stop_tracked
	SERVER_PIDS=()

	start_haproxy "option nolinger"
	run in_netns "$PY" -c "$ANSWERS_DESPITE_RESETS" "$PORT" 200
	[ "$output" = "answered=200" ]
	[ "$(($(aborts_on_data) - without))" -ge 100 ]
	stop_for_summary USR1
	[ "$(count_log 'linger ')" -eq 0 ]
	[ "$(count_log ' summary .* linger_started=0 .* linger_quiet=0 ')" -eq 1 ]
}

# PORT N: N connections in a row, each a GET read until EOF or a reset; counts the answers that came.
ANSWERS_DESPITE_RESETS='import socket, sys
answered = 0
for _ in range(int(sys.argv[2])):
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.sendall(b"GET / HTTP/1.0\r\n\r\n")
	got = b""
	try:
		while chunk := s.recv(65536):
			got += chunk
	except ConnectionResetError:
		pass
	answered += b"answered" in got
	s.close()
print(f"answered={answered}")'

# aborts_on_data: the namespace's TcpExt TCPAbortOnData count (/proc/net/netstat: names, then values).
aborts_on_data() {
	in_netns awk '/^TcpExt:/ { if (!n) { for (i = 2; i <= NF; i++) if ($i == "TCPAbortOnData") n = i } else print $n }' /proc/net/netstat
}

# With a single lingering slot, each quiet close is rung for (slots run short): the drain thread must
# read it on until its peer's EOF, or the slot stays taken until the idle limit (5 s) and the next
# close is a plain one (it was, before). Each client reads the answer to its EOF, and closes 0.2 s
# later: after the server's close, and after the drain's first read.
@test "with TCPRARE_LINGER_MAX=1, each of python3 -m http.server's quiet lingers ends at its peer's EOF, freeing the slot for the next" {
	mkdir -p "$SCRATCH/www"
	echo hello >"$SCRATCH/www/small"
	# SIGINT, which a background job ignores, restored: python exits cleanly on it, with the summary.
	start_server lingering env --default-signal=INT LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		TCPRARE_SUMMARY=on TCPRARE_LINGER_MAX=1 PYTHONUNBUFFERED=1 "$PY" -m http.server 0 --bind 127.0.0.1 --directory "$SCRATCH/www"
	local port i
	port=$(port_from lingering)
	for i in 1 2 3 4 5; do
		run timeout 10 "$PY" -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /small HTTP/1.0\r\n\r\n")
answer = b""
while chunk := s.recv(65536):
	answer += chunk
time.sleep(0.2)
print(answer.split(b"\r\n\r\n", 1)[1].decode(), end="")' "$port"
		[ "$output" = hello ]
	done
	stop_for_summary INT
	[ "$(count_log 'linger ')" -eq 0 ]
	[ "$(count_log ' summary .* linger_skipped=0 .* linger_quiet=5 ')" -eq 1 ]
}

# --- must not harm: forking servers. The accepted socket is open in parent and child at fork, so
# neither may linger it: the parent's close must not shut the child's connection down. ---

# read_all PORT N [LINE]: N connections in a row, each sending LINE (if given) and reading to EOF;
# prints the byte counts, one a line. (To socat's SYSTEM:head, which never reads, send nothing: its
# child would fail writing the line into head's closed stdin and stop early, with or without us.)
read_all() {
	local i
	for ((i = 0; i < $2; i++)); do
		if [ -n "${3:-}" ]; then
			printf '%s\n' "$3" | timeout 20 socat -t 10 - "TCP:127.0.0.1:$1" | wc -c
		else
			timeout 20 socat -u "TCP:127.0.0.1:$1" - | wc -c
		fi
	done
}

# A server whose main thread waits in accept() while a pool's worker answers and closes: the first
# close that lingers finds no drain thread yet, and no call of the program's that would start one
# (the worker goes back to waiting on a condition variable). The drain thread starts as the program
# makes its first thread, since it has had a connection.
@test "a thread-pool server whose main thread waits in accept() gives its first uploader the whole early answer" {
	head -c 16000000 /dev/zero >"$SCRATCH/upload"
	start_server plain "$PY" "$SERVERS" pool_answer
	run timeout 20 "$PY" "$SERVERS" upload "http://127.0.0.1:$(port_from plain)/" "$SCRATCH/upload"
	echo "without: $output"
	[[ $output =~ ^error ]]
	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		"$PY" "$SERVERS" pool_answer
	run timeout 20 "$PY" "$SERVERS" upload "http://127.0.0.1:$(port_from lingering)/" "$SCRATCH/upload"
	echo "with: $output"
	[ "$output" = "status 200 1048576" ] # it hung until the next connection came, before
	[ "$(count_log 'linger started')" -eq 1 ]
}

# A server that answers once it has the request's headers, and closes with most of a large answer
# still unsent (the client reads slowly): the body the client sends after the headers comes after
# the close, and the kernel answers it with RST, throwing away what of the answer is still queued.
# Nothing was unread at the close: the answer still unsent is what makes it linger.
@test "an answer still unsent at the close, its request's body sent after it, is cut without tcprare and whole with it" {
	start_server plain "$PY" "$SERVERS" pool_answer
	run timeout 20 "$PY" "$SERVERS" get "$(port_from plain)" / late_body 100
	echo "without: $output"
	[[ $output =~ ^got\ ([0-9]+)\ end=ECONNRESET$ ]]
	[ "${BASH_REMATCH[1]}" -lt 1048576 ]
	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		"$PY" "$SERVERS" pool_answer
	run timeout 20 "$PY" "$SERVERS" get "$(port_from lingering)" / late_body 100
	echo "with: $output"
	[ "$output" = "got $((44 + 1048576)) end=eof" ]
	[ "$(count_log 'linger started')" -eq 1 ]
	grep -q 'linger started .* unread=0$' "$SCRATCH"/tcprare.*.log   # the answer unsent, nothing unread
	for _ in $(seq 100); do # the drain logs as the client's FIN comes, after its last read
		[ "$(count_log 'linger drained .* bytes=100 ')" -eq 1 ] && break
		sleep 0.05
	done
	[ "$(count_log 'linger drained .* bytes=100 ')" -eq 1 ] # the body, which came after the close
}

# sent_line N: the stream server's Nth report ("sent BYTES end=..."), waiting for it.
sent_line() {
	for _ in $(seq 200); do
		[ "$(grep -c '^sent ' "$SCRATCH/stream.out")" -ge "$1" ] && break
		sleep 0.05
	done
	grep '^sent ' "$SCRATCH/stream.out" | sed -n "${1}p"
}

# gave_up_plainly PRINTS CLIENT...: the stream server's client (a command line that gives up reading,
# and prints PRINTS), run without the library and with it: with it, the close is a plain one (no
# linger), and the server learns as soon, having sent about what the buffers between them held both
# times (a drain would have taken hundreds of MB more).
gave_up_plainly() {
	local prints=$1 without with
	shift
	run bash -c "$*"
	[ "$output" = "$prints" ]
	without=$(sent_line 1)
	run bash -c "LD_PRELOAD='$PRELOAD' TCPRARE_SUMMARY=on TCPRARE_LOG='$SCRATCH/tcprare.%p.log' $*"
	[ "$output" = "$prints" ]
	with=$(sent_line 2)
	echo "without: $without; with: $with"
	[ "$(count_log 'summary tcp_sockets=1 ')" -eq 1 ]
	[ "$(count_log 'linger started')" -eq 0 ]
	without=$(cut -d' ' -f2 <<<"$without") with=$(cut -d' ' -f2 <<<"$with")
	[ "$with" -lt $((4 * without + 16 * 1024 * 1024)) ]
}

# A client that gives up a download (curl | head, curl --max-time) closes with the server's data
# unread and still coming. Nothing of its own is at stake: the server read its request before it
# answered. The kernel's RST tells the server to stop at once; a linger would read on for nothing,
# keep the server sending, and hold the client's exit for a second (it did, until it knew better).
# curl's "(23) Failure writing output" goes to stderr, and is all it says.
@test "must not harm: curl giving up a download closes plainly, and the server learns at once that it is gone" {
	need curl
	[ "${SANITIZE:-}" != 1 ] || skip "curl hangs at start under a preloaded AddressSanitizer runtime"
	start_server stream "$PY" "$SERVERS" stream
	gave_up_plainly 1000000 "curl -sS http://127.0.0.1:$(port_from stream)/ 2>/dev/null | head -c 1000000 | wc -c"
	grep -Eq '^sent [0-9]+ end=(ECONNRESET|EPIPE)$' "$SCRATCH/stream.out"
}

# Over TLS curl says goodbye before it closes (close_notify, a few bytes): a last word of its own,
# but nothing the server, streaming, would read.
@test "must not harm: curl giving up an HTTPS download, its close_notify its last word, closes plainly" {
	need curl openssl
	[ "${SANITIZE:-}" != 1 ] || skip "curl hangs at start under a preloaded AddressSanitizer runtime"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
		-keyout "$SCRATCH/key.pem" -out "$SCRATCH/cert.pem" 2>/dev/null
	start_server stream "$PY" "$SERVERS" stream "$SCRATCH/cert.pem" "$SCRATCH/key.pem"
	gave_up_plainly 1000000 "curl -skS https://127.0.0.1:$(port_from stream)/ 2>/dev/null | head -c 1000000 | wc -c"
}

# The JVM's Socket.close() shuts the sending side down first, then closes: the client's FIN is out
# by the close, so the library judges the download given up at the shutdown, while it still can.
@test "must not harm: a client giving up a download by shutdown() and close(), as the JVM does, closes plainly" {
	start_server stream "$PY" "$SERVERS" stream
	gave_up_plainly 1000000 "'$PY' '$SERVERS' give_up $(port_from stream)"
}

# aria2c gives up its extra connections to a server that ignores Range the same way, after one small
# read while the answer streams in: what tells is what waits unread. (A client that gives up within
# the millisecond of its request, before the stream comes, looks like a finished exchange, and its
# close after its own shutdown lingers.)
@test "must not harm: a client giving up a download after one small read, by shutdown() and close() as aria2c does, closes plainly" {
	start_server stream "$PY" "$SERVERS" stream
	gave_up_plainly 100 "'$PY' '$SERVERS' give_up $(port_from stream) 100"
}

@test "must not harm: socat's forking server sends each of 20 connections its 1000000 bytes, as without" {
	need socat
	local plain lingering
	plain=$(free_port)
	start_server plain socat "TCP-LISTEN:$plain,bind=127.0.0.1,fork,reuseaddr" SYSTEM:'head -c 1000000 /dev/zero'
	wait_listening "$plain"
	run read_all "$plain" 20
	[ "$(sort -u <<<"$output")" = 1000000 ]
	[ "${#lines[@]}" -eq 20 ]

	lingering=$(free_port)
	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		socat "TCP-LISTEN:$lingering,bind=127.0.0.1,fork,reuseaddr" SYSTEM:'head -c 1000000 /dev/zero'
	wait_listening "$lingering"
	run read_all "$lingering" 20
	[ "$(sort -u <<<"$output")" = 1000000 ]
	[ "${#lines[@]}" -eq 20 ]
	# The library was there and lingered nothing: every accepted socket was shared at fork.
	grep -q libtcprare.so "/proc/${SERVER_PIDS[1]}/maps"
	[ "$(count_log 'linger started')" -eq 0 ]
}

@test "must not harm: python's ForkingTCPServer sends each of 20 connections its 1000000 bytes, as without" {
	need socat
	start_server plain "$PY" "$SERVERS" forking_server 1000000
	run read_all "$(port_from plain)" 20 hello
	[ "$(sort -u <<<"$output")" = 1000000 ]
	[ "${#lines[@]}" -eq 20 ]

	start_server lingering env LD_PRELOAD="$PRELOAD" TCPRARE_LOG="$SCRATCH/tcprare.%p.log" \
		"$PY" "$SERVERS" forking_server 1000000
	run read_all "$(port_from lingering)" 20 hello
	[ "$(sort -u <<<"$output")" = 1000000 ]
	[ "${#lines[@]}" -eq 20 ]
	grep -q libtcprare.so "/proc/${SERVER_PIDS[1]}/maps"
	[ "$(count_log 'linger started')" -eq 0 ]
}
