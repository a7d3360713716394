# SPDX-License-Identifier: Apache-2.0
# avm: Android Automotive virtual platforms under QEMU.
#
#   make               build ./avm
#   make check         build and run the Criterion suite
#   make check-asan    the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench         benchmarks (ratios against baselines measured in the same run)
#   make install       PREFIX=/usr/local DESTDIR=

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := jansson libsystemd libudev zlib
# Bound on first use by cvd2img and inspect (lib/disk/lazy.c), not linked into
# avm; the test binary links them for its own fixtures.
LAZY_PKGS := libarchive libcrypto

BUILD ?= build
ifeq ($(BUILD),build)
AVM := avm
else
AVM := $(BUILD)/avm
endif

OPTFLAGS ?= -O2 -g
SANFLAGS ?=
WARNFLAGS := -Wall -Wextra -Werror -Wformat=2 -Wno-unused-parameter -Wno-format-nonliteral
CPPFLAGS_AVM := -Ilib -D_GNU_SOURCE -DAVM_VERSION=\"$(VERSION)\" -DAVM_PREFIX_DATADIR=\"$(DATADIR)/avm\"
CFLAGS_AVM := -std=gnu11 $(WARNFLAGS) $(OPTFLAGS) $(SANFLAGS) -fPIC -MMD -MP \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) $(LAZY_PKGS) libguestfs)
LDFLAGS_AVM := $(SANFLAGS) -Wl,--as-needed -Wl,-O1
LIBS_AVM := $(shell $(PKG_CONFIG) --libs $(PKGS)) -ldl
CRITERION_LIBS := $(shell $(PKG_CONFIG) --libs criterion 2>/dev/null || echo -lcriterion)


LIB_SRCS := $(sort $(wildcard lib/*/*.c))
CMD_SRCS := $(sort $(wildcard cmd/avm/*.c))
TEST_SRCS := $(sort $(wildcard tests/unit/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/tests/avm-tests

.PHONY: all check check-asan bench clean install uninstall lint golden demo

all: $(AVM)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_AVM) $(CPPFLAGS) $(CFLAGS_AVM) $(CFLAGS) -c -o $@ $<

$(BUILD)/libavm.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(AVM): $(CMD_OBJS) $(BUILD)/libavm.a
	$(CC) $(LDFLAGS_AVM) $(LDFLAGS) -o $@ $(CMD_OBJS) $(BUILD)/libavm.a $(LIBS_AVM)

$(TEST_BIN): $(TEST_OBJS) $(BUILD)/libavm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_AVM) $(LDFLAGS) -o $@ $(TEST_OBJS) $(BUILD)/libavm.a $(LIBS_AVM) \
		$(shell $(PKG_CONFIG) --libs $(LAZY_PKGS)) $(CRITERION_LIBS)

# The suite runs the CLI too: AVM_BIN points it at the binary of this build.
check: $(AVM) $(TEST_BIN)
	AVM_BIN=$(abspath $(AVM)) AVM_SRCDIR=$(CURDIR) $(TEST_BIN) $(TESTFLAGS)

# libtirpc is linked into the sanitizer build only: ASan intercepts the XDR
# functions and resolves the real ones at startup, so libguestfs (dlopen'ed
# by inspect --verify, and using libtirpc) would call a NULL pointer.
check-asan:
	$(MAKE) BUILD=build-asan OPTFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-Wl,--no-as-needed -ltirpc -Wl,--as-needed" check

install: $(AVM)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/avm/profiles $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(AVM) $(DESTDIR)$(BINDIR)/avm
	ln -sf avm $(DESTDIR)$(BINDIR)/cvd2img
	install -m 0644 profiles/*.json $(DESTDIR)$(DATADIR)/avm/profiles/
	install -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/avm $(DESTDIR)$(BINDIR)/cvd2img
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/avm/profiles/,$(notdir $(wildcard profiles/*.json)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard man/*.1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard man/*.5)))
	-rmdir $(DESTDIR)$(DATADIR)/avm/profiles $(DESTDIR)$(DATADIR)/avm 2>/dev/null

clean:
	rm -rf build build-asan avm

-include $(LIB_OBJS:.o=.d) $(CMD_OBJS:.o=.d) $(TEST_OBJS:.o=.d)

# Benchmarks (bench/README.md): BENCH_RUNS=N (default 50), BENCH_SLOW_RUNS=N (20),
# BENCH_SKIP_C2I=1, BENCH_C2I_RUNS=N (3), BENCH_DIR=DIR (/var/tmp).
BENCH_BIN := $(BUILD)/bench/avm-bench
BENCH_SRCS := $(sort $(wildcard bench/*.c))

$(BENCH_BIN): $(BENCH_SRCS) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARNFLAGS) -O2 $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_SRCS)

bench: $(AVM) $(BENCH_BIN)
	$(BENCH_BIN) $(abspath $(AVM))

# The bundled demo.  These machines have no working KVM (a KVM guest hangs),
# so the demo runs under TCG unless DEMO_ACCEL says otherwise.
DEMO_ACCEL ?= tcg
demo: $(AVM)
	./$(AVM) start --profile demo --set machine.accel=$(DEMO_ACCEL) --dry-run

# Rewrite tests/golden/ from the current output (review the diff!).
golden: $(AVM) $(TEST_BIN)
	AVM_UPDATE_GOLDEN=1 AVM_BIN=$(abspath $(AVM)) AVM_SRCDIR=$(CURDIR) $(TEST_BIN) --filter 'plan/golden*'
