# tcprare-doctor, included by the Makefile. The command's build, install and musl check live here,
# in the room of its own beside shim/, so the Makefile itself only names this file. Its files are
# named, not globbed: other commands may share diag/.
DOCTOR_SRCS = diag/doctor.c diag/owners.c diag/report.c diag/sockdiag.c diag/verdict.c
DOCTOR_HEADERS = diag/owners.h diag/report.h diag/sockdiag.h diag/verdict.h shim/config.h

.PHONY: install-doctor uninstall-doctor musl-doctor
all: $(BUILD)/tcprare-doctor
install: install-doctor
uninstall: uninstall-doctor
musl: musl-doctor

$(BUILD)/tcprare-doctor: $(DOCTOR_SRCS) $(DOCTOR_HEADERS) diag/doctor.mk
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $(DOCTOR_SRCS)

install-doctor: $(BUILD)/tcprare-doctor
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BUILD)/tcprare-doctor $(DESTDIR)$(BINDIR)/tcprare-doctor
	install -m 0644 docs/tcprare-doctor.1 $(DESTDIR)$(MANDIR)/man1/tcprare-doctor.1

uninstall-doctor:
	rm -f $(DESTDIR)$(BINDIR)/tcprare-doctor $(DESTDIR)$(MANDIR)/man1/tcprare-doctor.1

# musl-gcc searches musl's headers only; the kernel's UAPI headers (linux/inet_diag.h) are added
# from the system's, as Alpine's linux-headers package provides them, after musl's own.
MUSL_KERNEL_HEADERS = build-musl/kernel-headers
musl-doctor:
	@mkdir -p $(MUSL_KERNEL_HEADERS)
	@ln -sfn /usr/include/linux $(MUSL_KERNEL_HEADERS)/linux
	@ln -sfn /usr/include/asm-generic $(MUSL_KERNEL_HEADERS)/asm-generic
	@ln -sfn /usr/include/$$(gcc -print-multiarch)/asm $(MUSL_KERNEL_HEADERS)/asm
	$(MAKE) BUILD=build-musl CC=musl-gcc CFLAGS="-O2 -g -idirafter $(MUSL_KERNEL_HEADERS)" build-musl/tcprare-doctor
