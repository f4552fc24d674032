/* /proc/PID/mem for writing (mem_write.h). */
#include "patch/mem_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int tm_mem_open(pid_t pid, char *err, size_t errlen)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ESRCH) {
		snprintf(err, errlen, "no process with PID %d", (int)pid);
		return -ESRCH;
	}
	if (errno == EACCES || errno == EPERM) {
		snprintf(err, errlen, "not permitted to write the memory of PID %d: run as root "
			 "(CAP_SYS_PTRACE)", (int)pid);
		return -errno;
	}
	snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
	return -errno;
}

int tm_mem_read(int fd, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len, (off_t)addr);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ESRCH; /* short read: the mm is gone */
}

int tm_mem_write(int fd, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)addr);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int tm_mem_write_pid(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	char err[160];
	int fd = tm_mem_open(pid, err, sizeof(err)), e;

	if (fd < 0)
		return fd;
	e = tm_mem_write(fd, addr, buf, len);
	close(fd);
	return e;
}
