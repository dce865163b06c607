# SPDX-License-Identifier: GPL-2.0
#
# gcheap: the user-facing Makefile.  The kernel module itself is built by
# kbuild from Kbuild (obj-m += kmod/).
#
#   make              kmod/gcheap.ko against KDIR, libgcheap, the selftests
#                     and the demo
#   make run          set everything up and, in a guest, run the demo and a
#                     garbage-collected workload (binary trees) with the
#                     collector's figures (tools/run-demo)
#   make check        the whole kselftest suite in guests on 6.1, 6.12 and
#                     the debug kernel, plus checkpatch, sparse, kernel-doc
#   make deps         install what the project needs (Debian packages)
#   make debug-kernel build (once, cached) the KASAN/lockdep/kmemleak kernel
#   make lint         checkpatch --strict, sparse, kernel-doc, W=1 -Werror
#   make bench        the benchmarks, in one guest boot (bench/README)
#   make install      install the module (and run depmod) on this machine
#   make install-lib  install libgcheap, <gcheap.h> and the man pages
#
# KDIR defaults to the running kernel's build tree; `make KDIR=...` builds
# against another.  The guest kernels' modules are built into build/k/NAME/.

KDIR ?= /lib/modules/$(shell uname -r)/build
KSFT_DIR = $(shell tools/linux-src)/tools/testing/selftests
CFLAGS ?= -O2 -g
export CFLAGS

all: module lib selftests demo

module:
	@test -d "$(KDIR)" || { \
	  echo "make: no kernel build tree at KDIR=$(KDIR)."; \
	  echo "  Install the headers of the running kernel (Debian: linux-headers-$$(uname -r)),"; \
	  echo "  set KDIR=, or use 'make run' / 'make check', which build for the guest kernels."; \
	  exit 1; }
	$(MAKE) -C "$(KDIR)" M="$(CURDIR)" W=1 modules

lib:
	$(MAKE) -C lib

selftests: lib
	$(MAKE) -C selftests KSFT_DIR="$(KSFT_DIR)"

demo: lib
	$(MAKE) -C tools

# The kselftest install layout run_kselftest.sh expects: the runner at the
# top, our collection in gcheap/, and kselftest-list.txt naming its tests.
ksft: selftests
	rm -rf build/ksft
	mkdir -p build/ksft/gcheap
	$(MAKE) --no-print-directory -C selftests KSFT_DIR="$(KSFT_DIR)" \
		install INSTALL_PATH="$(CURDIR)/build/ksft/gcheap"
	cp -a "$(KSFT_DIR)/run_kselftest.sh" "$(KSFT_DIR)/kselftest" build/ksft/
	$(MAKE) -s --no-print-directory -C selftests KSFT_DIR="$(KSFT_DIR)" \
		emit_tests COLLECTION=gcheap >build/ksft/kselftest-list.txt

deps:
	tools/deps

debug-kernel: deps
	tools/debug-kernel

lint: deps
	tools/lint

check: deps
	tools/check

# GCHEAP_KERNEL=6.12 or =debug runs the demo on another guest kernel.
run: deps
	@$(MAKE) -s --no-print-directory lib demo
	@k=$${GCHEAP_KERNEL:-6.1}; mkdir -p build; \
	  tools/build-module $$k >build/run-module.log 2>&1 || { cat build/run-module.log; exit 1; }; \
	  tools/vmrun -k $$k -- tools/run-demo

# GCHEAP_KERNEL picks the guest kernel, as for make run.
bench: deps
	@$(MAKE) -s --no-print-directory lib
	@$(MAKE) -s --no-print-directory -C bench
	@k=$${GCHEAP_KERNEL:-6.1}; mkdir -p build; \
	  tools/build-module $$k >build/bench-module.log 2>&1 || { cat build/bench-module.log; exit 1; }; \
	  tools/vmrun -k $$k -- bench/run

install: module
	$(MAKE) -C "$(KDIR)" M="$(CURDIR)" modules_install
	depmod -a

PREFIX ?= /usr/local
install-lib: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0755 lib/libgcheap.so.1 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libgcheap.so.1 $(DESTDIR)$(PREFIX)/lib/libgcheap.so
	install -m 0644 lib/libgcheap.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 lib/include/gcheap.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 lib/man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 0644 lib/man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	$(MAKE) -C lib clean
	$(MAKE) -C tools clean
	$(MAKE) -C bench clean
	-$(MAKE) -C selftests KSFT_DIR="$(KSFT_DIR)" clean
	-test -d "$(KDIR)" && $(MAKE) -C "$(KDIR)" M="$(CURDIR)" clean
	rm -rf build

.PHONY: all module lib selftests demo ksft deps debug-kernel lint check run bench install install-lib clean
