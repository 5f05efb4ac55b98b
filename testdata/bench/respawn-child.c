/* respawn-child: appends "S <CLOCK_MONOTONIC ns>" when it starts and
 * "E <ns>" just before it exits with status 1. The gap between one E and
 * the next S is the supervisor's respawn latency. With a third argument
 * "pause" it waits for a signal instead of exiting (idle-cost runs). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void stamp(int fd, char tag) {
	struct timespec ts;
	char buf[64];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(buf, sizeof buf, "%c %lld\n", tag, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	write(fd, buf, n);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 2;
	stamp(fd, 'S');
	if (argc > 2 && strcmp(argv[2], "pause") == 0) {
		pause();
		return 0;
	}
	stamp(fd, 'E');
	_exit(1);
}
