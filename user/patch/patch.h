/* user/patch/ -- the only code that writes into a target process.
 * Everything it writes is minimal, announced on stderr by the caller, keeps
 * the target correct if tmbpf is SIGKILLed between any two of its steps,
 * and is undone or made inert when tmbpf detaches. The rules each writer
 * keeps:
 *  - pointers (redirect.h): aligned 8-byte words whose old and new values
 *    mean the same to every thread; each re-read just before its write and
 *    restored only while it still holds our value;
 *  - a ptrace stop (launch.h) is never left behind: the child is released
 *    (or detached by the kernel when tmbpf dies) in a state that runs on.
 * May not: use libbpf, print (diagnostics through core/log.h). The layer
 * check refuses ptrace pokes, register writes and writable opens of
 * /proc/PID/mem anywhere else. This header only gathers the modules. */
#ifndef TM_PATCH_PATCH_H
#define TM_PATCH_PATCH_H

#include "patch/launch.h"
#include "patch/redirect.h"

#endif
