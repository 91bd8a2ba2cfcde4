# tcprare-watch (diag/watch.c + diag/watch.bpf.c), included by the Makefile. Built only where clang,
# bpftool, libbpf's headers and the kernel's BTF are all present: vmlinux.h is generated from the
# running kernel's BTF and the skeleton by bpftool, both into $(BUILD)/watch/ and never committed.
# The library does not depend on any of it.
WATCH_BPF_CLANG ?= clang
WATCH_BPFTOOL ?= $(firstword $(shell command -v bpftool 2>/dev/null) $(wildcard /usr/sbin/bpftool /sbin/bpftool))
WATCH_BTF ?= /sys/kernel/btf/vmlinux
WATCH_MISSING_PACKAGES := $(strip $(if $(shell command -v $(WATCH_BPF_CLANG) 2>/dev/null),,clang) \
	$(if $(WATCH_BPFTOOL),,bpftool) $(if $(wildcard /usr/include/bpf/libbpf.h),,libbpf-dev))
WATCH_MISSING := $(strip $(WATCH_MISSING_PACKAGES) \
	$(if $(wildcard $(WATCH_BTF)),,$(WATCH_BTF) (the kernel's BTF: CONFIG_DEBUG_INFO_BTF)))
WATCH_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')
WATCH_LIBS := $(or $(shell pkg-config --libs libbpf 2>/dev/null),-lbpf -lelf -lz)

.PHONY: watch watch-skipped install-watch uninstall-watch clean-watch test-watch
ifeq ($(WATCH_MISSING),)
WATCH = $(BUILD)/tcprare-watch
all: $(WATCH)
watch: $(WATCH)
bench: $(WATCH) # bench/watch_cost: what attaching it costs

$(BUILD)/watch/vmlinux.h: $(WATCH_BTF)
	@mkdir -p $(dir $@)
	$(WATCH_BPFTOOL) btf dump file $(WATCH_BTF) format c > $@.tmp && mv $@.tmp $@

# bpftool gen object links the program and strips its DWARF: the skeleton embeds the object.
$(BUILD)/watch/watch.bpf.o: diag/watch.bpf.c diag/watch.h $(BUILD)/watch/vmlinux.h
	$(WATCH_BPF_CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(WATCH_ARCH) \
		-I$(BUILD)/watch -Idiag -c -o $@.tmp.o $<
	$(WATCH_BPFTOOL) gen object $@ $@.tmp.o && rm -f $@.tmp.o

$(BUILD)/watch/watch.skel.h: $(BUILD)/watch/watch.bpf.o
	$(WATCH_BPFTOOL) gen skeleton $< name watch_bpf > $@.tmp && mv $@.tmp $@

# diag/owners.c, shared with tcprare-doctor: a process's name as the library's log gives it.
$(WATCH): diag/watch.c diag/watch.h diag/owners.c diag/owners.h $(BUILD)/watch/watch.skel.h
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -I$(BUILD)/watch -Idiag -o $@ diag/watch.c diag/owners.c $(WATCH_LIBS)

install: install-watch
install-watch: $(WATCH)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(WATCH) $(DESTDIR)$(BINDIR)/tcprare-watch
	install -m 0644 docs/tcprare-watch.8 $(DESTDIR)$(MANDIR)/man8/tcprare-watch.8
else
all: watch-skipped
watch install-watch: watch-skipped
watch-skipped:
	@echo "tcprare-watch not built: missing $(WATCH_MISSING)$(if $(WATCH_MISSING_PACKAGES),; Debian: apt-get install $(WATCH_MISSING_PACKAGES))"
endif

uninstall: uninstall-watch
uninstall-watch:
	rm -f $(DESTDIR)$(BINDIR)/tcprare-watch $(DESTDIR)$(MANDIR)/man8/tcprare-watch.8

# The watch tests alone (also part of make test).
test-watch: all
	TCPRARE_BUILD=$(CURDIR)/$(BUILD) SANITIZE=$(SANITIZE) tests/run tests/watch_events.bats
