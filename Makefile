# tcprare: see README.md. `make` builds the library and the wrapper into build/.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/tcprare
MANDIR = $(PREFIX)/share/man
VERSION = 0.1.0

CC ?= cc
BUILD ?= build
WARN = -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
BASE_CFLAGS = -std=gnu11 $(WARN) -D_GNU_SOURCE -DTCPRARE_VERSION='"$(VERSION)"'
LIB_CFLAGS = $(BASE_CFLAGS) -fPIC -fvisibility=hidden
LIB_LDFLAGS = -shared -Wl,-z,relro,-z,now -Wl,--no-undefined
LIB_LIBS = -ldl -lpthread

# make SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer, into build-asan/.
ifeq ($(SANITIZE),1)
BUILD = build-asan
CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LIB_LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS = $(wildcard shim/*.c)
LIB_SRCS := $(filter-out shim/tcprare.c,$(LIB_SRCS))
LIB_OBJS = $(LIB_SRCS:shim/%.c=$(BUILD)/obj/%.o)
HEADERS = $(wildcard shim/*.h)
TEST_PROGS = $(patsubst tests/progs/%.c,$(BUILD)/progs/%,$(wildcard tests/progs/*.c))
EXAMPLES = $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all test test-sanitize demo bench install uninstall clean musl tsan fuzz valgrind FORCE
all: $(BUILD)/libtcprare.so $(BUILD)/tcprare $(TEST_PROGS) $(EXAMPLES)

$(BUILD)/obj/%.o: shim/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libtcprare.so: $(LIB_OBJS)
	$(CC) $(CFLAGS) $(LIB_LDFLAGS) -o $@ $^ $(LIB_LIBS)

# The wrapper has the install location and version compiled in: a new PREFIX rebuilds it.
$(BUILD)/libdir: FORCE
	@mkdir -p $(dir $@)
	@echo '$(LIBDIR)' | cmp -s - $@ || echo '$(LIBDIR)' > $@

$(BUILD)/tcprare: shim/tcprare.c Makefile $(BUILD)/libdir
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -DTCPRARE_LIBDIR='"$(LIBDIR)"' -o $@ $<

$(BUILD)/progs/%: tests/progs/%.c $(wildcard tests/progs/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< -lpthread

$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $<

# The suite runs against $(BUILD); tests/run finds or installs bats.
test: all
	TCPRARE_BUILD=$(CURDIR)/$(BUILD) SANITIZE=$(SANITIZE) tests/run

test-sanitize:
	$(MAKE) SANITIZE=1 test

# ThreadSanitizer: the threaded stress program and the library, both instrumented, with the guard
# checking every write too. TSan exits 66 on a report.
TSAN = -O1 -g -fsanitize=thread
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="$(TSAN)" LIB_LDFLAGS="-shared -fsanitize=thread" build-tsan/libtcprare.so
	$(CC) $(BASE_CFLAGS) $(TSAN) -o build-tsan/hammer tests/progs/hammer.c -lpthread
	@# The hammer's forked children close connections that linger (the default): each starts a drain
	@# thread of its own, which TSan calls unsupported after a threaded fork unless told otherwise.
	TSAN_OPTIONS=die_after_fork=0 TCPRARE_LOG=/dev/null LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 build-tsan/hammer
	TSAN_OPTIONS=die_after_fork=0 TCPRARE_LOG=/dev/null TCPRARE_CLOSEWAIT_IDLE_MS=0 LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 build-tsan/hammer
	$(CC) $(BASE_CFLAGS) $(TSAN) -o build-tsan/linger_many tests/progs/linger_many.c
	$(CC) $(BASE_CFLAGS) $(TSAN) -o build-tsan/linger_fork tests/progs/linger_fork.c
	TCPRARE_LINGER=on TCPRARE_LOG=/dev/null LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 build-tsan/linger_many
	@# The child starts a drain thread of its own: TSan calls that unsupported unless told otherwise.
	TSAN_OPTIONS=die_after_fork=0 TCPRARE_LINGER=on TCPRARE_LOG=/dev/null LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 build-tsan/linger_fork
	$(CC) $(BASE_CFLAGS) $(TSAN) -o build-tsan/harden_logswitch tests/progs/harden_logswitch.c -lpthread
	rm -f build-tsan/logswitch.log
	TCPRARE_LOG=$(CURDIR)/build-tsan/logswitch.log LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 \
		build-tsan/harden_logswitch $(CURDIR)/build-tsan/logswitch.log
	$(CC) $(BASE_CFLAGS) $(TSAN) -o build-tsan/stress tests/progs/stress.c -lpthread
	@# Every intervention at once, every write checked. The children run the program anew (-x): a
	@# forked copy of a threaded process cannot start threads under TSan. tests/tsan.supp: why its
	@# one entry is harmless.
	TSAN_OPTIONS="die_after_fork=0 suppressions=$(CURDIR)/tests/tsan.supp" TCPRARE_LINGER=on \
		TCPRARE_CLOSEWAIT_SCOPE=all TCPRARE_CLOSEWAIT_IDLE_MS=0 TCPRARE_BACKLOG=max TCPRARE_LOG=/dev/null \
		LD_PRELOAD=$(CURDIR)/build-tsan/libtcprare.so timeout 120 build-tsan/stress -t -x -d 60

# Portability check: the library must also build against musl.
musl:
	$(MAKE) BUILD=build-musl CC=musl-gcc build-musl/libtcprare.so build-musl/tcprare

# tcprare-doctor has its rules, its musl check among them, in its own directory. "-include": a copy
# of the Makefile alone (tests/wrapper.bats installs from one) still builds the library and wrapper.
-include diag/doctor.mk
# tcprare-watch, the eBPF watcher: its own rules, built where its tools are present.
-include diag/watch.mk

install: $(BUILD)/libtcprare.so $(BUILD)/tcprare
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 0755 $(BUILD)/libtcprare.so $(DESTDIR)$(LIBDIR)/libtcprare.so
	install -m 0755 $(BUILD)/tcprare $(DESTDIR)$(BINDIR)/tcprare
	install -m 0644 docs/tcprare.1 $(DESTDIR)$(MANDIR)/man1/tcprare.1
	install -m 0644 docs/libtcprare.7 $(DESTDIR)$(MANDIR)/man7/libtcprare.7

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libtcprare.so $(DESTDIR)$(BINDIR)/tcprare \
	      $(DESTDIR)$(MANDIR)/man1/tcprare.1 $(DESTDIR)$(MANDIR)/man7/libtcprare.7
	-rmdir $(DESTDIR)$(LIBDIR)

clean:
	rm -rf build build-asan build-musl build-tsan build-fuzz

demo: all
	@examples/demo.sh $(BUILD)

# Not with SANITIZE=1: that would measure the sanitizers.
bench: $(BUILD)/libtcprare.so
	@bench/run $(BUILD)

# libFuzzer on the settings parser (tests/fuzz/config_fuzz.c; needs clang): FUZZ_SECONDS (60) of
# fuzzing on a temporary copy of tests/fuzz/corpus, so the seeds in the repo stay as they are. The
# parser is linked with what it needs only, never the hooks or the constructor. A crash or a broken
# invariant stops it, prints the input as the environment it made, and leaves it in build-fuzz/.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS = shim/config.c shim/log.c shim/fdstate.c shim/ownfd.c shim/process.c shim/real.c shim/clock.c

build-fuzz/config_fuzz: tests/fuzz/config_fuzz.c $(FUZZ_SRCS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_CFLAGS) -o $@ tests/fuzz/config_fuzz.c $(FUZZ_SRCS) -ldl -lpthread

fuzz: build-fuzz/config_fuzz
	@corpus=$$(mktemp -d) && cp tests/fuzz/corpus/* "$$corpus"/ && \
	{ build-fuzz/config_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -dict=tests/fuzz/config.dict \
		-artifact_prefix=build-fuzz/ -verbosity=0 -print_final_stats=1 "$$corpus"; rc=$$?; rm -rf "$$corpus"; exit $$rc; }

# memcheck on the demo's programs, the library preloaded and at work in each; about 30 s.
valgrind: all
	tests/fuzz/valgrind_demo.sh $(BUILD)
