# Real servers from Debian, run in the background for a test: load after helpers.

PY=/usr/bin/python3 # Debian's, not whatever python3 PATH finds first

# setup_real_servers: a scratch directory, no TCPRARE_* setting from outside, no server yet.
setup_real_servers() {
	setup_scratch
	unset LD_PRELOAD TCPRARE_LIBRARY TCPRARE_CLOSEWAIT TCPRARE_CLOSEWAIT_IDLE_MS TCPRARE_CLOSEWAIT_SCOPE \
		TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_BACKLOG TCPRARE_PORTS TCPRARE_LOG \
		TCPRARE_LOG_FORMAT TCPRARE_SUMMARY
	SERVER_PIDS=()
}

# stop_real_servers: every server a test started, in teardown, also those started inside `run`.
stop_real_servers() {
	stop_tracked
}

# need CMD...: skip without these programs; under CI a skip is a failure (.ci/run installs them).
need() {
	local cmd
	for cmd; do
		command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] && continue
		[ "${CI:-}" = true ] && { echo "CI needs $cmd" >&2; return 1; }
		skip "needs $cmd"
	done
}

# start_server NAME CMD...: CMD in the background, stdout and stderr into $SCRATCH/NAME.out and .err;
# its pid appended to SERVER_PIDS, and tracked for teardown. CMD must be a program (so that $! is its
# pid): `env LD_PRELOAD=... program`, not with_tcprare.
start_server() {
	local name=$1
	shift
	"$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" 3>&- &
	SERVER_PIDS+=($!)
	track $!
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening PORT: until something listens on 127.0.0.1:PORT (without connecting to it).
wait_listening() {
	local hex
	hex=$(printf '%04X' "$1")
	for _ in $(seq 200); do
		grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A " /proc/net/tcp && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# redis_server_bin: Debian's redis server. redis-tools ships it as redis-check-rdb (it acts as the
# server unless called check-rdb); the redis-server package adds only the name and a system service,
# so a link under that name in $SCRATCH serves where only redis-tools is installed.
redis_server_bin() {
	if command -v redis-server >/dev/null 2>&1; then
		command -v redis-server
	else
		ln -sf "$(command -v redis-check-rdb)" "$SCRATCH/redis-server" && echo "$SCRATCH/redis-server"
	fi
}

# nginx_conf MAIN HTTP LOCATION: writes $SCRATCH/nginx.conf for one server on 127.0.0.1:$PORT, in the
# foreground, with its pid, temporary files and error log (stderr) kept in $SCRATCH. MAIN, HTTP and
# LOCATION are directives for the main context, the http block and `location /`.
nginx_conf() {
	local user=""
	[ "$(id -u)" != 0 ] || user="user root;" # the worker reads $SCRATCH and writes its files there
	mkdir -p "$SCRATCH/temp"
	cat >"$SCRATCH/nginx.conf" <<-EOF
		daemon off;
		$1
		$user
		error_log stderr;
		pid $SCRATCH/nginx.pid;
		events { }
		http {
			access_log off;
			$2
			client_body_temp_path $SCRATCH/temp/body;
			proxy_temp_path $SCRATCH/temp/proxy;
			fastcgi_temp_path $SCRATCH/temp/fastcgi;
			uwsgi_temp_path $SCRATCH/temp/uwsgi;
			scgi_temp_path $SCRATCH/temp/scgi;
			server {
				listen 127.0.0.1:$PORT;
				location / { $3 }
			}
		}
	EOF
}
