/* For cthreads.py: calls a callback n times from a thread that CPython did
 * not create, so that each call makes (PyGILState_Ensure) and deletes
 * (PyGILState_Release) a thread state on the same OS thread. */
#include <pthread.h>

struct job {
	void (*cb)(int);
	int n;
};

static void *run(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < j->n; i++)
		j->cb(i);
	return 0;
}

int call_from_new_thread(void (*cb)(int), int n)
{
	struct job j = { cb, n };
	pthread_t t;

	if (pthread_create(&t, 0, run, &j))
		return -1;
	return pthread_join(t, 0);
}
