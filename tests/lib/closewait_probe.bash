# Shared by the guard's .bats files: tests/progs/closewait_probe without and with the library, its
# stderr (the library's log) kept in $BATS_TEST_TMPDIR/stderr. Its server closes a connection after
# 300 ms of quiet, so that the suite stays quick; the guard is told to count closes after 200 ms of
# quiet (the default, 1 s, has a test of its own in closewait_guard.bats).
export TCPRARE_CLOSEWAIT_IDLE_MS=200

probe() { "$PROGS/closewait_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
probe_with() { with_tcprare "$PROGS/closewait_probe" "$@" 2>"$BATS_TEST_TMPDIR/stderr"; }
