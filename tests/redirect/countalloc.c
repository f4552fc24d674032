/* Ground truth for the coverage test: counting hooks installed with
 * PyMem_SetAllocator on the 3 domains (tracemalloc's mechanism). Counts
 * top-level calls (a per-thread reentrancy flag, as tracemalloc) and all
 * calls, per domain and function. Built against the target's own headers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { FN_MALLOC, FN_CALLOC, FN_REALLOC, FN_FREE, NFN };

static PyMemAllocatorEx saved[3];
static unsigned long long top[3][NFN], all[3][NFN];
static __thread int depth;
static int counting;

static void count(int dom, int fn)
{
	__atomic_add_fetch(&all[dom][fn], 1, __ATOMIC_RELAXED);
	if (depth == 0)
		__atomic_add_fetch(&top[dom][fn], 1, __ATOMIC_RELAXED);
}

#define DOM(ctx) ((int)((PyMemAllocatorEx *)(ctx) - saved))

static void *hook_malloc(void *ctx, size_t size)
{
	PyMemAllocatorEx *a = ctx;
	void *p;

	count(DOM(ctx), FN_MALLOC);
	depth++;
	p = a->malloc(a->ctx, size);
	depth--;
	return p;
}

static void *hook_calloc(void *ctx, size_t n, size_t size)
{
	PyMemAllocatorEx *a = ctx;
	void *p;

	count(DOM(ctx), FN_CALLOC);
	depth++;
	p = a->calloc(a->ctx, n, size);
	depth--;
	return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t size)
{
	PyMemAllocatorEx *a = ctx;
	void *p;

	count(DOM(ctx), FN_REALLOC);
	depth++;
	p = a->realloc(a->ctx, ptr, size);
	depth--;
	return p;
}

static void hook_free(void *ctx, void *ptr)
{
	PyMemAllocatorEx *a = ctx;

	count(DOM(ctx), FN_FREE);
	depth++;
	a->free(a->ctx, ptr);
	depth--;
}

static PyObject *start(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	if (!counting) {
		for (int d = 0; d < 3; d++) {
			PyMemAllocatorEx h = {&saved[d], hook_malloc, hook_calloc, hook_realloc,
					      hook_free};

			PyMem_GetAllocator(d, &saved[d]);
			PyMem_SetAllocator(d, &h);
		}
		counting = 1;
	}
	Py_RETURN_NONE;
}

static PyObject *stop(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	if (counting) {
		for (int d = 0; d < 3; d++)
			PyMem_SetAllocator(d, &saved[d]);
		counting = 0;
	}
	Py_RETURN_NONE;
}

/* ((top per domain x fn), (all per domain x fn)), domains raw, mem, obj. */
static PyObject *counts(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return Py_BuildValue("((KKKK)(KKKK)(KKKK))((KKKK)(KKKK)(KKKK))",
			     top[0][0], top[0][1], top[0][2], top[0][3],
			     top[1][0], top[1][1], top[1][2], top[1][3],
			     top[2][0], top[2][1], top[2][2], top[2][3],
			     all[0][0], all[0][1], all[0][2], all[0][3],
			     all[1][0], all[1][1], all[1][2], all[1][3],
			     all[2][0], all[2][1], all[2][2], all[2][3]);
}

static PyMethodDef methods[] = {
	{"start", start, METH_NOARGS, "install the counting hooks"},
	{"stop", stop, METH_NOARGS, "remove them"},
	{"counts", counts, METH_NOARGS, "(top, all) per domain and function"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "countalloc", NULL, -1, methods,
				    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_countalloc(void)
{
	return PyModule_Create(&module);
}
