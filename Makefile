# tmbpf build. Sources are found by folder, so adding a .c file needs no edit here:
#   user/core/*.c   -> build/libtmcore.a  (plain C + zlib: the tracemalloc model and file formats)
#   user/probe/*.c  -> build/libtmprobe.a (libbpf, libelf: attaching to a live CPython)
#   user/cli/*.c    -> ./tmbpf
#   bpf/*.bpf.c     -> build/bpf/*.skel.h (clang -target bpf, bpftool gen object/skeleton)
#   tests/unit/test_core_*.c -> build/tests/test_core_* (libtmcore.a only); other test_*.c link everything
#   tests/fuzz/fuzz_*.c -> build/fuzz/fuzz_* (clang -fsanitize=fuzzer,address,undefined)

OUT      ?= build
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)

WERROR   ?= $(if $(CI),-Werror,)
CFLAGS   ?= -g -O2
CFLAGS   += -std=gnu11 -Wall -Wextra $(WERROR) -MMD -MP -Iuser -Ibpf -I$(OUT) -D_GNU_SOURCE
LDLIBS   += -lbpf -lelf -lz -lm

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ivmlinux -Ibpf -Wall -Wno-unused-function

CORE_SRCS  := $(wildcard user/core/*.c)
PROBE_SRCS := $(wildcard user/probe/*.c)
CLI_SRCS   := $(wildcard user/cli/*.c)
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)

CORE_OBJS  := $(CORE_SRCS:%.c=$(OUT)/%.o)
PROBE_OBJS := $(PROBE_SRCS:%.c=$(OUT)/%.o)
CLI_OBJS   := $(CLI_SRCS:%.c=$(OUT)/%.o)
SKELS      := $(BPF_SRCS:bpf/%.bpf.c=$(OUT)/bpf/%.skel.h)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/tests/%)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(OUT)/fuzz/%)

.PHONY: all clean test unit fuzz bench demo check-core-purity
.DELETE_ON_ERROR:

all: tmbpf

tmbpf: $(CLI_OBJS) $(OUT)/libtmprobe.a $(OUT)/libtmcore.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(OUT)/libtmprobe.a $(OUT)/libtmcore.a $(LDLIBS)

$(OUT)/libtmcore.a: $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(OUT)/libtmprobe.a: $(PROBE_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# Probe and CLI sources may include generated skeletons.
$(PROBE_OBJS) $(CLI_OBJS): | $(SKELS)

$(OUT)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OUT)/bpf/%.tmp.bpf.o: bpf/%.bpf.c
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -MF $(@:.o=.d) -c -o $@ $<

# A static pattern rule: the generic %.o rule above would otherwise win for
# build/bpf/X.bpf.o (its prerequisite bpf/X.bpf.c exists) and compile BPF with cc.
$(SKELS:%.skel.h=%.bpf.o): $(OUT)/bpf/%.bpf.o: $(OUT)/bpf/%.tmp.bpf.o
	$(BPFTOOL) gen object $@ $<

$(OUT)/bpf/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# test_core_*: the snapshot library alone (no libbpf); test_probe_* and others: everything.
$(OUT)/tests/test_core_%: tests/unit/test_core_%.c $(OUT)/libtmcore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(OUT)/libtmcore.a -lz -lm

$(OUT)/tests/%: tests/unit/%.c $(OUT)/libtmprobe.a $(OUT)/libtmcore.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(OUT)/libtmprobe.a $(OUT)/libtmcore.a $(LDLIBS)

unit: $(UNIT_BINS)
	@tests/run_unit.sh $(UNIT_BINS)

# The snapshot library must never depend on BPF, libbpf or the kernel.
check-core-purity:
	@tests/check_core_purity.sh

test: all unit
	PYENV_ROOT=$(PYENV_ROOT) tests/run_all.sh

# Fuzzers: libFuzzer + ASan + UBSan over the core library rebuilt with the same flags.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iuser -D_GNU_SOURCE
$(OUT)/fuzz/%: tests/fuzz/%.c $(CORE_SRCS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRCS) -lz -lm

FUZZ_RUNS ?= 1000000
fuzz: $(FUZZ_BINS)
	@tests/run_fuzz.sh $(FUZZ_RUNS) $(FUZZ_BINS)

bench: all
	PYENV_ROOT=$(PYENV_ROOT) tools/bench.sh

demo: tools/install_deps.sh
	tools/install_deps.sh
	$(MAKE) all
	tools/demo.sh

clean:
	rm -rf $(OUT) tmbpf

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
