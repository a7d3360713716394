# SPDX-License-Identifier: Apache-2.0
# avm: Android Automotive virtual platforms under QEMU.
#
#   make               build ./avm
#   make check         build and run the Criterion suite
#   make check-asan    the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check-valgrind the suite under valgrind memcheck (slow; not part of check)
#   make fuzz          libFuzzer targets (clang) into $(BUILD)/fuzz/; make fuzz-smoke runs each
#                      for FUZZ_TIME seconds (tests/fuzz/README.md)
#   make bench         benchmarks (ratios against baselines measured in the same run)
#   make install       PREFIX=/usr/local DESTDIR=   (make uninstall: the same)

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
# podman's quadlet generator reads /usr/share/containers/systemd (what
# packages install) and /etc/containers/systemd (the administrator's),
# never /usr/local/share: any PREFIX but /usr installs the quadlets in /etc.
QUADLETDIR ?= $(if $(filter /usr,$(PREFIX)),$(DATADIR)/containers/systemd,/etc/containers/systemd)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := jansson
# Bound on first use (lib/util/dl.h; the tables in lib/disk/lazy.c, lib/host/lazy.c,
# lib/supervise/lazy.c), not linked into avm: `ldd avm` shows jansson and libc only.
# Their headers give the prototypes; the test binary links them for its own fixtures.
LAZY_PKGS := libarchive libcrypto libsystemd libudev zlib

BUILD ?= build
ifeq ($(BUILD),build)
AVM := avm
else
AVM := $(BUILD)/avm
endif

OPTFLAGS ?= -O2 -g
SANFLAGS ?=
WARNFLAGS := -Wall -Wextra -Werror -Wformat=2 -Wno-unused-parameter -Wno-format-nonliteral -Wshadow \
	-Wmissing-prototypes
CPPFLAGS_AVM := -Ilib -D_GNU_SOURCE -DAVM_VERSION=\"$(VERSION)\" -DAVM_PREFIX_DATADIR=\"$(DATADIR)/avm\"
CFLAGS_AVM := -std=gnu11 $(WARNFLAGS) $(OPTFLAGS) $(SANFLAGS) -fPIC -MMD -MP \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(LAZY_PKGS) libguestfs)
LDFLAGS_AVM := $(SANFLAGS) -Wl,--as-needed -Wl,-O1
LIBS_AVM := $(shell $(PKG_CONFIG) --libs $(PKGS)) -ldl
CRITERION_LIBS := $(shell $(PKG_CONFIG) --libs criterion 2>/dev/null || echo -lcriterion)


