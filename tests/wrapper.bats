load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_scratch
	SCRATCH=$(cd "$SCRATCH" && pwd -P) # the wrapper reports resolved paths
	unset LD_PRELOAD TCPRARE_LIBRARY TCPRARE_CLOSEWAIT TCPRARE_CLOSEWAIT_IDLE_MS TCPRARE_CLOSEWAIT_SCOPE \
		TCPRARE_LINGER TCPRARE_LINGER_MS TCPRARE_LINGER_IDLE_MS TCPRARE_LINGER_MAX TCPRARE_BACKLOG TCPRARE_PORTS TCPRARE_LOG TCPRARE_LOG_FORMAT \
		TCPRARE_SUMMARY
	# Under SANITIZE=1 the sanitizer runtimes must load before the library, so they stand in for what a
	# user already has in LD_PRELOAD; BEFORE is "" or "libasan.so:libubsan.so:".
	BEFORE=${PRELOAD%"$LIB"}
	[ -z "$BEFORE" ] || export LD_PRELOAD=${BEFORE%:}
}

# value_after NAME OPTION...: the value of NAME in the environment the wrapper gives its command.
value_after() {
	local name=$1
	shift
	"$WRAPPER" "$@" -- printenv "$name"
}

# A library that does nothing, to stand in for something already in LD_PRELOAD.
make_other_library() {
	cc -shared -fPIC -o "$SCRATCH/libother.so" -x c - <<<'int tcprare_test_other;'
}

# make install from a copy of the sources into $SCRATCH/prefix, reusing the build as it is (-o: never
# rebuild it under other tests). The copy is where a placeholder libtcprare.7 may go, never the repo.
install_into_scratch() {
	local repo=$BATS_TEST_DIRNAME/..
	mkdir -p "$SCRATCH/src"
	cp -pR "$repo/Makefile" "$repo/docs" "$SCRATCH/src/"
	[ -e "$SCRATCH/src/docs/libtcprare.7" ] || printf '.TH LIBTCPRARE 7\n' >"$SCRATCH/src/docs/libtcprare.7"
	# Neither the outer make's flags (jobserver, SANITIZE=1) under make test, nor setup's LD_PRELOAD.
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u LD_PRELOAD make -s -C "$SCRATCH/src" BUILD="$BUILD" PREFIX="$SCRATCH/prefix" \
		DESTDIR= -o "$BUILD/libtcprare.so" -o "$BUILD/tcprare" install
}

@test "--help lists every option and the variable it sets, on stdout, and exits 0" {
	run --separate-stderr "$WRAPPER" --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for text in --closewait= TCPRARE_CLOSEWAIT --closewait-idle= TCPRARE_CLOSEWAIT_IDLE_MS \
		--closewait-scope= TCPRARE_CLOSEWAIT_SCOPE --linger TCPRARE_LINGER TCPRARE_LINGER_MS \
		--linger-idle= TCPRARE_LINGER_IDLE_MS --linger-max= TCPRARE_LINGER_MAX \
		--backlog= TCPRARE_BACKLOG --ports= TCPRARE_PORTS --observe --log= TCPRARE_LOG --json \
		TCPRARE_LOG_FORMAT --summary TCPRARE_SUMMARY --help --version TCPRARE_LIBRARY LD_PRELOAD; do
		[[ $output == *"$text"* ]] || { echo "--help does not mention $text"; return 1; }
	done
}

@test "--version prints the version from the Makefile and exits 0" {
	version=$(sed -n 's/^VERSION = //p' "$BATS_TEST_DIRNAME/../Makefile")
	run --separate-stderr "$WRAPPER" --version
	[ "$status" -eq 0 ]
	[ "$output" = "tcprare $version" ]
}

