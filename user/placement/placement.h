/* user/placement/ -- what machine code and ELF files say, with no process.
 * May: read ELF files (elf_file.h), decode x86-64 (x86_insn.h: the one
 * decoder), decide where a uprobe may sit (probe_point.h), find call sites
 * (newref_sites.h), LTO guards (devirt.h) and data references in code
 * (code_refs.h). May not: open a process, need root, use libbpf, print.
 * Everything here is a pure function of file bytes, so it is unit-tested
 * on fixtures and real interpreter files. This header only gathers them. */
#ifndef TM_PLACEMENT_PLACEMENT_H
#define TM_PLACEMENT_PLACEMENT_H

#include "placement/allocators.h"
#include "placement/code_refs.h"
#include "placement/devirt.h"
#include "placement/elf_file.h"
#include "placement/newref_sites.h"
#include "placement/probe_point.h"
#include "placement/x86_insn.h"

#endif
