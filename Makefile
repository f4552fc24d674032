# tmbpf build. Sources are found by folder, so adding a .c file needs no edit here.
# One static library per layer of user/, each linking only the layers below it
# (tests/check_layers.sh keeps the includes pointing down):
#   user/core/      -> build/libtm_core.a      the tracemalloc model and file formats (libc, zlib)
#   user/placement/ -> build/libtm_placement.a ELF files and machine code, no process (libelf)
#   user/target/    -> build/libtm_target.a    reading a live CPython, never writing it
#   user/patch/     -> build/libtm_patch.a     the only code that writes into a target
#   user/capture/   -> build/libtm_capture.a   libbpf and the skeleton: the capture session
#   user/cli/*.c    -> ./tmbpf
#   bpf/*.bpf.c     -> build/bpf/*.skel.h (clang -target bpf, bpftool gen object/skeleton)
#   tests/unit/test_<layer>_*.c -> build/tests/test_<layer>_* (that layer and those below; no root)
#   tests/integration/test_*.c  -> build/integration/test_* (everything; root and real CPythons)
#   tests/fuzz/fuzz_*.c -> build/fuzz/fuzz_* (clang -fsanitize=fuzzer,address,undefined)
#   tools/bench/calibrate.c, malloc_count.c -> build/bench/ (make bench; the baseline tmbpf is
#   built by tools/bench/build_baseline.sh into build/bench/baseline/)

OUT      ?= build
.DEFAULT_GOAL := all
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)

WERROR   ?= $(if $(CI),-Werror,)
CFLAGS   ?= -g -O2
override CFLAGS += -std=gnu11 -Wall -Wextra $(WERROR) -MMD -MP -Iuser -Ibpf -I$(OUT) -D_GNU_SOURCE
LDLIBS   += -lbpf -lelf -lz -lm

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ivmlinux -Ibpf -Wall -Wno-unused-function

# Layers, lowest first; each links the ones below it (LIBS_<layer>, top first).
LAYERS           := core placement target patch capture
LIBS_core        := $(OUT)/libtm_core.a
LIBS_placement   := $(OUT)/libtm_placement.a $(LIBS_core)
LIBS_target      := $(OUT)/libtm_target.a $(LIBS_placement)
LIBS_patch       := $(OUT)/libtm_patch.a $(LIBS_target)
LIBS_capture     := $(OUT)/libtm_capture.a $(LIBS_patch)

define layer_rules
$(1)_SRCS := $$(wildcard user/$(1)/*.c user/$(1)/*/parasite.S)
$(1)_OBJS := $$(patsubst %.S,$$(OUT)/%.o,$$($(1)_SRCS:%.c=$$(OUT)/%.o))
$$(OUT)/libtm_$(1).a: $$($(1)_OBJS)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rules,$(l))))

