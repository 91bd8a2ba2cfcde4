/* stale_listener: a TCP listener closed behind the library's back (fdopen + fclose: glibc closes
 * without calling close()) and its number reused by a UNIX listener that the library does not see
 * created either (a raw system call), so the table still says TCP listener there. The UNIX
 * connection accepted there must never be taken for TCP: its peer half-closes, and the server's write
 * must go through. Prints "same_number=1" and "server write rc=N errno=NAME". */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	listen(tcp, 5);
	fclose(fdopen(tcp, "r"));

	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "tcprare-stale-%d", (int)getpid()); /* abstract */
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1);
	int unix_listener = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	if (bind(unix_listener, (struct sockaddr *)&addr, len) != 0 || listen(unix_listener, 5) != 0) {
		perror("stale_listener: listen");
		return 1;
	}
	int client = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(client, (struct sockaddr *)&addr, len);
	int server = accept(unix_listener, NULL, NULL);
	shutdown(client, SHUT_WR); /* the peer half-closes and still reads */
	usleep(30000);
	ssize_t rc = write(server, "reply", 5);
	printf("same_number=%d\n", unix_listener == tcp);
	printf("server write rc=%zd errno=%s\n", rc, rc < 0 ? strerror(errno) : "0");
	return 0;
}