@test "each option with a value sets its variable to that value" {
	[ "$(value_after TCPRARE_CLOSEWAIT --closewait=observe)" = observe ]
	[ "$(value_after TCPRARE_CLOSEWAIT_IDLE_MS --closewait-idle=250)" = 250 ]
	[ "$(value_after TCPRARE_CLOSEWAIT_SCOPE --closewait-scope=all)" = all ]
	[ "$(value_after TCPRARE_LINGER_IDLE_MS --linger-idle=2000)" = 2000 ]
	[ "$(value_after TCPRARE_LINGER_MAX --linger-max=10000)" = 10000 ]
	[ "$(value_after TCPRARE_BACKLOG --backlog=512)" = 512 ]
	[ "$(value_after TCPRARE_BACKLOG --backlog=off)" = off ]
	[ "$(value_after TCPRARE_PORTS --ports=80,8000-8100)" = 80,8000-8100 ]
	[ "$(value_after TCPRARE_LOG "--log=$SCRATCH/log.%p")" = "$SCRATCH/log.%p" ]
}

@test "--json and --summary set the log format and the summary" {
	[ "$(value_after TCPRARE_LOG_FORMAT --json)" = json ]
	[ "$(value_after TCPRARE_SUMMARY --summary)" = on ]
}

@test "--linger turns lingering on and leaves its deadline to the library" {
	[ "$(value_after TCPRARE_LINGER --linger)" = on ]
	run value_after TCPRARE_LINGER_MS --linger
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "--linger=off and --linger=observe set the mode and leave the deadline to the library" {
	[ "$(value_after TCPRARE_LINGER --linger=off)" = off ]
	[ "$(value_after TCPRARE_LINGER --linger=observe)" = observe ]
	run value_after TCPRARE_LINGER_MS --linger=off
	[ "$status" -eq 1 ]
	[ -z "$output" ]
}

@test "--linger=MS turns lingering on with that deadline" {
	[ "$(value_after TCPRARE_LINGER --linger=5000)" = on ]
	[ "$(value_after TCPRARE_LINGER_MS --linger=5000)" = 5000 ]
}

@test "--observe makes every intervention observe-only and turns the summary on" {
	run "$WRAPPER" --observe -- sh -c 'echo "$TCPRARE_CLOSEWAIT $TCPRARE_LINGER $TCPRARE_BACKLOG $TCPRARE_SUMMARY"'
	[ "$status" -eq 0 ]
	[ "$output" = "observe observe observe on" ]
}

@test "an option after --observe overrides it for that intervention only" {
	run "$WRAPPER" --observe --linger=200 --closewait=off -- \
		sh -c 'echo "$TCPRARE_CLOSEWAIT $TCPRARE_LINGER $TCPRARE_LINGER_MS $TCPRARE_BACKLOG $TCPRARE_SUMMARY"'
	[ "$output" = "off on 200 observe on" ]
	run "$WRAPPER" --backlog=64 --observe -- sh -c 'echo "$TCPRARE_BACKLOG"'
	[ "$output" = observe ]
}

@test "an option overrides the environment and leaves the other variables as they were" {
	export TCPRARE_CLOSEWAIT=off TCPRARE_PORTS=443
	run "$WRAPPER" --closewait=on -- sh -c 'echo "$TCPRARE_CLOSEWAIT $TCPRARE_PORTS"'
	[ "$output" = "on 443" ]
}

@test "the wrapper passes a bad value on unchanged and the library reports it" {
	run "$WRAPPER" --backlog=lots -- true
	[ "$status" -eq 0 ]
	[[ $output == *"TCPRARE_BACKLOG=lots is not valid"* ]]
}

@test "options stop at the first argument that is not an option" {
	run "$WRAPPER" sh -c 'echo "$1 ${TCPRARE_LOG_FORMAT:-unset}"' sh --json
	[ "$status" -eq 0 ]
	[ "$output" = "--json unset" ]
}

@test "without LD_PRELOAD, or with it empty, the wrapper sets it to the library alone" {
	[ -z "$BEFORE" ] || skip "under SANITIZE=1 the library cannot load without the sanitizer runtimes"
	run "$WRAPPER" -- printenv LD_PRELOAD
	[ "$output" = "$(realpath "$LIB")" ]
	LD_PRELOAD= run "$WRAPPER" -- printenv LD_PRELOAD
	[ "$output" = "$(realpath "$LIB")" ]
}

@test "the wrapper appends the library to an existing LD_PRELOAD" {
	make_other_library
	LD_PRELOAD=$BEFORE$SCRATCH/libother.so run "$WRAPPER" -- printenv LD_PRELOAD
	[ "$status" -eq 0 ]
	[ "$output" = "$BEFORE$SCRATCH/libother.so:$(realpath "$LIB")" ]
}

@test "the wrapper does not add the library again when LD_PRELOAD already names it" {
	make_other_library
	for named in "$LIB" "$BUILD/./libtcprare.so"; do
		LD_PRELOAD="$BEFORE$named $SCRATCH/libother.so" run "$WRAPPER" -- printenv LD_PRELOAD
		[ "$output" = "$BEFORE$named $SCRATCH/libother.so" ]
	done
}

@test "the wrapper finds the library beside its own executable, as in the build tree" {
	mkdir "$SCRATCH/tree"
	cp "$WRAPPER" "$LIB" "$SCRATCH/tree/"
	run "$SCRATCH/tree/tcprare" -- printenv LD_PRELOAD
	[ "$status" -eq 0 ]
	[ "$output" = "$BEFORE$SCRATCH/tree/libtcprare.so" ]
}

@test "TCPRARE_LIBRARY chooses the library, and if it does not exist the wrapper fails with 127" {
	cp "$LIB" "$SCRATCH/chosen.so"
	TCPRARE_LIBRARY=$SCRATCH/chosen.so run "$WRAPPER" -- printenv LD_PRELOAD
	[ "$output" = "$BEFORE$SCRATCH/chosen.so" ]
	TCPRARE_LIBRARY=$SCRATCH/missing.so run -127 "$WRAPPER" -- true
	[ "$output" = "tcprare: cannot find libtcprare.so (looked in $SCRATCH/missing.so)" ]
}

@test "a wrapper with no library to find fails with 127 and says where it looked" {
	mkdir "$SCRATCH/alone"
	cp "$WRAPPER" "$SCRATCH/alone/"
	! "$SCRATCH/alone/tcprare" -- true 2>/dev/null || skip "a library is installed where the wrapper was built to look"
	run -127 "$SCRATCH/alone/tcprare" -- true
	[[ $output == "tcprare: cannot find libtcprare.so (looked in $SCRATCH/alone/libtcprare.so, "* ]]
}

@test "an installed wrapper finds the library in ../lib/tcprare, even after the prefix moves" {
	install_into_scratch
	run "$SCRATCH/prefix/bin/tcprare" -- printenv LD_PRELOAD
	[ "$output" = "$BEFORE$SCRATCH/prefix/lib/tcprare/libtcprare.so" ]
	mv "$SCRATCH/prefix" "$SCRATCH/moved"
	run "$SCRATCH/moved/bin/tcprare" -- printenv LD_PRELOAD
	[ "$output" = "$BEFORE$SCRATCH/moved/lib/tcprare/libtcprare.so" ]
}

@test "make install puts both man pages in place, and tcprare(1) renders" {
	install_into_scratch
	[ -s "$SCRATCH/prefix/share/man/man1/tcprare.1" ]
	[ -s "$SCRATCH/prefix/share/man/man7/libtcprare.7" ]
	if command -v groff >/dev/null; then
		run env -u LD_PRELOAD groff -man -ww -z "$SCRATCH/prefix/share/man/man1/tcprare.1"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	fi
}

@test "an unknown option exits 2 with a hint to --help" {
	run -2 "$WRAPPER" --bogus -- true
	[ "${lines[0]}" = "tcprare: unknown option '--bogus'" ]
	[ "${lines[1]}" = "Try 'tcprare --help'." ]
	run -2 "$WRAPPER" -x true
}

@test "an option missing its =VALUE, or a flag given one, exits 2" {
	run -2 "$WRAPPER" --closewait on -- true
	[[ ${lines[0]} == "tcprare: option '--closewait' needs a value"* ]]
	run -2 "$WRAPPER" --log= -- true
	run -2 "$WRAPPER" --json=yes -- true
	[ "${lines[0]}" = "tcprare: option '--json=yes' takes no value" ]
}

@test "no command exits 2 with a hint to --help" {
	run -2 "$WRAPPER" --summary --
	[ "$output" = $'tcprare: no command given\nTry \'tcprare --help\'.' ]
}

@test "a command that does not exist exits 127 with the reason" {
	run -127 "$WRAPPER" -- tcprare-no-such-command
	[ "$output" = "tcprare: cannot run tcprare-no-such-command: No such file or directory" ]
}

@test "a command that cannot be executed exits 126" {
	printf 'not a program\n' >"$SCRATCH/data"
	run -126 "$WRAPPER" -- "$SCRATCH/data"
	[ "$output" = "tcprare: cannot run $SCRATCH/data: Permission denied" ]
}

@test "the command's exit status is the wrapper's, in the same process" {
	run -42 "$WRAPPER" -- sh -c 'exit 42'
	# exec, not fork: the shell that runs the wrapper has the pid the command sees.
	run sh -c 'echo $$; exec "$0" -- sh -c "echo \$\$"' "$WRAPPER"
	[ "${lines[0]}" = "${lines[1]}" ]
}

@test "a statically linked command, found through PATH, is warned about and still runs" {
	cc -static -o "$SCRATCH/static3" -x c - <<<'int main(void) { return 3; }' 2>/dev/null ||
		skip "cc -static does not work here (no static libc)"
	PATH=$SCRATCH:$PATH run -3 "$WRAPPER" -- static3
	[ "$output" = "tcprare: warning: $SCRATCH/static3 is statically linked: libtcprare cannot act on it" ]
}

@test "a 32-bit static executable is recognised too" {
	# Never run: without execute permission the wrapper warns, then exec fails with 126.
	cc -m32 -static -nostdlib -o "$SCRATCH/static32" -x c - <<<'void _start(void) {}' 2>/dev/null ||
		skip "cc -m32 cannot link here"
	chmod a-x "$SCRATCH/static32"
	run -126 "$WRAPPER" -- "$SCRATCH/static32"
	[ "${lines[0]}" = "tcprare: warning: $SCRATCH/static32 is statically linked: libtcprare cannot act on it" ]
}

@test "a command setuid to another user is warned about and still runs" {
	mkdir "$SCRATCH/suid"
	cp /bin/true "$SCRATCH/suid/true" # keeps the name: true may be a multi-call binary
	chown 65534 "$SCRATCH/suid/true" 2>/dev/null || skip "cannot give the file to another owner"
	chmod u+s "$SCRATCH/suid/true"
	run -0 "$WRAPPER" -- "$SCRATCH/suid/true"
	[ "$output" = "tcprare: warning: $SCRATCH/suid/true is setuid/setgid: the dynamic loader ignores LD_PRELOAD for it" ]
}

@test "a setuid command run by its own owner gives no warning: the loader honours LD_PRELOAD then" {
	mkdir "$SCRATCH/suid"
	cp /bin/true "$SCRATCH/suid/true"
	chmod u+s "$SCRATCH/suid/true"
	run -0 "$WRAPPER" -- "$SCRATCH/suid/true"
	[ -z "$output" ]
}

@test "a script whose interpreter is dynamically linked gives no warning" {
	printf '#!/bin/sh\necho direct\n' >"$SCRATCH/direct"
	printf '#!/usr/bin/env sh\necho via env\n' >"$SCRATCH/via-env"
	chmod +x "$SCRATCH/direct" "$SCRATCH/via-env"
	run -0 "$WRAPPER" -- "$SCRATCH/direct"
	[ "$output" = direct ]
	run -0 "$WRAPPER" -- "$SCRATCH/via-env"
	[ "$output" = "via env" ]
}

@test "a script whose interpreter is statically linked is warned about, through /usr/bin/env too" {
	cc -static -o "$SCRATCH/static3" -x c - <<<'int main(void) { return 3; }' 2>/dev/null ||
		skip "cc -static does not work here (no static libc)"
	printf '#!%s\n' "$SCRATCH/static3" >"$SCRATCH/direct"
	printf '#!/usr/bin/env -S static3 --flag\n' >"$SCRATCH/via-env"
	chmod +x "$SCRATCH/direct" "$SCRATCH/via-env"
	run -3 "$WRAPPER" -- "$SCRATCH/direct"
	[ "$output" = "tcprare: warning: $SCRATCH/static3 is statically linked: libtcprare cannot act on it" ]
	PATH=$SCRATCH:$PATH run -3 "$WRAPPER" -- "$SCRATCH/via-env"
	[ "$output" = "tcprare: warning: $SCRATCH/static3 is statically linked: libtcprare cannot act on it" ]
}
