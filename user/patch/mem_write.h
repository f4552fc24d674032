/* Writing a target's memory: /proc/PID/mem opened for writing (FOLL_FORCE:
 * read-only private pages such as text and RELRO get a private copy). The
 * one place outside tests that opens it so (tests/check_layers.sh). */
#ifndef TM_PATCH_MEM_WRITE_H
#define TM_PATCH_MEM_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A descriptor for pid's memory, or -errno with one line in err ("not
 * permitted to write the memory of PID N: run as root", "no process ..."). */
int tm_mem_open(pid_t pid, char *err, size_t errlen);

/* pread/pwrite of exactly len bytes at addr: 0, -ESRCH (the mm is gone),
 * -EIO (short write) or -errno. */
int tm_mem_read(int fd, uint64_t addr, void *buf, size_t len);
int tm_mem_write(int fd, uint64_t addr, const void *buf, size_t len);

/* Open, write, close. */
int tm_mem_write_pid(pid_t pid, uint64_t addr, const void *buf, size_t len);

#endif
