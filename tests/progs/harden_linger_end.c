/* harden_linger_end: closes that hand their sockets to the drain thread while it ends, because its
 * descriptors were closed behind the library's back (as a raw close_range() would): each socket must
 * still get its FIN or RST, none be left open without either.
 *
 *   harden_linger_end
 * A thread is made and joined first (the drain thread then runs from the first lingering close). 1500
 * connections whose server sides have 5000 bytes unread are closed (they linger, their clients never
 * close), 1000 more are opened; then the library's epoll instance and doorbell pipe (the descriptors
 * above 1023 that are an eventpoll or a pipe) are closed with syscall(SYS_close), and the 1000 server
 * sides are closed one every 100 us, while the drain thread finds its descriptors gone and ends. Two
 * seconds later (raw system calls only from the closes on, so that no hook starts a new drain thread),
 * each of the 1000 clients reads what it has:
 *   eof=E reset=R stranded=S      S: neither FIN nor RST came
 * Raises RLIMIT_NOFILE to 16384 (exits 2 if the hard limit is lower). alarm(30) bounds it. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINGERING 1500
#define CLOSING 1000
#define MAX_OWN 8

static int listener;
static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* A connection whose server side has 5000 bytes unread, and has sent 1000. */
static void connection(int *client, int *server)
{
	static char buf[5000];
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, addr_len) != 0)
		die("connect");
	if ((*server = accept(listener, NULL, NULL)) < 0)
		die("accept");
	if (send(*client, buf, sizeof(buf), 0) != sizeof(buf) || send(*server, buf, 1000, 0) != 1000)
		die("send");
}

static long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static void *nothing(void *unused)
{
	return unused;
}

/* The library's descriptors: an eventpoll or a pipe above 1023 (the program's are below). */
static int library_descriptors(int own[MAX_OWN])
{
	int count = 0;
	for (int fd = 1024; fd < 16384 && count < MAX_OWN; fd++) {
		char path[64], link[64] = "";
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (readlink(path, link, sizeof(link) - 1) > 0 && (strstr(link, "eventpoll") || !strncmp(link, "pipe:", 5)))
			own[count++] = fd;
	}
	return count;
}

int main(void)
{
	static int lingering_clients[LINGERING], lingering_servers[LINGERING], clients[CLOSING], servers[CLOSING];
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < 16384)
		die("RLIMIT_NOFILE: a hard limit of 16384 is needed");
	rl.rlim_cur = 16384;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit");
	alarm(30);
	pthread_t thread;
	if (pthread_create(&thread, NULL, nothing, NULL) != 0 || pthread_join(thread, NULL) != 0)
		die("pthread_create");
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 4096) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
		die("listen");
	for (int i = 0; i < LINGERING; i++)
		connection(&lingering_clients[i], &lingering_servers[i]);
	for (int i = 0; i < LINGERING; i++)
		close(lingering_servers[i]);
	for (int i = 0; i < CLOSING; i++)
		connection(&clients[i], &servers[i]);
	usleep(300000);
	int own[MAX_OWN], owned = library_descriptors(own);
	for (int i = 0; i < owned; i++)
		syscall(SYS_close, own[i]);
	long start = now_us();
	for (int i = 0; i < CLOSING; i++) {
		while (now_us() < start + 100L * i)
			;
		close(servers[i]);
	}
	struct timespec two = {2, 0};
	syscall(SYS_nanosleep, &two, NULL);
	int eof = 0, reset = 0, stranded = 0;
	for (int i = 0; i < CLOSING; i++) {
		static char buf[8192];
		long n;
		while ((n = syscall(SYS_recvfrom, clients[i], buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL)) > 0)
			;
		if (n == 0)
			eof++;
		else if (errno == ECONNRESET)
			reset++;
		else
			stranded++;
	}
	printf("eof=%d reset=%d stranded=%d\n", eof, reset, stranded);
	fflush(stdout);
	syscall(SYS_exit_group, 0); /* no exit handlers: they would wait for what still lingers */
}
