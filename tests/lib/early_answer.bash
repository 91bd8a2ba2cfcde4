# early_answer_server and upload_client, shared by the lingering tests: a server in the background
# that answers an upload early and gives the connection up, and what its client then saw.

# serve PRELOAD [ARGS...]: early_answer_server in the background, detached from bats' fd 3, with
# LD_PRELOAD=PRELOAD (empty: without the library) and the caller's TCPRARE_* settings. Sets $port and
# $SERVER (tracked too: see helpers.bash); its log goes to $BATS_TEST_TMPDIR/server.err.
serve() {
	local preload=$1 out=$BATS_TEST_TMPDIR/server.out
	shift
	: >"$out"
	LD_PRELOAD=$preload "$EXAMPLES/early_answer_server" "$@" -d 20000 >"$out" 2>"$BATS_TEST_TMPDIR/server.err" 3>&- &
	SERVER=$!
	track "$SERVER"
	port=
	for _ in $(seq 100); do port=$(awk '/^port/ {print $2}' "$out"); [ -n "$port" ] && break; sleep 0.05; done
	[ -n "$port" ]
}

stop_server() {
	[ -z "${SERVER:-}" ] || { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; } || true
	SERVER=
}

# wait_for_log PATTERN: until the server's log has a line matching the extended regex (at most 5 s).
# The drain thread writes its lines after the program's close() has returned.
wait_for_log() {
	for _ in $(seq 100); do
		grep -Eq "$1" "$BATS_TEST_TMPDIR/server.err" && return 0
		sleep 0.05
	done
	echo "no line matching '$1' in:" >&2
	cat "$BATS_TEST_TMPDIR/server.err" >&2
	return 1
}

# cut_short: upload_client's $status and $output when the answer was cut off by the server's RST.
cut_short() {
	[ "$status" -eq 1 ] || return 1
	[[ "$output" =~ ^expected=1048576\ received=([0-9]+)\ error=ECONNRESET$ ]] || return 1
	[ "${BASH_REMATCH[1]}" -lt 1048576 ]
}
