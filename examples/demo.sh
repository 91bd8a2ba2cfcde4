#!/usr/bin/env bash
# make demo: the seed's CLOSE_WAIT loss, without and with tcprare, side by side.
# A server closes connections idle for 200 ms; a client sends 8 messages 300 ms apart and resends a
# message whenever a write fails. Without tcprare every write after a pause "succeeds" into a
# closed connection and that message is lost; with it, that write fails and the message is resent.
set -euo pipefail
BUILD=${1:-build}
COUNT=8 PAUSE_MS=300 IDLE_MS=200

run() { # run LABEL [PRELOAD]: prints "LABEL sent received lost"
	local label=$1 preload=${2:-} out port
	out=$(mktemp)
	"$BUILD/examples/idle_server" -t "$IDLE_MS" -d $((COUNT * PAUSE_MS + 1500)) >"$out" &
	local server=$!
	until port=$(awk '/^port/ {print $2}' "$out") && [ -n "$port" ]; do sleep 0.05; done
	LD_PRELOAD=$preload TCPRARE_LOG=off "$BUILD/examples/oneway_client" "$port" "$COUNT" "$PAUSE_MS" >/dev/null
	wait "$server"
	local received
	received=$(grep '^received msg' "$out" | sort -u | wc -l)
	printf '%-18s %6d %9d %6d\n' "$label" "$COUNT" "$received" $((COUNT - received))
	rm -f "$out"
}

echo "CLOSE_WAIT: a server closes idle connections; the client writes after each pause."
printf '%-18s %6s %9s %6s\n' "" sent received lost
run "without tcprare"
run "with tcprare" "$PWD/$BUILD/libtcprare.so"
