/* log_storm: makes the CLOSE_WAIT guard log N events (each on a fresh connection whose server side
 * closed at once), optionally from a forked child at the same time, after doing to its descriptors
 * what real programs do. Prints "refused N" per process (the number of writes refused).
 *
 *   log_storm [-n N] [-f] [-u] [-r FILE] [-c] [-C] [-T]
 * -f fork: parent and child both log   -r FILE: dup2 FILE over stderr first
 * -u after the fork, become user and group 65534 (nobody), as a server's worker does, then log
 * -c close_range(3, ~0U) first          -C closefrom(3) first (glibc closes without calling close)
 * -T then take the highest number open at start (the library's log) and print "close_range closed
 *    it: 1" if close_range can close it again, then take it again and print "closed it: 1" if close can */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int storm(int n)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0), refused = 0;
	if (bind(listener, (struct sockaddr *)&addr, len) || listen(listener, 8) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		return -1;
	for (int i = 0; i < n; i++) {
		int client = socket(AF_INET, SOCK_STREAM, 0);
		connect(client, (struct sockaddr *)&addr, len);
		close(accept(listener, NULL, NULL)); /* FIN: the client's first write is checked */
		usleep(1000);
		if (write(client, "x", 1) < 0)
			refused++;
		close(client);
	}
	close(listener);
	return refused;
}

static int highest_open_fd(void)
{
	int high = -1;
	DIR *dir = opendir("/proc/self/fd");
	for (struct dirent *e; dir && (e = readdir(dir));)
		if (atoi(e->d_name) > high && atoi(e->d_name) != dirfd(dir))
			high = atoi(e->d_name);
	if (dir)
		closedir(dir);
	return high;
}

int main(int argc, char **argv)
{
	int high = highest_open_fd();
	int n = 100, forking = 0, dropping = 0, opt;
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "n:fur:cCT")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'f': forking = 1; break;
		case 'u': dropping = 1; break;
		case 'r': dup2(open(optarg, O_WRONLY | O_CREAT | O_APPEND, 0644), 2); break;
		case 'c': close_range(3, ~0U, 0); break;
		case 'C': closefrom(3); break;
		case 'T': {
			int taken = fcntl(open("/dev/null", O_RDONLY), F_DUPFD, high);
			close_range((unsigned int)taken, (unsigned int)taken, 0);
			printf("took %d: %d, close_range closed it: %d", high, taken == high, fcntl(taken, F_GETFD) < 0);
			taken = fcntl(open("/dev/null", O_RDONLY), F_DUPFD, high);
			printf(", closed it: %d\n", close(taken) == 0);
			break;
		}
		default: return 2;
		}
	}
	pid_t child = forking ? fork() : -1;
	if (dropping && (setgid(65534) != 0 || setuid(65534) != 0)) {
		perror("log_storm: setuid");
		return 3;
	}
	printf("refused %d\n", storm(n));
	fflush(stdout);
	if (child > 0)
		waitpid(child, NULL, 0);
	return 0;
}
