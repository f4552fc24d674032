/* _Py_NewReference call sites (newref_sites.c) on the real libpythons of
 * pyenv 3.9-3.13: the sites found must be exactly objdump's calls of
 * _Py_NewReference (direct or through its PLT stub) outside the functions
 * known to allocate fresh, and the free-list pops must be among them. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "placement/elf_file.h"
#include "placement/newref_sites.h"

struct objdump_sites {
	uint64_t probed[512];
	size_t nprobed, nfresh;
};

/* objdump's view: lines "  1c9622:\tcall   10a8a0 <_Py_NewReference@plt>". */
static int objdump_sites(const char *lib, struct objdump_sites *o)
{
	char cmd[1600], line[1024], func[512] = "";
	FILE *f;

	memset(o, 0, sizeof(*o));
	snprintf(cmd, sizeof(cmd), "objdump -d --no-show-raw-insn '%s' 2>/dev/null", lib);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long at;
		char *lt;

		if (sscanf(line, "%llx <%511[^>]>:", &at, func) == 2)
			continue;
		if ((!strstr(line, "\tcall ") && !strstr(line, "\tjmp ")) ||
		    !(lt = strstr(line, " <_Py_NewReference")) ||
		    (lt[18] != '>' && strncmp(lt + 18, "@plt>", 5)))
			continue;
		if (sscanf(line, " %llx:", &at) != 1)
			continue;
		if (tm_newref_site_is_fresh(func))
			o->nfresh++;
		else if (o->nprobed < 512)
			o->probed[o->nprobed++] = at;
	}
	return pclose(f) == 0 ? 0 : -EIO;
}

static int has_site_in(const struct tm_elf *e, const struct tm_newref_sites *s, const char *fn)
{
	struct tm_elf_sym sym;

	if (tm_elf_symbol(e, fn, &sym))
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->vaddr[i] >= sym.value && s->vaddr[i] < sym.value + sym.size)
			return 1;
	return 0;
}

static void test_lib(const char *ver, const char *lib)
{
	struct tm_newref_sites *s = calloc(1, sizeof(*s));
	struct objdump_sites *o = calloc(1, sizeof(*o));
	struct tm_elf_sym nr;
	struct tm_elf *e = tm_elf_open(lib);
	size_t matched = 0;
	int rc;

	CHECK(e && s && o, "%s: open %s", ver, lib);
	if (!e || !s || !o)
		goto cleanup;
	CHECK(tm_elf_symbol(e, "_Py_NewReference", &nr) == 0, "%s: _Py_NewReference defined", ver);
	rc = tm_newref_sites_find(e, nr.value, s);
	CHECK(rc == 0 && s->n > 0 && s->nfresh > s->n / 2,
	      "%s: %zu sites probed, %zu fresh left out (rc %d)", ver, s->n, s->nfresh, rc);
	CHECK(objdump_sites(lib, o) == 0 && o->nprobed > 0, "%s: objdump lists %zu + %zu sites", ver,
	      o->nprobed, o->nfresh);
	for (size_t i = 0; i < o->nprobed; i++)
		for (size_t j = 0; j < s->n; j++)
			matched += o->probed[i] == s->vaddr[j];
	CHECK(matched == o->nprobed && s->n == o->nprobed && s->nfresh == o->nfresh,
	      "%s: same sites as objdump (%zu of %zu matched; fresh %zu vs %zu)", ver, matched,
	      o->nprobed, s->nfresh, o->nfresh);
	CHECK(has_site_in(e, s, strcmp(ver, "3.9") == 0 ? "PyTuple_New" : "tuple_alloc") &&
		      has_site_in(e, s, "PyList_New") && has_site_in(e, s, "PyFloat_FromDouble") &&
		      has_site_in(e, s, "PyDict_New"),
	      "%s: the tuple, list, float and dict free lists are probed", ver);
	CHECK(!has_site_in(e, s, "PyUnicode_New") && !has_site_in(e, s, "_PyObject_GC_New"),
	      "%s: fresh str and GC objects are not", ver);
cleanup:
	tm_elf_close(e);
	free(s);
	free(o);
}

int main(void)
{
	const char *pyenv = getenv("PYENV_ROOT");
	char home[512], dir[600], lib[1400];
	int found = 0;

	CHECK(tm_newref_site_is_fresh("long_add") && tm_newref_site_is_fresh("long_add.cold") &&
		      tm_newref_site_is_fresh("PyType_GenericAlloc.part.0") &&
		      tm_newref_site_is_fresh("_PyObject_GC_New"),
	      "fresh: long_*, suffixes ignored");
	CHECK(!tm_newref_site_is_fresh("tuple_alloc") && !tm_newref_site_is_fresh("PyList_New") &&
		      !tm_newref_site_is_fresh("long") && !tm_newref_site_is_fresh("PyObject_Init") &&
		      !tm_newref_site_is_fresh("_PyObject_GC_NewX"),
	      "not fresh: free lists, PyObject_Init, near names");
	if (!pyenv || !*pyenv) {
		snprintf(home, sizeof(home), "%s/.pyenv", getenv("HOME") ? getenv("HOME") : "/root");
		pyenv = home;
	}
	for (int minor = 9; minor <= 13; minor++) {
		char ver[8];
		DIR *d;
		struct dirent *de;

		snprintf(ver, sizeof(ver), "3.%d", minor);
		snprintf(dir, sizeof(dir), "%s/versions", pyenv);
		d = opendir(dir);
		if (!d)
			break;
		while ((de = readdir(d))) {
			size_t l = strlen(ver);

			if (strncmp(de->d_name, ver, l) || (de->d_name[l] != '.' && de->d_name[l]))
				continue;
			snprintf(lib, sizeof(lib), "%s/%s/lib/libpython%s.so.1.0", dir, de->d_name, ver);
			if (access(lib, R_OK) == 0) {
				test_lib(ver, lib);
				found++;
				break;
			}
		}
		closedir(d);
	}
	CHECK(found == 5, "pyenv 3.9-3.13 libpythons found: %d", found);
	{
		struct tm_elf *e = tm_elf_open("/usr/bin/python3.11");
		struct tm_newref_sites s;

		if (e) {
			CHECK(tm_newref_sites_find(e, 0x1000, &s) == -ENOENT,
			      "Debian python3.11 (stripped): sites unknown, the entry is probed");
			tm_elf_close(e);
		}
	}
	return CHECK_DONE();
}
