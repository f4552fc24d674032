/* Is an aligned 8-byte pwrite to /proc/PID/mem seen whole by a thread of
 * PID that loads the word concurrently? redirect.c relies on it. A child
 * with two reader threads counts values that are neither of the two written;
 * the parent alternates them N times. Prints "writes N reads R torn T". */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define VAL_A 0x00000000004fb450ull /* _PyObject_Malloc on Debian python3.11 */
#define VAL_B 0x00000000006d1290ull /* its padding stub: the three low bytes differ */

static volatile uint64_t word __attribute__((aligned(64))) = VAL_A;
static volatile uint64_t torn, reads;

static void *reader(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t v = word;

		reads++;
		if (v != VAL_A && v != VAL_B)
			torn++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	uint64_t t = 0, r = 0;
	char path[64];
	pid_t child;
	int fd;

	child = fork();
	if (child == 0) {
		pthread_t th;

		pthread_create(&th, NULL, reader, NULL);
		pthread_create(&th, NULL, reader, NULL);
		pause();
		return 0;
	}
	usleep(100000);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)child);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		kill(child, SIGKILL);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		uint64_t v = (i & 1) ? VAL_A : VAL_B;

		if (pwrite(fd, &v, 8, (off_t)(uintptr_t)&word) != 8) {
			perror("pwrite");
			kill(child, SIGKILL);
			return 1;
		}
	}
	if (pread(fd, &t, 8, (off_t)(uintptr_t)&torn) != 8 ||
	    pread(fd, &r, 8, (off_t)(uintptr_t)&reads) != 8)
		t = UINT64_MAX;
	printf("writes %ld reads %" PRIu64 " torn %" PRIu64 "\n", n, r, t);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(fd);
	return 0;
}
