/* tests/e2e/embedder.sh's target: an embedder that starts Python 4 s after
 * its exec (as uwsgi does after reading its configuration), keeps 20000
 * bytearrays of 1000 bytes (line 1 of its <string>), finalizes. */
#include <Python.h>
#include <unistd.h>

int main(void)
{
	sleep(4);
	Py_Initialize();
	PyRun_SimpleString("x = [bytearray(1000) for _ in range(20000)]\n"
			   "print(len(x))\n");
	return Py_FinalizeEx() < 0 ? 1 : 0;
}
