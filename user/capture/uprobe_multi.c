/* uprobe_multi links through the raw bpf(2) syscall (uprobe_multi.h). */
#include "capture/uprobe_multi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define CMD_BPF_LINK_CREATE 28
#define UPROBE_MULTI_RETURN 1u /* BPF_F_UPROBE_MULTI_RETURN */

/* The first 64 bytes of union bpf_attr as BPF_LINK_CREATE reads them for
 * uprobe_multi (include/uapi/linux/bpf.h, 6.6+); the offsets were checked
 * against the 6.18 kernel's BTF. */
struct link_create_uprobe_multi {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t multi_flags;
	uint32_t pid;
	uint32_t pad;
};
_Static_assert(sizeof(struct link_create_uprobe_multi) == 64, "bpf_attr.link_create size");
_Static_assert(offsetof(struct link_create_uprobe_multi, path) == 16, "uprobe_multi.path");
_Static_assert(offsetof(struct link_create_uprobe_multi, cnt) == 48, "uprobe_multi.cnt");
_Static_assert(offsetof(struct link_create_uprobe_multi, pid) == 56, "uprobe_multi.pid");

/* enum bpf_attach_type values of the running kernel, 0 where it has none
 * (libbpf 1.1's headers predate them): both found in one pass over the
 * vmlinux BTF, whose loading costs tens of ms, once per process. */
enum { AT_MULTI, AT_SESSION, AT_N };
static const char *const attach_type_names[AT_N] = { "BPF_TRACE_UPROBE_MULTI",
						     "BPF_TRACE_UPROBE_SESSION" };

static const unsigned *attach_types(void)
{
	static unsigned type[AT_N];
	static int looked;
	struct btf *btf;

	if (looked)
		return type;
	looked = 1;
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return type;
	for (uint32_t id = 1; id < btf__type_cnt(btf); id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e;

		if (!btf_is_enum(t))
			continue;
		e = btf_enum(t);
		for (uint16_t i = 0; i < btf_vlen(t); i++)
			for (int k = 0; k < AT_N; k++)
				if (strcmp(btf__name_by_offset(btf, e[i].name_off), attach_type_names[k]) == 0)
					type[k] = (unsigned)e[i].val;
	}
	btf__free(btf);
	return type;
}

unsigned tm_uprobe_multi_attach_type(void)
{
	return attach_types()[AT_MULTI];
}

unsigned tm_uprobe_session_attach_type(void)
{
	return attach_types()[AT_SESSION];
}

int tm_uprobe_multi_link(int prog_fd, const char *path, const uint64_t *offsets,
			 const uint64_t *cookies, uint32_t cnt, int ret, pid_t pid)
{
	struct link_create_uprobe_multi a;
	unsigned type = ret == TM_UPROBE_SESSION ? tm_uprobe_session_attach_type()
						  : tm_uprobe_multi_attach_type();
	long fd;

	if (!type)
		return -EOPNOTSUPP;
	memset(&a, 0, sizeof(a));
	a.prog_fd = (uint32_t)prog_fd;
	a.attach_type = type;
	a.path = (uint64_t)(uintptr_t)path;
	a.offsets = (uint64_t)(uintptr_t)offsets;
	a.cookies = (uint64_t)(uintptr_t)cookies;
	a.cnt = cnt;
	a.multi_flags = ret == 1 ? UPROBE_MULTI_RETURN : 0; /* never with a session */
	a.pid = (uint32_t)pid;
	fd = syscall(__NR_bpf, CMD_BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : (int)fd;
}