LIB_SRCS := $(sort $(wildcard lib/*/*.c))
CMD_SRCS := $(sort $(wildcard cmd/avm/*.c))
# The fuzz harnesses are linked into the test binary too (suite fuzzregress
# runs the seeds and regression inputs through them); see the fuzz section.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TEST_SRCS := $(sort $(wildcard tests/unit/*.c)) $(FUZZ_SRCS) tests/fuzz/fuzzutil.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/tests/avm-tests
FAKEHELPER := $(BUILD)/tests/avm-fakehelper
FAKECF := $(BUILD)/tests/avm-fakecf

.PHONY: container-base-soft all check check-asan bench clean install uninstall lint format golden demo demo-arm64 fuzz fuzz-smoke

all: $(AVM)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_AVM) $(CPPFLAGS) $(CFLAGS_AVM) $(CFLAGS) -c -o $@ $<

# The data directory compiled in (AVM_PREFIX_DATADIR, following PREFIX) is
# recorded in a stamp rewritten only when it changes, so `make install
# PREFIX=/usr` after `make` rebuilds the object that uses it and relinks,
# and a second `make install` with the same PREFIX only copies.
CONFIG_STAMP := $(BUILD)/config.stamp
CONFIG_VALUES := DATADIR=$(DATADIR)
ifneq ($(CONFIG_VALUES),$(shell cat $(CONFIG_STAMP) 2>/dev/null))
.PHONY: $(CONFIG_STAMP)
endif
$(CONFIG_STAMP):
	@mkdir -p $(dir $@)
	@echo '$(CONFIG_VALUES)' >$@
$(BUILD)/lib/profile/profile.o: $(CONFIG_STAMP)
# The supervisor sizes nothing on the stack from the plan.
$(BUILD)/lib/supervise/%.o: CFLAGS_AVM += -Wvla

# The same for the list of objects: a source file removed or moved relinks
# what held it (make would otherwise keep a binary newer than every object
# left, with the removed one still inside).
OBJS_STAMP := $(BUILD)/objs.stamp
OBJS_VALUES := $(sort $(LIB_OBJS) $(CMD_OBJS) $(TEST_OBJS))
ifneq ($(OBJS_VALUES),$(shell cat $(OBJS_STAMP) 2>/dev/null))
.PHONY: $(OBJS_STAMP)
endif
$(OBJS_STAMP):
	@mkdir -p $(dir $@)
	@echo '$(OBJS_VALUES)' >$@

$(BUILD)/libavm.a: $(LIB_OBJS) $(OBJS_STAMP)
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(AVM): $(CMD_OBJS) $(BUILD)/libavm.a
	$(CC) $(LDFLAGS_AVM) $(LDFLAGS) -o $@ $(CMD_OBJS) $(BUILD)/libavm.a $(LIBS_AVM)

$(TEST_BIN): $(TEST_OBJS) $(BUILD)/libavm.a $(OBJS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_AVM) $(LDFLAGS) -o $@ $(TEST_OBJS) $(BUILD)/libavm.a $(LIBS_AVM) \
		$(shell $(PKG_CONFIG) --libs $(LAZY_PKGS)) $(CRITERION_LIBS)

# Fault-injection service for the supervisor tests: standalone, libc only.
$(FAKEHELPER): tests/helpers/fakehelper.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARNFLAGS) $(OPTFLAGS) $(CFLAGS) -o $@ $<

# Test double of the Cuttlefish host tools (tests/helpers/fakecf.c), run as
# bin/TOOL in the fixture trees of tests/unit/cfimage.c: libc and jansson.
$(FAKECF): tests/helpers/fakecf.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARNFLAGS) $(OPTFLAGS) $(shell $(PKG_CONFIG) --cflags jansson) $(CFLAGS) \
		-o $@ $< $(shell $(PKG_CONFIG) --libs jansson)

# Podman's quadlet generator from Debian 13, for the deploy tests (Debian 12's
# podman has none): downloaded once with a private apt configuration.  When it
# cannot be fetched the quadlet tests skip and say why.
QUADLET := build/tools/quadlet
.PHONY: quadlet
quadlet:
	@tests/tools/fetch-quadlet.sh $(QUADLET) || echo "quadlet: not fetched; the quadlet tests will be skipped" >&2

# The Containerfile's base images, debootstrapped from Debian's mirror and
# imported into podman's storage, for machines that reach no container
# registry; the deploy suite builds the image when they are there.
.PHONY: container-base
container-base:
	tests/tools/container-base.sh

# For make check: the base images the image-build test needs; without them
# (no podman, no mirror) that test is skipped with the reason.
container-base-soft:
	@command -v podman >/dev/null 2>&1 && tests/tools/container-base.sh \
		|| echo "container-base: no base images; the image build test will be skipped" >&2

# The image of containers/Containerfile for the deploy tests, built once
# for all of them and again only when what it copies changes
# (tests/tools/container-image.sh): tagged with this tree's own name,
# localhost/avm-check:<cksum of its path>, its ID in build/container-image.id
# (whatever BUILD is).  A stamp whose image is gone from podman's storage
# is rebuilt.  The tests run `make container-image` themselves (under a
# lock; a no-op after make check's).
CONTAINER_TAG := localhost/avm-check:$(firstword $(shell printf '%s' '$(CURDIR)' | cksum))
CONTAINER_STAMP := build/container-image.id
CONTAINER_INPUTS := containers/Containerfile Makefile LICENSE \
	$(shell find cmd lib profiles man quadlets -type f 2>/dev/null)
.PHONY: container-image container-image-soft
container-image:
	@if [ -f $(CONTAINER_STAMP) ] && ! podman image exists "$$(cat $(CONTAINER_STAMP))"; then \
		rm -f $(CONTAINER_STAMP); fi
	@$(MAKE) -s --no-print-directory $(CONTAINER_STAMP)

$(CONTAINER_STAMP): $(CONTAINER_INPUTS)
	@tests/tools/container-image.sh $(CONTAINER_TAG) $@

# For make check: the image, before the suite, when podman and the base
# images are there; otherwise (or when it fails) the tests say why.
container-image-soft: container-base-soft
	@if command -v podman >/dev/null 2>&1 && podman image exists docker.io/library/debian:bookworm \
		&& podman image exists docker.io/library/debian:bookworm-slim; then \
		$(MAKE) --no-print-directory container-image \
			|| echo "container-image: not built; the image tests will say why" >&2; \
	else echo "container-image: no podman or no base images; the image tests will be skipped" >&2; fi

# The suite runs the CLI too: AVM_BIN points it at the binary of this build.
# make check ends with a short smoke of every fuzz target (CHECK_FUZZ_TIME
# seconds each; CHECK_FUZZ_TIME=0 skips it, as check-asan does).
CHECK_FUZZ_TIME ?= 15
check: lint $(AVM) $(TEST_BIN) $(FAKEHELPER) $(FAKECF) quadlet container-image-soft
	AVM_BIN=$(abspath $(AVM)) AVM_SRCDIR=$(CURDIR) AVM_FAKEHELPER=$(abspath $(FAKEHELPER)) \
		AVM_FAKECF=$(abspath $(FAKECF)) AVM_QUADLET=$(abspath $(QUADLET)) $(TEST_BIN) $(TESTFLAGS)
	@if [ "$(CHECK_FUZZ_TIME)" != 0 ]; then $(MAKE) --no-print-directory fuzz-smoke FUZZ_TIME=$(CHECK_FUZZ_TIME); fi

# libtirpc is linked into the sanitizer build only: ASan intercepts the XDR
# functions and resolves the real ones at startup, so libguestfs (dlopen'ed
# by inspect --verify, and using libtirpc) would call a NULL pointer.
# AVM_SANITIZED tells the load tests that avm's memory includes ASan's
# quarantine of freed blocks (up to 256 MiB), so its RSS says nothing there.
# Every sanitizer report goes to a file of its own under SANITIZER_LOGS
# (one per process: test workers, avm, helpers), and any file there fails
# the run (tests/tools/sanitizer-report.sh): a leak found when a test worker
# exits would not fail its test.  Criterion's own runner is left out of leak
# checking (tests/unit/lsan_runner.c says why).
SANITIZER_LOGS := $(CURDIR)/build-asan/sanitizer
check-asan:
	rm -rf $(SANITIZER_LOGS) && mkdir -p $(SANITIZER_LOGS)
	AVM_SANITIZED=1 ASAN_OPTIONS=log_path=$(SANITIZER_LOGS)/asan UBSAN_OPTIONS=log_path=$(SANITIZER_LOGS)/ubsan \
		$(MAKE) BUILD=build-asan OPTFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-Wl,--no-as-needed -ltirpc -Wl,--as-needed" CHECK_FUZZ_TIME=0 check; \
		rc=$$?; tests/tools/sanitizer-report.sh $(SANITIZER_LOGS) || rc=1; exit $$rc

# valgrind memcheck over the whole suite (tests/tools/valgrind-suite.sh): a
# build whose test limits are 10x longer (AVM_TEST_TIME_SCALE), each suite
# run with every test worker and every avm process it starts traced, one log
# per process in $(BUILD)/valgrind/SUITE/; any error, leak or failed test
# fails.  Slow (about an hour on 2 CPUs, the load suite alone 13 minutes);
# VALGRIND_SUITES="start control" runs some.
# Not part of make check.
VALGRIND_SUITES ?=
check-valgrind:
	AVM_SANITIZED=1 $(MAKE) BUILD=build-valgrind CPPFLAGS="-DAVM_TEST_TIME_SCALE=10" valgrind-run

.PHONY: check-valgrind valgrind-run
valgrind-run: $(AVM) $(TEST_BIN) $(FAKEHELPER) $(FAKECF) quadlet
	AVM_BIN=$(abspath $(AVM)) AVM_SRCDIR=$(CURDIR) AVM_FAKEHELPER=$(abspath $(FAKEHELPER)) \
		AVM_FAKECF=$(abspath $(FAKECF)) AVM_QUADLET=$(abspath $(QUADLET)) tests/tools/valgrind-suite.sh $(TEST_BIN) $(abspath $(BUILD))/valgrind $(VALGRIND_SUITES)

# The binary with its personalities (start-avm, cvd2img), profiles, manual
# pages, quadlets, the systemd unit and bash completion.  Copies the build
# only (rebuilt first when the configured PREFIX changed, see CONFIG_STAMP).
# Quadlets and units are taken by wildcard: whatever quadlets/ holds.
PERSONALITIES := start-avm cvd2img
INSTALL_PROFILES := $(notdir $(wildcard profiles/*.json))
INSTALL_MAN1 := $(notdir $(wildcard man/*.1))
INSTALL_MAN5 := $(notdir $(wildcard man/*.5))
INSTALL_MAN7 := $(notdir $(wildcard man/*.7))
INSTALL_QUADLETS := $(notdir $(wildcard quadlets/*.container quadlets/*.volume quadlets/*.network quadlets/*.kube))
INSTALL_UNITS := $(notdir $(wildcard quadlets/*.service))
COMPLETION := cmd/avm/avm.bash

install: $(AVM)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/avm/profiles $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(AVM) $(DESTDIR)$(BINDIR)/avm
	for p in $(PERSONALITIES); do ln -sf avm $(DESTDIR)$(BINDIR)/$$p || exit 1; done
	install -m 0644 $(addprefix profiles/,$(INSTALL_PROFILES)) $(DESTDIR)$(DATADIR)/avm/profiles/
	install -m 0644 $(addprefix man/,$(INSTALL_MAN1)) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(addprefix man/,$(INSTALL_MAN5)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(addprefix man/,$(INSTALL_MAN7)) $(DESTDIR)$(MANDIR)/man7/
	install -m 0644 $(COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/avm
	for p in $(PERSONALITIES); do ln -sf avm $(DESTDIR)$(BASHCOMPDIR)/$$p || exit 1; done
	# The demo guests' images, when built (make demo-image, demo-image-arm64):
	# `avm start -p demo` then boots from the installed tree.
	for d in $(DEMO_DIR):demo $(DEMO_ARM64_DIR):demo-arm64; do \
		src=$${d%:*} dst=$(DESTDIR)$(DATADIR)/avm/$${d##*:}; \
		test -f $$src/vmlinuz || continue; \
		test -f $$src/data.img || { echo "install: no $$src/data.img: make its demo image again" >&2; exit 1; }; \
		install -d $$dst/share && install -m 0644 $$src/vmlinuz $$src/initramfs.cpio.gz $$src/data.img $$dst/ \
			&& install -m 0644 $$src/share/hello.txt $$dst/share/ || exit 1; \
	done
ifneq ($(INSTALL_QUADLETS),)
	install -d $(DESTDIR)$(QUADLETDIR)
	install -m 0644 $(addprefix quadlets/,$(INSTALL_QUADLETS)) $(DESTDIR)$(QUADLETDIR)/
endif
ifneq ($(INSTALL_UNITS),)
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	# The units name /usr/bin/avm: point them at this PREFIX's binary.
	for u in $(INSTALL_UNITS); do \
		sed 's|/usr/bin/avm|$(BINDIR)/avm|g' quadlets/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		mv $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
endif

# Exactly what install put there; of the directories, only avm's own, and
# only when empty (files added there by hand stay, with their directory).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/avm $(addprefix $(DESTDIR)$(BINDIR)/,$(PERSONALITIES))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/avm/profiles/,$(INSTALL_PROFILES))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(INSTALL_MAN1))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(INSTALL_MAN5))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(INSTALL_MAN7))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/avm $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(PERSONALITIES))
	rm -f $(addprefix $(DESTDIR)$(QUADLETDIR)/,$(INSTALL_QUADLETS))
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(INSTALL_UNITS))
	for d in demo demo-arm64; do \
		rm -f $(addprefix $(DESTDIR)$(DATADIR)/avm/$$d/,vmlinuz initramfs.cpio.gz data.img share/hello.txt) || exit 1; \
	done
	for d in $(DESTDIR)$(DATADIR)/avm/profiles $(DESTDIR)$(DATADIR)/avm/demo/share $(DESTDIR)$(DATADIR)/avm/demo \
		$(DESTDIR)$(DATADIR)/avm/demo-arm64/share $(DESTDIR)$(DATADIR)/avm/demo-arm64 $(DESTDIR)$(DATADIR)/avm; do \
		if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d || exit 1; fi; done

clean:
	rm -rf build build-asan build-fuzz avm

-include $(LIB_OBJS:.o=.d) $(CMD_OBJS:.o=.d) $(TEST_OBJS:.o=.d)

# ---- Static analysis (make lint; make check runs it first) ----------------
# Two checkers, both gating (any finding fails):
#  - cppcheck over lib/ cmd/ tests/helpers/ bench/.  It cannot model
#    __attribute__((cleanup)) (lib/util/cleanup.h): every cleanup-managed
#    allocation or descriptor looks leaked, so memleak and resourceLeak are
#    suppressed; leaks are covered by ASan/LeakSanitizer (make check-asan).
#  - GCC's -fanalyzer on every lib/ and cmd/ file, one stamp per file so that
#    make runs them in parallel and only again for what changed.  At -O0: with
#    optimisation the inlined cleanup functions give GCC 12 false reports.
#    Its false positives are silenced per function (lib/util/analyzer.h).
# Plain `make lint` (or `make check`) runs itself with -j2 unless make was
# given -j.
ANALYZER_CC ?= gcc
CPPCHECK ?= cppcheck
CLANG_FORMAT ?= clang-format
FORMAT_SRCS = $(shell find lib cmd tests bench -name '*.[ch]' | sort)
LINT_DIR := $(BUILD)/lint
CPPCHECK_DIRS := lib cmd tests/helpers bench
CPPCHECK_FLAGS := --library=tests/lint/cppcheck.cfg -Ilib -D_GNU_SOURCE --std=c11 \
	--enable=warning,portability,performance --inline-suppr --error-exitcode=1 -q \
	--suppress=memleak --suppress=resourceLeak
ANALYZER_FLAGS := -std=gnu11 $(WARNFLAGS) -O0 -fanalyzer \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(LAZY_PKGS) libguestfs)
LINT_STAMPS := $(LINT_DIR)/cppcheck.stamp $(patsubst %.c,$(LINT_DIR)/%.analyzer,$(LIB_SRCS) $(CMD_SRCS))

.PHONY: lint lint-run
lint:
	@$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j2) lint-run

lint-run: $(LINT_STAMPS)
	@tests/tools/layers.sh
	@$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_SRCS) || \
		{ echo "lint: not in the style of .clang-format: run 'make format'" >&2; exit 1; }
	@echo "lint: cppcheck, gcc -fanalyzer, the module layering and the format clean"

# The C style of .clang-format, applied to every source.
format:
	$(CLANG_FORMAT) -i $(FORMAT_SRCS)

$(LINT_DIR)/cppcheck.stamp: $(wildcard $(addsuffix /*.c,$(CPPCHECK_DIRS)) $(addsuffix /*/*.c,$(CPPCHECK_DIRS)) \
		$(addsuffix /*.h,$(CPPCHECK_DIRS)) $(addsuffix /*/*.h,$(CPPCHECK_DIRS))) tests/lint/cppcheck.cfg
	@mkdir -p $(@D)
	$(CPPCHECK) $(CPPCHECK_FLAGS) $(CPPCHECK_DIRS)
	@touch $@