CLI_SRCS   := $(wildcard user/cli/*.c)
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)

CLI_OBJS   := $(CLI_SRCS:%.c=$(OUT)/%.o)
SKELS      := $(BPF_SRCS:bpf/%.bpf.c=$(OUT)/bpf/%.skel.h)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/tests/%)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(OUT)/integration/%)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(OUT)/fuzz/%)
ALL_LIBS   := $(LIBS_capture)

.PHONY: all clean test unit integration fuzz bench demo asan install check-layers docs
.DELETE_ON_ERROR:

TMBPF_BIN ?= tmbpf
all: $(TMBPF_BIN)

$(TMBPF_BIN): $(CLI_OBJS) $(ALL_LIBS)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(ALL_LIBS) $(LDLIBS)

# The flame graph page is compiled into its writer (.incbin, not seen by -MMD).
$(OUT)/user/core/flamegraph_write.o: user/core/flamegraph.html

# Capture and CLI sources include the generated skeleton, patch the stub.
$(capture_OBJS) $(CLI_OBJS): | $(SKELS)
$(patch_OBJS): | $(OUT)/stub/stub_blob.h

# The stub (user/patch/stub/stub.S) is not linked into tmbpf: its bytes are
# written into targets. Assembled, laid out by its linker script, and turned
# into a C array plus symbol offsets (tools/gen_stub.sh).
STUB_CFLAGS := -Iuser -Ibpf -O2 -fPIC -ffreestanding -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fcf-protection=none -mno-red-zone -fno-jump-tables -fno-builtin -Wall -Wextra $(WERROR)
$(OUT)/stub/stub.elf: user/patch/stub/stub.S user/patch/stub/sample_set.c user/patch/stub/sample_draw.c \
		user/patch/stub/stub.ld user/patch/stub/stub_abi.h bpf/tmbpf_stub.h
	@mkdir -p $(@D)
	$(CC) -Iuser -Ibpf -MMD -MP -MF $(OUT)/stub/stub.d -c -o $(OUT)/stub/stub.o $<
	$(CC) $(STUB_CFLAGS) -c -o $(OUT)/stub/sample_set.o user/patch/stub/sample_set.c
	$(CC) $(STUB_CFLAGS) -c -o $(OUT)/stub/sample_draw.o user/patch/stub/sample_draw.c
	ld -T user/patch/stub/stub.ld -o $@ $(OUT)/stub/stub.o $(OUT)/stub/sample_set.o \
		$(OUT)/stub/sample_draw.o
$(OUT)/stub/stub_blob.h: $(OUT)/stub/stub.elf tools/gen_stub.sh
	tools/gen_stub.sh $< $@

$(OUT)/%.o: %.S
	@mkdir -p $(@D)
	$(CC) -Iuser -Ibpf -c -o $@ $<

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

# tests/unit/test_<layer>_<what>.c links that layer and the ones below it.
unit_layer = $(word 2,$(subst _, ,$(notdir $(1))))
.SECONDEXPANSION:
$(OUT)/tests/%: tests/unit/%.c $$(LIBS_$$(call unit_layer,$$*))
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBS_$(call unit_layer,$*)) $(LDLIBS)

$(OUT)/integration/%: tests/integration/%.c $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(ALL_LIBS) $(LDLIBS)

# Programs the unit tests read as ELF files (plain flags: they are inputs).
FIXTURES := $(OUT)/fixtures/devirt_guards $(OUT)/fixtures/devirt_guards_pie
$(OUT)/fixtures/devirt_guards: tests/unit/fixtures/devirt_guards.c
	@mkdir -p $(@D)
	$(CC) -O2 -no-pie -fno-pic -o $@ $<
$(OUT)/fixtures/devirt_guards_pie: tests/unit/fixtures/devirt_guards.c
	@mkdir -p $(@D)
	$(CC) -O2 -fPIE -pie -o $@ $<
$(OUT)/tests/test_placement_devirt: $(FIXTURES)

unit: $(UNIT_BINS)
	@tests/run_unit.sh $(UNIT_BINS)

# Programs of the shell suites (tests/redirect, tests/e2e/debian.sh).
TEST_HELPERS := $(OUT)/tests/redirect/driver $(OUT)/tests/redirect/driver_target
$(OUT)/tests/redirect/%: tests/redirect/%.c $(LIBS_patch)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LIBS_patch) -lelf -lz -lm

integration: all $(INTEG_BINS) $(TEST_HELPERS)

check-layers:
	@tests/check_layers.sh

# The Debian roots of the distribution tests (tools/test_roots.sh): built
# once into /var/cache/tmbpf-test, reused after (a second or two).
test: all unit $(INTEG_BINS) $(TEST_HELPERS)
	@tools/test_roots.sh || echo "# test roots unavailable: the distribution suites report it"
	PYENV_ROOT=$(PYENV_ROOT) tests/run_all.sh

# ASan + UBSan build (its own output folder) of everything, then the tests
# that need no root: unit tests of core, placement and target, the
# differential and format suites through the sanitized ./tmbpf.
ASAN_OUT   := $(OUT)/asan
ASAN_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan:
	$(MAKE) --no-print-directory OUT=$(ASAN_OUT) CFLAGS="$(ASAN_FLAGS)" TMBPF_BIN=$(ASAN_OUT)/tmbpf \
		$(ASAN_OUT)/tmbpf $(patsubst $(OUT)/%,$(ASAN_OUT)/%,$(filter $(OUT)/tests/test_core_% $(OUT)/tests/test_placement_% $(OUT)/tests/test_target_%,$(UNIT_BINS)))
	tests/run_asan.sh $(ASAN_OUT)

# Fuzzers: libFuzzer + ASan + UBSan over the core library rebuilt with the same flags.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iuser -D_GNU_SOURCE
$(OUT)/fuzz/%: tests/fuzz/%.c $(core_SRCS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(core_SRCS) -lz -lm

FUZZ_RUNS ?= 1000000
fuzz: $(FUZZ_BINS)
	@tests/run_fuzz.sh $(FUZZ_RUNS) $(FUZZ_BINS)

# Benchmark helpers: the calibration tool and the LD_PRELOAD allocation counter (standalone
# programs, plain flags). tools/bench/driver.py asks make for them when started on its own.
BENCH_CFLAGS := -g -O2 -std=gnu11 -Wall -Wextra $(WERROR)
BENCH_TOOLS  := $(OUT)/bench/calibrate $(OUT)/bench/malloc_count.so
$(OUT)/bench/calibrate: tools/bench/calibrate.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $<
$(OUT)/bench/malloc_count.so: tools/bench/malloc_count.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -shared -fPIC -o $@ $<

bench: all $(BENCH_TOOLS)
	PYENV_ROOT=$(PYENV_ROOT) tools/bench.sh

demo: tools/install_deps.sh
	tools/install_deps.sh
	$(MAKE) all
	tools/demo.sh

# make install PREFIX=/usr/local DESTDIR=...: the binary, its man page (generated
# from the option tables: make docs) and the bash completion.
PREFIX ?= /usr/local
install: $(TMBPF_BIN)
	install -D -m 0755 $(TMBPF_BIN) $(DESTDIR)$(PREFIX)/bin/tmbpf
	install -D -m 0644 docs/tmbpf.8 $(DESTDIR)$(PREFIX)/share/man/man8/tmbpf.8
	install -D -m 0644 tools/tmbpf.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/tmbpf

# Regenerate docs/tmbpf.8 and tools/tmbpf.bash-completion (tests/cli checks them).
docs: $(TMBPF_BIN)
	tools/gen_docs.py ./$(TMBPF_BIN)

clean:
	rm -rf $(OUT) tmbpf

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
