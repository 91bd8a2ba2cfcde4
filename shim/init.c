/* Load and unload: resolve libc, read the settings, open the log, learn the sockets we inherited,
 * and follow fork(). */
#include "backlog.h"
#include "clock.h"
#include "config.h"
#include "fdstate.h"
#include "init.h"
#include "linger.h"
#include "log.h"
#include "ownfd.h"
#include "process.h"
#include "real.h"
#include "vfork.h"

#include <pthread.h>

void tcprare_after_fork_in_parent(void)
{
	fdstate_note_fork(false);
}

void tcprare_after_fork_in_child(void)
{
	fdstate_note_fork(true);
	if (config.confined) /* the rest makes system calls the program's seccomp filter may refuse */
		return;
	process_note_self();
	ownfd_after_fork_child();
	log_after_fork_child();
	backlog_after_fork_child();
	linger_after_fork_child();
	vfork_after_fork_child();
}

__attribute__((constructor)) static void tcprare_load(void)
{
	real_resolve();
	clock_resolve(); /* before anything logs: a line's time */
	process_note_self();
	config_load();
	log_open();
	fdstate_adopt_inherited();
	/* Also covers daemon() and anything else that forks through glibc's fork. */
	pthread_atfork(NULL, tcprare_after_fork_in_parent, tcprare_after_fork_in_child);
}

__attribute__((destructor)) static void tcprare_unload(void)
{
	if (in_vfork_child()) /* a child that called exit(), not _exit(): the summary is the parent's */
		return;
	linger_finish();
	/* Not under the program's seccomp filter: it reads /proc (seccomp.c). */
	long long overflows = config.confined ? -1 : backlog_netns_overflows();
	/* Namespace-wide: other processes' listeners count too, and the name says so. */
	const struct log_field extra[] = {FIELD_NUM("linger_quiet", linger_quiet_count()),
					  FIELD_NUM("netns_listen_overflows", overflows)};
	log_summary(extra, overflows >= 0 ? 2 : 1);
}
