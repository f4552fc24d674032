/* tmbpf --version and --dump-options (version.h). */
#include "cli/version.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "capture/uprobe_multi.h"
#include "cli/commands.h"

const char cli_exit_status_text[] =
	"Exit status: 0 success; 1 failure (one line on stderr says what and how to fix it);\n"
	"2 usage error. tmbpf run returns CMD's own status (128+N when a signal N killed it),\n"
	"and 125 when tmbpf itself fails, 126 when CMD cannot be executed, 127 when it is not\n"
	"found (as env(1) and timeout(1) do).\n";

/* Optimized uprobes (x86, kernel 6.18+) replace the int3 trap of a probe on
 * a 5-byte nop with a call; the kernel that has them has this function. */
static int has_kernel_symbol(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	FILE *f = fopen("/proc/kallsyms", "re");
	int found = 0;

	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		char *sym = strrchr(line, ' ');

		if (sym && !strncmp(sym + 1, name, n) && (sym[1 + n] == '\n' || sym[1 + n] == '\t'))
			found = 1;
	}
	fclose(f);
	return found;
}

static const char *yes_no(int v)
{
	return v > 0 ? "yes" : v == 0 ? "no" : "unknown";
}

int cli_version(FILE *out, int json)
{
	struct utsname u;
	int btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	int multi = btf ? tm_uprobe_multi_attach_type() != 0 : -1;
	int session = btf ? tm_uprobe_session_attach_type() != 0 : -1;
	int optimized = has_kernel_symbol("arch_uprobe_optimize");

	if (uname(&u))
		strcpy(u.release, "unknown");
	if (json) {
		fprintf(out, "{\"tmbpf\": \"%s\", \"libbpf\": \"%s\", \"kernel\": \"%s\", "
			     "\"btf\": %s, \"uprobe_multi\": %s, \"session_uprobes\": %s, "
			     "\"optimized_uprobes\": %s}\n",
			TMBPF_VERSION, libbpf_version_string(), u.release, btf ? "true" : "false",
			multi > 0 ? "true" : multi == 0 ? "false" : "null",
			session > 0 ? "true" : session == 0 ? "false" : "null",
			optimized > 0 ? "true" : optimized == 0 ? "false" : "null");
		return 0;
	}
	fprintf(out, "tmbpf %s\n", TMBPF_VERSION);
	fprintf(out, "libbpf %s\n", libbpf_version_string());
	fprintf(out, "kernel %s\n", u.release);
	fprintf(out, "  BTF (/sys/kernel/btf/vmlinux):  %s\n", yes_no(btf));
	fprintf(out, "  uprobe_multi links (6.6+):     %s%s\n", yes_no(multi),
		multi == 0 ? " (perf-event uprobes: slower to detach)" : "");
	fprintf(out, "  session uprobes (6.13+):       %s%s\n", yes_no(session),
		session == 0 ? " (no pymalloc prediction: two traps per allocation)" : "");
	fprintf(out, "  optimized uprobes (6.18+ x86): %s\n", yes_no(optimized));
	return 0;
}

static void dump_option(FILE *out, const struct cli_command *c, const char *heading,
			const struct cli_option *o)
{
	fprintf(out, "option\t%s\t%s\t", c->name, o->name);
	if (o->key < KEY_FIRST_LONG)
		fprintf(out, "-%c", o->key);
	else
		fputc('-', out);
	fprintf(out, "\t%s\t%s\t%s\n", o->arg ? o->arg : "-", heading, o->help);
}

/* A multi-line text as one field: newlines as "\n". */
static void put_escaped(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '\t')
			fputs("\\t", out);
		else
			fputc(*s, out);
	}
}

int cli_dump_options(FILE *out)
{
	fprintf(out, "version\t%s\nexit\t", TMBPF_VERSION);
	put_escaped(out, cli_exit_status_text);
	fputc('\n', out);
	for (size_t i = 0; i < cli_ncommands; i++) {
		const struct cli_command *c = cli_commands[i];

		fprintf(out, "command\t%s\t%s\t%s\t", c->name, c->usage, c->summary);
		put_escaped(out, c->details);
		fputc('\n', out);
		for (size_t t = 0; t < c->ntables; t++)
			for (const struct cli_option *o = c->tables[t].options; o->name; o++)
				dump_option(out, c, c->tables[t].heading, o);
		dump_option(out, c, "", &cli_help_option);
	}
	return 0;
}
