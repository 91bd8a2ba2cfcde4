/* What a socket in the snapshot means, in a sentence, and the tcprare setting that would help. */
#pragma once
#include "sockdiag.h"

#include <stdbool.h>

/* Below this a backlog overflows under an ordinary burst of connects (python's socketserver has 5,
 * Java's ServerSocket 50); 128 was net.core.somaxconn's default before Linux 5.4. */
#define SMALL_BACKLOG 128

struct verdict {
	bool finding;        /* counts for the exit status */
	char text[512];      /* what it means, for people */
	const char *setting; /* what would help: a TCPRARE_* setting or a sysctl; NULL if nothing */
};

/* accepted: the connection's local port is a listener's, so the program accepted it (the guard's
 * default scope covers only connections the program made itself). */
void verdict_close_wait(const struct diag_socket *s, bool accepted, struct verdict *v);
/* somaxconn: net.core.somaxconn of this namespace, or -1 if unknown. */
void verdict_listener(const struct diag_socket *s, long somaxconn, struct verdict *v);
