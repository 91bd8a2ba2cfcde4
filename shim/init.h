/* What the library does when a process forks, as pthread_atfork runs it for fork(): also called by
 * the hooks of _Fork() and clone(), which run no fork handlers. */
#pragma once

/* In the parent, once the child exists: every socket open then is held by both. */
void tcprare_after_fork_in_parent(void);
/* In the child (its own memory): the child's state starts from the parent's, as after fork(). */
void tcprare_after_fork_in_child(void);