$(LINT_DIR)/%.analyzer: %.c
	@mkdir -p $(@D)
	@echo "  ANALYZE $<"
	@$(ANALYZER_CC) $(CPPFLAGS_AVM) $(ANALYZER_FLAGS) -Werror -MMD -MP -MF $@.d -MT $@ -c -o /dev/null $<
	@touch $@

-include $(patsubst %.c,$(LINT_DIR)/%.analyzer.d,$(LIB_SRCS) $(CMD_SRCS))

# Benchmarks (bench/README.md): BENCH_RUNS=N (default 50), BENCH_SLOW_RUNS=N (20),
# BENCH_SKIP_C2I=1, BENCH_C2I_RUNS=N (3), BENCH_DIR=DIR (/var/tmp).
BENCH_BIN := $(BUILD)/bench/avm-bench
BENCH_SRCS := $(sort $(wildcard bench/*.c))

BENCH_SRCS := $(filter-out bench/qemu-stamp.c,$(BENCH_SRCS))
BENCH_STAMP := $(BUILD)/bench/qemu-stamp

$(BENCH_BIN): $(BENCH_SRCS) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARNFLAGS) -O2 $(CFLAGS) $(shell $(PKG_CONFIG) --cflags jansson) $(LDFLAGS) -o $@ \
		$(BENCH_SRCS) $(shell $(PKG_CONFIG) --libs jansson)

$(BENCH_STAMP): bench/qemu-stamp.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARNFLAGS) -O2 $(CFLAGS) -o $@ $<

bench: $(AVM) $(BENCH_BIN) $(BENCH_STAMP) $(FAKEHELPER) demo-image container-image-soft
	AVM_SRCDIR=$(CURDIR) BENCH_FAKEHELPER=$(abspath $(FAKEHELPER)) BENCH_STAMP=$(abspath $(BENCH_STAMP)) \
		BENCH_DEMO_IMAGES=$(abspath $(BUILD)/demo) $(BENCH_BIN) $(abspath $(AVM))

# The bundled demo: the approved command line, then the guest booted with its
# helpers, READY, and a clean stop.  These machines have no working KVM (a
# KVM guest hangs), so the demo runs under TCG unless DEMO_ACCEL says otherwise.
DEMO_ACCEL ?= tcg
demo: $(AVM) demo-image
	./$(AVM) start --profile demo --images $(BUILD)/demo --set machine.accel=$(DEMO_ACCEL) --dry-run
	./$(AVM) start --profile demo --images $(BUILD)/demo --set machine.accel=$(DEMO_ACCEL) --verbose --stop-after-boot

# The same for the arm64 demo guest (qemu-system-aarch64, TCG; slower).
demo-arm64: $(AVM) demo-image-arm64
	./$(AVM) start --profile demo-arm64 --images $(BUILD)/demo-arm64 --set machine.accel=$(DEMO_ACCEL) --dry-run
	./$(AVM) start --profile demo-arm64 --images $(BUILD)/demo-arm64 --set machine.accel=$(DEMO_ACCEL) --verbose \
		--stop-after-boot

# Rewrite tests/golden/ from the current output (review the diff!).
golden: $(AVM) $(TEST_BIN) $(FAKECF)
	AVM_UPDATE_GOLDEN=1 AVM_BIN=$(abspath $(AVM)) AVM_SRCDIR=$(CURDIR) AVM_FAKECF=$(abspath $(FAKECF)) \
		$(TEST_BIN) --filter 'plan/golden*'

# The demo guest's images (tests/demo/README.md), from this machine's Debian
# packages: linux-image-amd64 (newest /boot/vmlinuz-*, and its modules),
# busybox-static, cpio, kmod.  Builds $(DEMO_DIR)/vmlinuz, initramfs.cpio.gz,
# data.img (the guest's disk: 16 MiB of zeros, sparse, made once; the demo
# profiles attach it with snapshot=on, so it stays zeros) and
# share/hello.txt; `avm start -p demo --images $(DEMO_DIR)` boots them.
DEMO_DIR := $(BUILD)/demo
ifndef DEMO_KERNEL
DEMO_KERNEL := $(shell ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n 1)
endif
DEMO_KVER := $(patsubst /boot/vmlinuz-%,%,$(DEMO_KERNEL))
DEMO_BUSYBOX ?= /bin/busybox
# The QEMU guest agent in the x86_64 guest (qemu-guest-agent): a restored
# guest's clock is set through it (snapshot.clock guest-agent).
DEMO_AGENT ?= /usr/sbin/qemu-ga
# Loaded in this order, each after its dependencies (modprobe --show-depends).
DEMO_MODULES := evdev button virtio_pci virtio_blk virtio_console virtio_rng virtio_input virtiofs virtio_gpu
DEMO_HELLO := hello from the avm demo share
DEMO_NOKERNEL := echo "demo-image: no kernel in /boot (vmlinuz-*): install linux-image-amd64" >&2; exit 1

.PHONY: demo-image
demo-image: $(DEMO_DIR)/vmlinuz $(DEMO_DIR)/initramfs.cpio.gz $(DEMO_DIR)/data.img $(DEMO_DIR)/share/hello.txt

$(DEMO_DIR)/vmlinuz: $(DEMO_KERNEL)
	@test -n "$(DEMO_KERNEL)" || { $(DEMO_NOKERNEL); }
	@test -r "$(DEMO_KERNEL)" || { echo "demo-image: cannot read $(DEMO_KERNEL)" >&2; exit 1; }
	@mkdir -p $(@D)
	cp $(DEMO_KERNEL) $@.tmp && mv $@.tmp $@

$(DEMO_DIR)/initramfs.cpio.gz: tests/demo/init tests/demo/mkinitramfs.sh $(DEMO_KERNEL) $(DEMO_BUSYBOX) $(DEMO_AGENT)
	@test -n "$(DEMO_KERNEL)" || { $(DEMO_NOKERNEL); }
	@test -d /lib/modules/$(DEMO_KVER) || { echo "demo-image: no /lib/modules/$(DEMO_KVER): install linux-image-amd64" >&2; exit 1; }
	@test -x $(DEMO_BUSYBOX) || { echo "demo-image: no $(DEMO_BUSYBOX): install busybox-static" >&2; exit 1; }
	@! ldd $(DEMO_BUSYBOX) >/dev/null 2>&1 || { echo "demo-image: $(DEMO_BUSYBOX) is not static: install busybox-static" >&2; exit 1; }
	@test -x $(DEMO_AGENT) || { echo "demo-image: no $(DEMO_AGENT): install qemu-guest-agent" >&2; exit 1; }
	@echo "demo-image: initramfs for $(DEMO_KVER): busybox, qemu-ga, modules $(DEMO_MODULES)"
	@mkdir -p $(@D)
	DEMO_AGENT=$(DEMO_AGENT) tests/demo/mkinitramfs.sh $@ tests/demo/init $(DEMO_BUSYBOX) / $(DEMO_KVER) $(DEMO_MODULES)
	@ls -l $@

$(DEMO_DIR)/share/hello.txt:
	@mkdir -p $(@D)
	echo "$(DEMO_HELLO)" >$@

# The guest's disk (/dev/vda): zeros, sparse; /init writes its boot token and
# tick counter there (through QEMU's snapshot=on overlay, never to the file).
DEMO_DISK_SIZE := 16M
$(DEMO_DIR)/data.img:
	@mkdir -p $(@D)
	rm -f $@.tmp && truncate -s $(DEMO_DISK_SIZE) $@.tmp && mv $@.tmp $@

# The arm64 demo guest (profiles/demo-arm64.json, tests/demo/README.md): the
# same /init, from Debian's arm64 packages.  tests/demo/fetch-arm64.sh
# downloads (never installs) linux-image-VER-arm64:arm64, VER this machine's
# kernel's when the archive has it, and busybox-static:arm64 into
# $(DEMO_ARM64_DIR)/debs, a cache (arm64 must be a dpkg architecture:
# tests/deps.sh adds it); they are unpacked with dpkg-deb -x, depmod makes
# the kernel's modules.dep, and the initramfs is built as above.  `avm start
# -p demo-arm64 --images $(DEMO_ARM64_DIR)` boots it.
DEMO_ARM64_DIR := $(BUILD)/demo-arm64
DEMO_ARM64_DEBS := $(DEMO_ARM64_DIR)/debs
# The power button is the virt machine's PL061 GPIO (built in) through the
# device tree's gpio-keys node.
DEMO_ARM64_MODULES := evdev gpio_keys virtio_pci virtio_blk virtio_console virtio_rng virtio_input virtiofs virtio_gpu

.PHONY: demo-image-arm64 FORCE
demo-image-arm64: $(DEMO_ARM64_DIR)/vmlinuz $(DEMO_ARM64_DIR)/initramfs.cpio.gz $(DEMO_ARM64_DIR)/data.img \
	$(DEMO_ARM64_DIR)/share/hello.txt

# Run every time; rewritten only when the selected packages change.
$(DEMO_ARM64_DEBS)/selected: FORCE
	@tests/demo/fetch-arm64.sh $(DEMO_ARM64_DEBS) $(DEMO_KVER)

$(DEMO_ARM64_DIR)/vmlinuz $(DEMO_ARM64_DIR)/initramfs.cpio.gz &: $(DEMO_ARM64_DEBS)/selected tests/demo/init \
		tests/demo/mkinitramfs.sh
	@PATH="$$PATH:/sbin:/usr/sbin" command -v depmod >/dev/null || { echo "demo-image-arm64: no depmod: install kmod" >&2; exit 1; }
	@set -e; pkg=$(DEMO_ARM64_DIR)/pkg; rm -rf $$pkg; mkdir -p $$pkg; \
	kdeb=$$(sed -n 's/^kernel //p' $<); bdeb=$$(sed -n 's/^busybox //p' $<); \
	echo "demo-image-arm64: unpacking $$kdeb $$bdeb"; \
	dpkg-deb -x $(DEMO_ARM64_DEBS)/$$kdeb $$pkg; dpkg-deb -x $(DEMO_ARM64_DEBS)/$$bdeb $$pkg; \
	kver=$$(ls $$pkg/lib/modules); \
	test -n "$$kver" && test -r $$pkg/boot/vmlinuz-$$kver \
		|| { echo "demo-image-arm64: $$kdeb has no boot/vmlinuz-VER and lib/modules/VER" >&2; exit 1; }; \
	test -x $$pkg/bin/busybox || { echo "demo-image-arm64: $$bdeb has no bin/busybox" >&2; exit 1; }; \
	PATH="$$PATH:/sbin:/usr/sbin" depmod -b $$pkg $$kver; \
	echo "demo-image-arm64: initramfs for $$kver: busybox, modules $(DEMO_ARM64_MODULES)"; \
	tests/demo/mkinitramfs.sh $(DEMO_ARM64_DIR)/initramfs.cpio.gz tests/demo/init $$pkg/bin/busybox $$pkg $$kver \
		$(DEMO_ARM64_MODULES); \
	cp $$pkg/boot/vmlinuz-$$kver $(DEMO_ARM64_DIR)/vmlinuz.tmp; mv $(DEMO_ARM64_DIR)/vmlinuz.tmp $(DEMO_ARM64_DIR)/vmlinuz; \
	rm -rf $$pkg
	@ls -l $(DEMO_ARM64_DIR)/vmlinuz $(DEMO_ARM64_DIR)/initramfs.cpio.gz

$(DEMO_ARM64_DIR)/share/hello.txt:
	@mkdir -p $(@D)
	echo "$(DEMO_HELLO)" >$@

$(DEMO_ARM64_DIR)/data.img:
	@mkdir -p $(@D)
	rm -f $@.tmp && truncate -s $(DEMO_DISK_SIZE) $@.tmp && mv $@.tmp $@

FORCE:

# Fuzzing (tests/fuzz/README.md).  The library is compiled again with clang
# into build-fuzz/ (instrumented for coverage, ASan and UBSan), each harness
# tests/fuzz/fuzz_NAME.c is linked with libFuzzer into $(BUILD)/fuzz/fuzz_NAME.
# `make fuzz-smoke` runs every target for FUZZ_TIME seconds (20) over its
# seed corpus tests/fuzz/corpus/NAME/ and its regressions; new inputs and
# crash artifacts go to $(FUZZ_WORK)/NAME/, never into the source tree.
# FUZZ_TARGETS=name... restricts the set; FUZZ_FLAGS adds libFuzzer options.
FUZZ_CC ?= clang
FUZZ_OBJDIR := build-fuzz
FUZZ_TIME ?= 20
FUZZ_WORK ?= $(BUILD)/fuzz/work
FUZZ_FLAGS ?=
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 $(WARNFLAGS) -g -O1 $(FUZZ_SAN) -MMD -MP \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(LAZY_PKGS))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_OBJDIR)/%.o) $(FUZZ_OBJDIR)/tests/fuzz/fuzzutil.o

$(FUZZ_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_AVM) -DAVM_FUZZ_SRCDIR=\"$(CURDIR)\" $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OBJDIR)/libavm-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJDIR)/libavm-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_AVM) -DAVM_FUZZ_MAIN $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_OBJDIR)/libavm-fuzz.a $(LIBS_AVM)

fuzz: $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_WORK)/$$t/corpus; \
		echo "fuzz-smoke: $$t ($(FUZZ_TIME) s)"; \
		AVM_SRCDIR=$(CURDIR) $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=512 \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_WORK)/$$t/ $(FUZZ_FLAGS) \
			$(FUZZ_WORK)/$$t/corpus tests/fuzz/corpus/$$t $$(test -d tests/fuzz/regressions/$$t && echo tests/fuzz/regressions/$$t) \
			2>$(FUZZ_WORK)/$$t/log || { tail -n 60 $(FUZZ_WORK)/$$t/log; echo "fuzz-smoke: $$t failed (log: $(FUZZ_WORK)/$$t/log)"; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' $(FUZZ_WORK)/$$t/log | tr '\n' ' '; echo; \
	done

-include $(FUZZ_LIB_OBJS:.o=.d)
