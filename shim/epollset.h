/* The program's epoll instances, by descriptor number.
 *
 * An epoll registration belongs to the open socket, not to the descriptor number (epoll(7)). While a
 * lingering close keeps a socket open after the program closed its number, the program's epoll sets
 * would go on reporting that socket's events, under a number (and with the program's event data)
 * that by then belongs to a new connection. So before a socket leaves the program's hands, it is
 * removed from every epoll instance the program holds, if the program ever registered it
 * (FLAG_IN_EPOLL: the epoll_ctl hook sees every registration but those made with syscall() or
 * io_uring, see libtcprare(7), LIMITS). */
#pragma once
#include <stdbool.h>

/* The program registered a descriptor in epfd (called after each successful EPOLL_CTL_ADD). */
void epollset_note_used(int epfd);
/* newfd is a copy of oldfd: if oldfd is an epoll instance, so is newfd. */
void epollset_note_copy(int oldfd, int newfd);
/* fd is closed: if it was an epoll instance, it is one no longer. Inline: close() tells this for every
 * number the descriptor table does not know, and a program that never used epoll pays a load. */
extern unsigned int epollset_used; /* instances [0, epollset_used) of epollset.c's table may be known */
void epollset_forget(int fd);
static inline void epollset_note_closed(int fd)
{
	if (__atomic_load_n(&epollset_used, __ATOMIC_ACQUIRE))
		epollset_forget(fd);
}
/* Removes fd from every known epoll instance. False if the program holds more instances than can be
 * remembered: then the socket may still be registered somewhere, and must not outlive its number. */
bool epollset_remove_everywhere(int fd);
