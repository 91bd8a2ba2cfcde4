/* The snapshot's output: for people, one key=value line per socket with its verdict under it, then a
 * summary; with --json, one object per line, keys as in the library's JSON log (time, pid, prog,
 * local, peer) and each kind's own. */
#pragma once
#include "owners.h"
#include "sockdiag.h"
#include "verdict.h"

#include <stdbool.h>

struct report_totals {
	unsigned int close_wait, listeners, findings;
	unsigned int hidden_owners;      /* sockets listed whose owner /proc hid */
	struct owner_lookup lookup;
	long somaxconn;                  /* -1: unknown */
};

/* Takes the snapshot's time, which every line carries. */
void report_begin(bool json);
void report_socket(const struct diag_socket *s, const struct owner *o, const struct verdict *v, long somaxconn);
void report_end(const struct report_totals *totals);
