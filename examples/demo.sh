#!/usr/bin/env bash
# make demo: the seed's CLOSE_WAIT loss, without and with tcprare, side by side.
# A server closes connections idle for 1.2 s; a client sends 4 messages 1.5 s apart and resends a
# message whenever a write fails. Without tcprare every write after a pause "succeeds" into a
# closed connection and that message is lost; with it (default settings: a close after a second of
# quiet is an idle close), that write fails and the message is resent.
set -euo pipefail
BUILD=${1:-build}
COUNT=4 PAUSE_MS=1500 IDLE_MS=1200

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

echo
echo "Lingering close: a server answers 1 MiB before reading a 16 MiB upload, then closes."
printf '%-18s %s\n' "" "what the client got"
for mode in without with; do
	out=$(mktemp)
	if [ "$mode" = with ]; then preload=$PWD/$BUILD/libtcprare.so; else preload=; fi
	LD_PRELOAD=$preload TCPRARE_LOG=off "$BUILD/examples/early_answer_server" -d 3000 >"$out" &
	server=$!
	until port=$(awk '/^port/ {print $2}' "$out") && [ -n "$port" ]; do sleep 0.05; done
	printf '%-18s %s\n' "$mode tcprare" "$("$BUILD/examples/upload_client" "$port" || true)"
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	rm -f "$out"
done

echo
echo "Listen backlog: 100 clients connect at once to a server with listen(fd, 5) that accepts slowly."
if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
	echo "(skipped: needs root for a private network namespace, where ListenOverflows is ours alone)"
	exit 0
fi
# In a namespace of its own, so that ListenOverflows counts this server's drops only.
unshare -n bash -s "$BUILD" <<'NETNS'
set -euo pipefail
BUILD=$1
ip link set lo up
overflows() { awk '$1 == "TcpExt:" { if (!c) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") c = i } else { print $c; exit } }' /proc/net/netstat; }
printf '%-18s %s\n' "" "after 3 s: clients served, pending, retransmitted; kernel's ListenOverflows"
for mode in without with; do
	out=$(mktemp)
	if [ "$mode" = with ]; then preload=$PWD/$BUILD/libtcprare.so; else preload=; fi
	LD_PRELOAD=$preload TCPRARE_LOG=off "$BUILD/examples/slow_accept_server" -w 2 -d 4000 >"$out" &
	server=$!
	until port=$(awk '/^port/ {print $2}' "$out") && [ -n "$port" ]; do sleep 0.05; done
	before=$(overflows)
	result=$("$BUILD/examples/burst_client" -n 100 -t 3000 "$port")
	printf '%-18s %s overflows=%d\n' "$mode tcprare" "$result" $(($(overflows) - before))
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	rm -f "$out"
done
NETNS
