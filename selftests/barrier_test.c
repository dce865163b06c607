// SPDX-License-Identifier: GPL-2.0
/*
 * The collector's write barrier, end to end through libgcheap.
 *
 * While the collector marks, the program runs.  Heap pages are
 * write-protected, and the first write to a clean page faults into the
 * module, which records the page dirty; the final stop-the-world pause
 * rescans the roots and the pages written during marking.  Two things must
 * hold, and these tests check them from the outside:
 *
 * 1. Writes the kernel makes on the program's behalf are writes like any
 *    other (the sys fixture).  read() from a pipe and from a file in
 *    /tmp, readv(), pread(), recv() on a socketpair, io_uring reads (into
 *    plain buffers and, where the kernel allows it, into registered ones)
 *    and a child process's process_vm_writev() all write into heap buffers
 *    that are fresh or clean (write-protected since their last write)
 *    while another thread runs gcheap_collect() back to back.  Each
 *    transfer must deliver every byte, with no EFAULT and no short count
 *    (test "bytes"), and the clean pages must fault (barrier_faults).
 *    Pointers moved this way must keep their objects alive (test
 *    "pointers"): a pointer is copied by the system call from one heap
 *    object (a pool) into another (a holder) that the marker may already
 *    have scanned, then the pool's copy is overwritten, so that only the
 *    holder keeps the object -- the case a write barrier exists for.
 *    Those heaps run in checkmark mode, which reports any object the
 *    concurrent marking missed, and every object carries canaries, so one
 *    freed and reused fails its check.
 *
 * 2. The final pause does not grow with the heap (test flat_pause).  A
 *    live heap, mostly large noscan objects under a list of small
 *    pointerful nodes, grows to 64 MiB, 256 MiB, 1 GiB and 4 GiB and is
 *    collected at each size while a thread keeps writing a fixed set of
 *    64 heap pages.  The pages the final pause rescans (pause_pages_last)
 *    must stay under a bound that depends on what the program writes
 *    during marking, not on the heap's size.  Only page counts are
 *    asserted, never times: the guest's clock under TCG on shared cores
 *    says little.
 *
 * The harness runs each test in a process of its own, so each sets up a
 * fresh heap, with pacing off: only the tests' own gcheap_collect() calls
 * collect.
 */
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <gcheap.h>

#include "gcheap_test.h"
#include "kselftest_harness.h"

#define KiB		1024ul
#define MiB		(1024ul * KiB)
#define GiB		(1024ul * MiB)
#define PAGE		4096ul
#define noinline	__attribute__((noinline))

/* --- canaries, patterns, time --- */

/* Word @i of the object at @o, generation @gen. */
static inline uint64_t canary(const void *o, size_t i, unsigned int gen)
{
	return mix64((uint64_t)(uintptr_t)o ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull) ^
		     ((uint64_t)gen << 52) ^ 0x2545f4914f6cdd1dull);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Overwrite dead stack below the caller, so that stale copies of dropped
 * pointers there cannot keep garbage alive (or hide a lost object).
 */
static noinline void scrub_stack(void)
{
	char buf[32 * 1024];

	memset(buf, 0, sizeof(buf));
	__asm__ volatile("" : : "r"(buf) : "memory");
}

/* Pages of 4 KiB lying wholly inside [@p, @p + @len). */
static size_t whole_pages(const void *p, size_t len)
{
	uintptr_t s = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(PAGE - 1);

	return e > s ? (e - s) / PAGE : 0;
}

/* --- the heap and the module --- */

/* 0 when the module with the collector is loaded, else -errno. */
static int module_ready(void)
{
	struct gcheap_device_info info;
	int ret = gcheap_device_info(&info);

	if (ret)
		return ret;
	return info.ioctls & (1ull << _IOC_NR(GCHEAP_IOC_GC)) ? 0 : -ENOTTY;
}

#define NEED_MODULE() do {							\
		int __r = module_ready();					\
									\
		if (__r == -ENOENT)						\
			SKIP(return, "no /dev/gcheap: the module is not loaded"); \
		ASSERT_EQ(0, __r);						\
	} while (0)

/* A heap of @bytes, pacing off; the environment's settings are ignored. */
static int heap_init(uint64_t bytes, uint32_t flags)
{
	struct gcheap_config cfg = {
		.heap_bytes = bytes,
		.flags = GCHEAP_CONFIG_GOGC | flags,
		.gogc = GCHEAP_GOGC_OFF,
	};

	unsetenv("GCHEAP_GOGC");
	unsetenv("GCHEAP_MEMLIMIT");
	return gcheap_init(&cfg);
}

#define STATS(s)	ASSERT_EQ(0, gcheap_stats(&(s)))

static long param_read(const char *name)
{
	return read_number("/sys/module/gcheap/parameters", name);
}

/*
 * Wait up to 30 s until the heap has completed @n collections; returns
 * the count it reached (less than @n on time-out).
 */
static uint64_t wait_cycles(uint64_t n)
{
	uint64_t end = now_ns() + 30000000000ull;
	struct gcheap_stats st = { 0 };

	while (!gcheap_stats(&st) && st.gc_cycles < n && now_ns() < end)
		usleep(200);
	return st.gc_cycles;
}

/* A registered thread running gcheap_collect() back to back. */
struct looper {
	pthread_t thread;
	bool running;
	int stop;
	int err;		/* the first error of gcheap_collect() */
	uint64_t cycles;	/* collections it completed */
};

static void *looper_fn(void *arg)
{
	struct looper *l = arg;

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int ret = gcheap_collect();

		if (ret) {
			__atomic_store_n(&l->err, ret, __ATOMIC_RELEASE);
			break;
		}
		__atomic_add_fetch(&l->cycles, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int looper_start(struct looper *l)
{
	memset(l, 0, sizeof(*l));
	if (pthread_create(&l->thread, NULL, looper_fn, l))
		return -EAGAIN;
	l->running = true;
	return 0;
}

/* Stop it; its error, or 0. */
static int looper_stop(struct looper *l)
{
	if (!l->running)
		return 0;
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_join(l->thread, NULL);
	l->running = false;
	return l->err;
}

/* --- canaried target objects --- */

/*
 * A target: word 0 holds its length in words ^ a canary of its address,
 * the rest canaries.  It holds no pointers.
 */
#define TGEN		5

static uint64_t *target_new(uint32_t *seed)
{
	size_t size = (16 + rnd(seed) % 3000) & ~7ul, i;
	uint64_t *o = gcheap_alloc(size);

	if (!o)
		return NULL;
	o[0] = (size / 8) ^ canary(o, 0, TGEN);
	for (i = 1; i < size / 8; i++)
		o[i] = canary(o, i, TGEN);
	return o;
}

/* 0 when @o is a whole target; else 1 + the index of the first bad word. */
static long target_check(const uint64_t *o)
{
	size_t n, i;

	if (!o || gcheap_base(o) != o)
		return 1;
	n = o[0] ^ canary(o, 0, TGEN);
	if (n < 2 || n > gcheap_size(o) / 8)
		return 1;
	for (i = 1; i < n; i++)
		if (o[i] != canary(o, i, TGEN))
			return 1 + (long)i;
	return 0;
}

/*
 * Ballast: a tree of scanned nodes, so that each marking takes a while and
 * the program's writes land during it.
 */
struct bnode {
	struct bnode *l, *r;
	uint64_t w[6];
};

static struct bnode *g_ballast;

static struct bnode *ballast_new(int depth)
{
	struct bnode *n;
	int i;

	if (!depth)
		return NULL;
	n = gcheap_alloc(sizeof(*n));
	if (!n)
		return NULL;
	for (i = 0; i < 6; i++)
		n->w[i] = canary(n, i, 1);
	n->l = ballast_new(depth - 1);
	n->r = ballast_new(depth - 1);
	if (depth > 1 && (!n->l || !n->r))
		return NULL;
	return n;
}

/* The whole nodes, or -1 at the first bad one. */
static long ballast_check(const struct bnode *n)
{
	long l, r;
	int i;

	if (!n)
		return 0;
	if (gcheap_base(n) != n)
		return -1;
	for (i = 0; i < 6; i++)
		if (n->w[i] != canary(n, i, 1))
			return -1;
	l = ballast_check(n->l);
	r = ballast_check(n->r);
	return l < 0 || r < 0 ? -1 : 1 + l + r;
}

#define BALLAST_DEPTH	14

/* ======================================================================
 * 1. System calls writing into the heap while the collector marks
 * ====================================================================== */

enum chan_kind {
	C_READ_PIPE,	/* read() from a pipe */
	C_READ_FILE,	/* read() from a file in /tmp */
	C_READV,	/* one readv() from the file into every segment */
	C_PREAD,	/* pread() from the file, at an odd offset */
	C_RECV,		/* recv(MSG_WAITALL) on a socketpair */
	C_URING,	/* io_uring reads: from the file, and from an empty pipe */
	C_URING_FIXED,	/* io_uring reads into registered buffers */
	C_PVW,		/* a child's process_vm_writev() */
};

#define MAX_SEG		4
#define SRC_MAX		(256 * KiB)
#define PIPE_SIZE	(1024 * KiB)
#define PREAD_OFF	12347
#define MAX_FIXED	128

/* A request to the process_vm_writev() child: write its source there. */
struct pvw_req {
	uint64_t nseg;		/* 0: exit */
	uint64_t len;		/* bytes from the start of the source */
	struct iovec iov[MAX_SEG];
};

/*
 * A way for the kernel to write into the heap.  The bytes to deliver are
 * in @src, a shared anonymous mapping, which the process_vm_writev() child
 * inherits and uses as its own source.
 */
struct chan {
	int kind;
	int pipe[2], sock[2], file;
	struct io_uring ring;
	bool ring_up;
	int nfixed;
	struct iovec fixed[MAX_FIXED];
	pid_t child;
	int req[2], rsp[2];
	uint8_t *src;
	unsigned int uses;
};

static __attribute__((noreturn)) void pvw_child(pid_t parent, int req, int rsp, const void *src)
{
	struct pvw_req r;
	int64_t ret;

	for (;;) {
		struct iovec local;

		if (read(req, &r, sizeof(r)) != sizeof(r) || !r.nseg || r.nseg > MAX_SEG ||
		    r.len > SRC_MAX)
			_exit(0);
		local.iov_base = (void *)src;
		local.iov_len = r.len;
		ret = process_vm_writev(parent, &local, 1, r.iov, r.nseg, 0);
		if (ret < 0)
			ret = -errno;
		if (write(rsp, &ret, sizeof(ret)) != sizeof(ret))
			_exit(1);
	}
}

static void chan_init(struct chan *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->pipe[0] = ch->pipe[1] = ch->sock[0] = ch->sock[1] = ch->file = -1;
	ch->req[0] = ch->req[1] = ch->rsp[0] = ch->rsp[1] = -1;
	ch->src = MAP_FAILED;
}

/* 0, or -errno with *@what naming the step that failed. */
static int chan_open(struct chan *ch, int kind, const char **what)
{
	char name[] = "/tmp/barrier_test.XXXXXX";
	bool pipe_ = kind == C_READ_PIPE || kind == C_URING;
	bool file = kind == C_READ_FILE || kind == C_READV || kind == C_PREAD ||
		    kind == C_URING || kind == C_URING_FIXED;
	int sz;

	ch->kind = kind;
	*what = "mmap";
	ch->src = mmap(NULL, SRC_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ch->src == MAP_FAILED)
		return -errno;
	if (pipe_) {
		*what = "pipe";
		if (pipe2(ch->pipe, O_CLOEXEC))
			return -errno;
		/* Room for a whole transfer: a write() never waits for the reader. */
		*what = "F_SETPIPE_SZ";
		sz = fcntl(ch->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
		if (sz < 0)
			return -errno;
		if (sz < (int)SRC_MAX)
			return -ENOSPC;
	}
	if (file) {
		*what = "mkstemp in /tmp";
		ch->file = mkstemp(name);
		if (ch->file < 0)
			return -errno;
		unlink(name);
	}
	if (kind == C_RECV) {
		*what = "socketpair";
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch->sock))
			return -errno;
		sz = 1 << 20;
		setsockopt(ch->sock[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(ch->sock[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	if (kind == C_URING || kind == C_URING_FIXED) {
		int ret = io_uring_queue_init(8, &ch->ring, 0);

		*what = "io_uring_queue_init";
		if (ret)
			return ret;
		ch->ring_up = true;
	}
	if (kind == C_PVW) {
		pid_t parent = getpid();

		*what = "pipe";
		if (pipe2(ch->req, O_CLOEXEC) || pipe2(ch->rsp, O_CLOEXEC))
			return -errno;
		/*
		 * _Fork() runs no atfork handler: libgcheap takes no snapshot
		 * and the child has no heap (the mapping is not inherited),
		 * only the parent's addresses, which it gets in each request.
		 * It calls nothing but read(), write() and process_vm_writev().
		 */
		*what = "_Fork";
		ch->child = _Fork();
		if (ch->child < 0)
			return -errno;
		if (!ch->child) {
			close(ch->req[1]);
			close(ch->rsp[0]);
			pvw_child(parent, ch->req[0], ch->rsp[1], ch->src);
		}
		/* Yama's ptrace_scope=1 lets a process write only into its
		 * descendants unless it allows another; without Yama this
		 * fails, harmlessly.
		 */
		prctl(PR_SET_PTRACER, ch->child, 0, 0, 0);
	}
	return 0;
}

static void chan_close(struct chan *ch)
{
	int i;

	if (ch->child > 0) {
		struct pvw_req r = { .nseg = 0 };

		if (write(ch->req[1], &r, sizeof(r)) != sizeof(r))
			kill(ch->child, SIGKILL);
		waitpid(ch->child, NULL, 0);
		ch->child = 0;
	}
	if (ch->ring_up)
		io_uring_queue_exit(&ch->ring);
	ch->ring_up = false;
	for (i = 0; i < 2; i++) {
		if (ch->pipe[i] >= 0)
			close(ch->pipe[i]);
		if (ch->sock[i] >= 0)
			close(ch->sock[i]);
		if (ch->req[i] >= 0)
			close(ch->req[i]);
		if (ch->rsp[i] >= 0)
			close(ch->rsp[i]);
	}
	if (ch->file >= 0)
		close(ch->file);
	if (ch->src != MAP_FAILED)
		munmap(ch->src, SRC_MAX);
	chan_init(ch);
}

/*
 * Make @iov the ring's registered buffers (C_URING_FIXED).  The kernel may
 * refuse a long-term pin of heap pages: 6.1's io_uring takes no buffer in
 * a file mapping other than hugetlbfs or shmem (EOPNOTSUPP), and since 6.5
 * get_user_pages() refuses FOLL_LONGTERM writes to shared mappings that
 * want write notification (EFAULT), which a heap with a ->page_mkwrite
 * write barrier is.
 */
static int chan_fix(struct chan *ch, const struct iovec *iov, int n)
{
	int ret;

	if (n > MAX_FIXED)
		return -E2BIG;
	if (ch->nfixed)
		io_uring_unregister_buffers(&ch->ring);
	ch->nfixed = 0;
	ret = io_uring_register_buffers(&ch->ring, iov, n);
	if (!ret) {
		memcpy(ch->fixed, iov, n * sizeof(*iov));
		ch->nfixed = n;
	}
	return ret;
}

static int write_full(int fd, const void *buf, size_t len)
{
	ssize_t r = write(fd, buf, len);

	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EIO;
}

/* Reap @n completions; 0 when each read its segment whole. */
static ssize_t uring_reap(struct chan *ch, const struct iovec *dst, int n)
{
	ssize_t done = 0, err = 0;
	int i;

	for (i = 0; i < n; i++) {
		struct io_uring_cqe *cqe;
		int ret;

		/* A stop of the world may interrupt the wait: EINTR. */
		do
			ret = io_uring_wait_cqe(&ch->ring, &cqe);
		while (ret == -EINTR);
		if (ret)
			return ret;
		if (cqe->user_data >= (uint64_t)n)
			err = -EINVAL;
		else if (cqe->res < 0)
			err = err ? err : cqe->res;
		else if ((size_t)cqe->res != dst[cqe->user_data].iov_len)
			err = err ? err : -EIO;	/* a short read */
		else
			done += cqe->res;
		io_uring_cqe_seen(&ch->ring, cqe);
	}
	return err ? err : done;
}

static int fixed_index(const struct chan *ch, const struct iovec *v)
{
	int j;

	for (j = 0; j < ch->nfixed; j++) {
		uintptr_t b = (uintptr_t)ch->fixed[j].iov_base, p = (uintptr_t)v->iov_base;

		if (p >= b && p + v->iov_len <= b + ch->fixed[j].iov_len)
			return j;
	}
	return -1;
}

/*
 * Deliver the first bytes of ch->src, as many as the segments of @dst
 * hold, into them, in order, through the channel.  Returns the bytes
 * delivered -- stopping at the first short transfer -- or -errno.
 */
static ssize_t chan_xfer(struct chan *ch, const struct iovec *dst, int nseg)
{
	size_t total = 0, off;
	ssize_t r, done = 0;
	int i, ret;

	for (i = 0; i < nseg; i++)
		total += dst[i].iov_len;
	if (total > SRC_MAX || nseg > MAX_SEG)
		return -EINVAL;
	switch (ch->kind) {
	case C_READ_PIPE:
		ret = write_full(ch->pipe[1], ch->src, total);
		if (ret)
			return ret;
		for (i = 0; i < nseg; i++) {
			r = read(ch->pipe[0], dst[i].iov_base, dst[i].iov_len);
			if (r < 0)
				return -errno;
			done += r;
			if ((size_t)r != dst[i].iov_len)
				break;
		}
		return done;
	case C_READ_FILE:
	case C_READV:
		if (pwrite(ch->file, ch->src, total, 0) != (ssize_t)total)
			return -EIO;
		if (lseek(ch->file, 0, SEEK_SET))
			return -errno;
		if (ch->kind == C_READV) {
			r = readv(ch->file, dst, nseg);
			return r < 0 ? -errno : r;
		}
		for (i = 0; i < nseg; i++) {
			r = read(ch->file, dst[i].iov_base, dst[i].iov_len);
			if (r < 0)
				return -errno;
			done += r;
			if ((size_t)r != dst[i].iov_len)
				break;
		}
		return done;
	case C_PREAD:
		if (pwrite(ch->file, ch->src, total, PREAD_OFF) != (ssize_t)total)
			return -EIO;
		for (i = 0; i < nseg; i++) {
			r = pread(ch->file, dst[i].iov_base, dst[i].iov_len, PREAD_OFF + done);
			if (r < 0)
				return -errno;
			done += r;
			if ((size_t)r != dst[i].iov_len)
				break;
		}
		return done;
	case C_RECV:
		/* The data is all queued first: the receiver never waits. */
		r = send(ch->sock[0], ch->src, total, MSG_DONTWAIT);
		if (r != (ssize_t)total)
			return r < 0 ? -errno : -EIO;
		for (i = 0; i < nseg; i++) {
			r = recv(ch->sock[1], dst[i].iov_base, dst[i].iov_len, MSG_WAITALL);
			if (r < 0)
				return -errno;
			done += r;
			if ((size_t)r != dst[i].iov_len)
				break;
		}
		return done;
	case C_URING:
	case C_URING_FIXED: {
		/*
		 * From the file: the reads are issued at once, each at its
		 * offset.  From the pipe (every other call of C_URING): the
		 * reads are linked and submitted while the pipe is empty, so
		 * they wait, and complete only after the data is written --
		 * asynchronously, through the ring's poll and task work.
		 */
		bool from_pipe = ch->kind == C_URING && (ch->uses++ & 1);

		if (!from_pipe && pwrite(ch->file, ch->src, total, 0) != (ssize_t)total)
			return -EIO;
		for (i = 0, off = 0; i < nseg; off += dst[i].iov_len, i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ch->ring);

			if (!sqe)
				return -EBUSY;
			if (ch->kind == C_URING_FIXED) {
				int j = fixed_index(ch, &dst[i]);

				if (j < 0)
					return -EINVAL;
				io_uring_prep_read_fixed(sqe, ch->file, dst[i].iov_base,
							 dst[i].iov_len, off, j);
			} else if (from_pipe) {
				io_uring_prep_read(sqe, ch->pipe[0], dst[i].iov_base,
						   dst[i].iov_len, -1);
				if (i < nseg - 1)
					sqe->flags |= IOSQE_IO_LINK;
			} else {
				io_uring_prep_read(sqe, ch->file, dst[i].iov_base,
						   dst[i].iov_len, off);
			}
			sqe->user_data = i;
		}
		ret = io_uring_submit(&ch->ring);
		if (ret != nseg)
			return ret < 0 ? ret : -EIO;
		if (from_pipe) {
			ret = write_full(ch->pipe[1], ch->src, total);
			if (ret)
				return ret;
		}
		return uring_reap(ch, dst, nseg);
	}
	case C_PVW: {
		struct pvw_req req = { .nseg = nseg, .len = total };
		int64_t res;

		memcpy(req.iov, dst, nseg * sizeof(*dst));
		ret = write_full(ch->req[1], &req, sizeof(req));
		if (ret)
			return ret;
		if (read(ch->rsp[0], &res, sizeof(res)) != sizeof(res))
			return -EPIPE;
		return res;
	}
	}
	return -EINVAL;
}

/* Fill the first @len bytes of the source with the pattern of @seed. */
static void src_fill(struct chan *ch, size_t len, uint64_t seed)
{
	uint64_t *w = (uint64_t *)ch->src;
	size_t i;

	for (i = 0; i < (len + 7) / 8; i++)
		w[i] = mix64(seed * 0x9e3779b97f4a7c15ull + i);
}

/* -1 when the segments hold the source's bytes in order, else the stream
 * offset of the first wrong byte.
 */
static long src_verify(const struct chan *ch, const struct iovec *dst, int nseg)
{
	size_t off = 0, k;
	int i;

	for (i = 0; i < nseg; off += dst[i].iov_len, i++) {
		const uint8_t *d = dst[i].iov_base;

		if (!memcmp(d, ch->src + off, dst[i].iov_len))
			continue;
		for (k = 0; d[k] == ch->src[off + k]; k++)
			;
		return (long)(off + k);
	}
	return -1;
}

static const char *const chan_names[] = {
	[C_READ_PIPE] = "read() from a pipe",
	[C_READ_FILE] = "read() from a file",
	[C_READV] = "readv() from a file",
	[C_PREAD] = "pread() from a file",
	[C_RECV] = "recv() on a socketpair",
	[C_URING] = "io_uring read",
	[C_URING_FIXED] = "io_uring read into a registered buffer",
	[C_PVW] = "process_vm_writev() from a child",
};

FIXTURE(sys) {
	struct chan ch;
	struct looper loop;
};

FIXTURE_VARIANT(sys) {
	int kind;
};

FIXTURE_VARIANT_ADD(sys, read_pipe) { .kind = C_READ_PIPE };
FIXTURE_VARIANT_ADD(sys, read_file) { .kind = C_READ_FILE };
FIXTURE_VARIANT_ADD(sys, readv) { .kind = C_READV };
FIXTURE_VARIANT_ADD(sys, pread) { .kind = C_PREAD };
FIXTURE_VARIANT_ADD(sys, recv) { .kind = C_RECV };
FIXTURE_VARIANT_ADD(sys, io_uring) { .kind = C_URING };
FIXTURE_VARIANT_ADD(sys, io_uring_fixed) { .kind = C_URING_FIXED };
FIXTURE_VARIANT_ADD(sys, process_vm_writev) { .kind = C_PVW };

FIXTURE_SETUP(sys)
{
	chan_init(&self->ch);
}

FIXTURE_TEARDOWN(sys)
{
	EXPECT_EQ(0, looper_stop(&self->loop));
	chan_close(&self->ch);
}

/* Open the channel (its child, if any, is forked before any thread). */
#define CHAN_OPEN() do {							\
		const char *__what = "";					\
		int __r = chan_open(&self->ch, variant->kind, &__what);	\
									\
		ASSERT_EQ(0, __r) TH_LOG("%s: %s", __what, strerror(-__r));	\
	} while (0)

/*
 * A set of heap buffers one transfer fills: a segment in an object of the
 * largest size class (32 KiB), one in a 64 KiB large object, one in a
 * 6000-byte object; each starts and ends at an odd offset, so the copies
 * cross page boundaries at odd places.  In every other set the large
 * object is noscan: the barrier covers the pages of both kinds.
 */
#define NSEG		3
#define NSETS		4

struct bufset {
	uint8_t *obj[NSEG];
	struct iovec seg[NSEG];
	uint64_t cycles;	/* gc_cycles, read after its last write */
};

static const struct { size_t size, off, len; } seg_shape[NSEG] = {
	{ GCHEAP_SMALL_MAX, 5, GCHEAP_SMALL_MAX - 5 - 3 },
	{ 64 * KiB, 4093, 64 * KiB - 4093 - 9 },
	{ 6000, 100, 5000 },
};

/* Clean buffers: written, then left alone while collections protect them. */
static struct bufset g_sets[NSETS];

static int bufset_alloc(struct bufset *s, bool atomic_large)
{
	int i;

	for (i = 0; i < NSEG; i++) {
		s->obj[i] = i == 1 && atomic_large ? gcheap_alloc_atomic(seg_shape[i].size)
						   : gcheap_alloc(seg_shape[i].size);
		if (!s->obj[i])
			return -ENOMEM;
		s->seg[i].iov_base = s->obj[i] + seg_shape[i].off;
		s->seg[i].iov_len = seg_shape[i].len;
	}
	s->cycles = 0;
	return 0;
}

/* Register the clean sets' buffers, and @fresh's if given. */
static int fix_sets(struct chan *ch, const struct bufset *fresh)
{
	struct iovec iov[(NSETS + 1) * NSEG];
	int n = 0, i, k;

	for (i = 0; i < NSETS; i++)
		for (k = 0; k < NSEG; k++)
			iov[n++] = (struct iovec){ g_sets[i].obj[k], seg_shape[k].size };
	for (k = 0; fresh && k < NSEG; k++)
		iov[n++] = (struct iovec){ fresh->obj[k], seg_shape[k].size };
	return chan_fix(ch, iov, n);
}

/*
 * Skip the registered-buffer variant where the kernel refuses to pin heap
 * pages for good, after checking that it refused cleanly.
 */
#define FIXED_OR_SKIP(ret) do {							\
		if ((ret) == -EOPNOTSUPP || (ret) == -EFAULT)			\
			SKIP(return, "the kernel pins no heap page for a registered "	\
			     "io_uring buffer (%s): %s", strerror(-(ret)),	\
			     (ret) == -EOPNOTSUPP ? "io_uring takes no buffer in a file mapping" \
			     : "no FOLL_LONGTERM write pin of a write-notified mapping"); \
		ASSERT_EQ(0, ret);						\
	} while (0)

#define SYS_ROUNDS	48
#define SYS_TIMEOUT	120

/*
 * Every byte lands, whether the buffer is fresh or clean and whatever
 * the collector is doing; and the clean buffers' pages fault.
 */
TEST_F_TIMEOUT(sys, bytes, SYS_TIMEOUT)
{
	const char *name = chan_names[variant->kind];
	uint64_t want_faults = 0, seed = 1, t0 = now_ns();
	struct gcheap_stats s0, s1;
	int r, i, k, ret;

	NEED_MODULE();
	CHAN_OPEN();
	ASSERT_EQ(0, heap_init(256 * MiB, 0));
	g_ballast = ballast_new(BALLAST_DEPTH);
	ASSERT_NE(NULL, g_ballast);
	for (i = 0; i < NSETS; i++) {
		ASSERT_EQ(0, bufset_alloc(&g_sets[i], i & 1));
		/* Written once, so that protecting them again is real work. */
		for (k = 0; k < NSEG; k++)
			memset(g_sets[i].obj[k], 0x5a, seg_shape[k].size);
	}
	if (variant->kind == C_URING_FIXED) {
		ret = fix_sets(&self->ch, NULL);
		FIXED_OR_SKIP(ret);
	}
	ASSERT_EQ(0, gcheap_collect());
	STATS(s0);
	ASSERT_EQ(0, looper_start(&self->loop));

	for (r = 0; r < SYS_ROUNDS; r++) {
		struct bufset fresh, *s = &g_sets[r % NSETS];
		size_t total = 0;
		ssize_t got;
		uint64_t c;

		/* Fresh buffers, garbage after the round. */
		ASSERT_EQ(0, bufset_alloc(&fresh, r & 1)) TH_LOG("round %d", r);
		if (variant->kind == C_URING_FIXED) {
			ASSERT_EQ(0, fix_sets(&self->ch, &fresh)) TH_LOG("round %d", r);
		}
		for (k = 0; k < NSEG; k++)
			total += fresh.seg[k].iov_len;
		src_fill(&self->ch, total, seed++);
		got = chan_xfer(&self->ch, fresh.seg, NSEG);
		ASSERT_EQ((ssize_t)total, got)
			TH_LOG("%s, fresh buffers, round %d: %s", name, r,
			       got < 0 ? strerror((int)-got) : "short");
		ASSERT_EQ(-1, src_verify(&self->ch, fresh.seg, NSEG))
			TH_LOG("%s, fresh buffers, round %d", name, r);

		/*
		 * A clean set: a whole collection has started since its last
		 * write, so each of its pages is write-protected again.
		 */
		c = wait_cycles(s->cycles + 2);
		ASSERT_LE(s->cycles + 2, c)
			TH_LOG("round %d: collections stalled (looper error %d)", r,
			       __atomic_load_n(&self->loop.err, __ATOMIC_ACQUIRE));
		src_fill(&self->ch, total, seed++);
		got = chan_xfer(&self->ch, s->seg, NSEG);
		ASSERT_EQ((ssize_t)total, got)
			TH_LOG("%s, clean buffers, round %d: %s", name, r,
			       got < 0 ? strerror((int)-got) : "short");
		ASSERT_EQ(-1, src_verify(&self->ch, s->seg, NSEG))
			TH_LOG("%s, clean buffers, round %d", name, r);
		for (k = 0; k < NSEG; k++)
			want_faults += whole_pages(s->seg[k].iov_base, s->seg[k].iov_len);
		s->cycles = wait_cycles(0);
	}
	ASSERT_EQ(0, looper_stop(&self->loop));
	STATS(s1);
	ASSERT_EQ(0, s1.stop_aborts);
	EXPECT_LE(s0.gc_cycles + SYS_ROUNDS / NSETS * 2, s1.gc_cycles);
	EXPECT_EQ((1l << BALLAST_DEPTH) - 1, ballast_check(g_ballast));
	TH_LOG("%s: %llu collections, %llu barrier faults (clean pages written: %llu), %.1f s",
	       name, (unsigned long long)(s1.gc_cycles - s0.gc_cycles),
	       (unsigned long long)(s1.barrier_faults - s0.barrier_faults),
	       (unsigned long long)want_faults, (now_ns() - t0) / 1e9);
	/*
	 * Every wholly written page of a clean buffer was protected and took
	 * a fault -- except a registered buffer's: the kernel writes those
	 * through its own mapping of the pinned pages, never through the
	 * page tables, and the barrier keeps pinned pages dirty instead.
	 */
	ASSERT_LT(0, want_faults);
	if (variant->kind != C_URING_FIXED) {
		EXPECT_LE(want_faults, s1.barrier_faults - s0.barrier_faults);
	}
}

/*
 * Pointers moved by system calls.  Pools hold the only pointers to
 * targets; each step copies one pointer, or two straddling a page
 * boundary, from a pool into a holder through the channel, then
 * overwrites the pool's copy with a new target.  A holder the marker
 * scanned before the write would, without the barrier, leave the target
 * unmarked and freed.
 */
#define NPOOL		64
#define POOL_WORDS	16
#define NHOLD		64
#define HOLD_SIZE	(8 * KiB)
#define HOLD_WORDS	(HOLD_SIZE / 8)
#define PTR_STEPS	1536	/* at least this many steps ... */
#define PTR_CYCLES	32	/* ... and until this many collections ran */

static uint64_t *g_pool[NPOOL];
static uint64_t *g_hold[NHOLD];

/* 0 when every pointer in the holders and the pools leads to a whole
 * target; else a code saying which.
 */
static noinline long check_targets(size_t *n)
{
	size_t i, k;

	*n = 0;
	for (i = 0; i < NHOLD; i++)
		for (k = 0; k < HOLD_WORDS; k++) {
			if (!g_hold[i][k])
				continue;
			++*n;
			if (target_check((uint64_t *)(uintptr_t)g_hold[i][k]))
				return 1 + (long)(i * HOLD_WORDS + k);
		}
	for (i = 0; i < NPOOL; i++)
		for (k = 0; k < POOL_WORDS; k++)
			if (target_check((uint64_t *)(uintptr_t)g_pool[i][k]))
				return -1 - (long)(i * POOL_WORDS + k);
	return 0;
}

static noinline int ptr_setup(uint32_t *seed)
{
	size_t i, k;

	for (i = 0; i < NPOOL; i++) {
		g_pool[i] = gcheap_alloc(POOL_WORDS * 8);
		if (!g_pool[i])
			return -ENOMEM;
		for (k = 0; k < POOL_WORDS; k++) {
			g_pool[i][k] = (uintptr_t)target_new(seed);
			if (!g_pool[i][k])
				return -ENOMEM;
		}
	}
	for (i = 0; i < NHOLD; i++) {
		g_hold[i] = gcheap_alloc(HOLD_SIZE);
		if (!g_hold[i])
			return -ENOMEM;
	}
	return 0;
}

/*
 * One step: returns what chan_xfer() returned, with the holder's words in
 * *@dst.
 */
static noinline ssize_t ptr_step(struct chan *ch, uint32_t *seed, struct iovec *dst,
				 uint64_t **from)
{
	uint64_t *pool = g_pool[rnd(seed) % NPOOL], *hold = g_hold[rnd(seed) % NHOLD];
	size_t k = rnd(seed) % (POOL_WORDS - 1), w;
	bool pair = rnd(seed) & 1;

	if (pair) {
		/* Two words, the first ending at a page boundary of the holder. */
		uintptr_t b = ((uintptr_t)hold + 64 + PAGE - 1) & ~(PAGE - 1);

		w = (b - (uintptr_t)hold) / 8 - 1;
	} else {
		w = rnd(seed) % HOLD_WORDS;
	}
	dst->iov_base = &hold[w];
	dst->iov_len = pair ? 16 : 8;
	*from = &pool[k];
	/* The pool stays the pointers' keeper until the copy is done. */
	memcpy(ch->src, &pool[k], dst->iov_len);
	return chan_xfer(ch, dst, 1);
}

TEST_F_TIMEOUT(sys, pointers, SYS_TIMEOUT)
{
	const char *name = chan_names[variant->kind];
	struct gcheap_stats s0, s1;
	uint64_t t0 = now_ns();
	uint32_t seed = 7;
	size_t n, moved = 0;
	uint64_t *from;
	int i, j, ret;

	NEED_MODULE();
	CHAN_OPEN();
	/* Checkmark mode: an object the concurrent marking missed is
	 * reported (and counted) at the cycle that missed it.
	 */
	ASSERT_EQ(0, heap_init(256 * MiB, GCHEAP_CONFIG_CHECKMARK));
	g_ballast = ballast_new(BALLAST_DEPTH - 1);
	ASSERT_NE(NULL, g_ballast);
	ASSERT_EQ(0, ptr_setup(&seed));
	if (variant->kind == C_URING_FIXED) {
		struct iovec iov[NHOLD];

		for (i = 0; i < NHOLD; i++)
			iov[i] = (struct iovec){ g_hold[i], HOLD_SIZE };
		ret = chan_fix(&self->ch, iov, NHOLD);
		FIXED_OR_SKIP(ret);
	}
	ASSERT_EQ(0, gcheap_collect());
	STATS(s0);
	ASSERT_EQ(0, looper_start(&self->loop));

	for (i = 0; i < PTR_STEPS ||
		    __atomic_load_n(&self->loop.cycles, __ATOMIC_RELAXED) < PTR_CYCLES; i++) {
		struct iovec dst;
		ssize_t got;

		ASSERT_GT(t0 + 60000000000ull, now_ns())
			TH_LOG("%s: %llu collections in 60 s (looper error %d)", name,
			       (unsigned long long)__atomic_load_n(&self->loop.cycles, __ATOMIC_RELAXED),
			       __atomic_load_n(&self->loop.err, __ATOMIC_ACQUIRE));
		got = ptr_step(&self->ch, &seed, &dst, &from);

		ASSERT_EQ((ssize_t)dst.iov_len, got)
			TH_LOG("%s, step %d: %s", name, i, got < 0 ? strerror((int)-got) : "short");
		ASSERT_EQ(0, memcmp(dst.iov_base, from, dst.iov_len)) TH_LOG("step %d", i);
		/* Now the holder alone keeps the targets. */
		for (j = 0; j < (int)(dst.iov_len / 8); j++) {
			from[j] = (uintptr_t)target_new(&seed);
			ASSERT_NE(0, from[j]);
		}
		memset(self->ch.src, 0, 16);
		moved += dst.iov_len / 8;
		if (i % 1024 == 1023) {
			scrub_stack();
			ASSERT_EQ(0, check_targets(&n)) TH_LOG("%s, step %d", name, i);
			STATS(s1);
			ASSERT_EQ(0, s1.checkmark_errors) TH_LOG("%s, step %d", name, i);
		}
	}
	ASSERT_EQ(0, looper_stop(&self->loop));
	scrub_stack();
	ASSERT_EQ(0, gcheap_collect());
	ASSERT_EQ(0, gcheap_collect());
	STATS(s1);
	EXPECT_EQ(0, s1.checkmark_errors);
	EXPECT_EQ(0, s1.stop_aborts);
	ASSERT_EQ(0, check_targets(&n));
	/* The holders kept many of the moved pointers; the rest were
	 * overwritten, and their targets collected.
	 */
	EXPECT_LT(NHOLD, n);
	EXPECT_LT(0, s1.freed_bytes - s0.freed_bytes);
	EXPECT_LE(s0.gc_cycles + PTR_CYCLES, s1.gc_cycles);
	EXPECT_EQ((1l << (BALLAST_DEPTH - 1)) - 1, ballast_check(g_ballast));
	TH_LOG("%s: %zu pointers moved, %zu held at the end, %llu collections, %llu barrier faults, %.1f s",
	       name, moved, n, (unsigned long long)(s1.gc_cycles - s0.gc_cycles),
	       (unsigned long long)(s1.barrier_faults - s0.barrier_faults), (now_ns() - t0) / 1e9);
}

/* ======================================================================
 * 2. The final pause does not grow with the heap
 * ====================================================================== */

/*
 * Each live heap: large noscan objects of FP_LARGE bytes, and for each,
 * FP_NODES small scanned nodes in one list, all pointing to it.  Marking
 * walks the list (64 Ki nodes at 4 GiB) and marks the large objects
 * without reading them.
 */
#define FP_LARGE	(1 * MiB)
#define FP_NODES	16
#define FP_CYCLES	3
#define FP_NSIZES	4
#define HOT_PAGES	64
/*
 * The bound on the pages a final pause rescans.  A final pause rescans
 * the pages written since the collector's last concurrent re-mark round.
 * The collector runs further rounds while many pages were written since
 * the previous one (up to a few rounds), and while it marks, a thread
 * that writes when pause_pages pages (module parameter, 2048 by default;
 * 32 in the closing rounds) are waiting to be rescanned waits for the
 * next round.  So the count
 * depends on what the program writes while the collector marks, never on
 * how much there is to mark.  Here the program writes HOT_PAGES pages
 * during marking and nothing else: the main thread waits in
 * gcheap_collect(), the hot thread writes only its pages, and libgcheap
 * writes no heap page then.  So a pause rescans at most HOT_PAGES pages
 * and the few a round carries over (a page whose write fault was in
 * flight when it was protected again); PAUSE_SLACK covers those.  The
 * bound is the same at every size: the heap's size is not in it.
 */
#define PAUSE_SLACK	32
#define PAUSE_BOUND	(HOT_PAGES + PAUSE_SLACK)

struct fp_node {
	struct fp_node *next;
	uint64_t *large;
	uint64_t w[6];
};

static struct fp_node *g_fp;

/* Grow the live heap under g_fp by @bytes of large objects. */
static noinline int fp_grow(uint64_t bytes)
{
	size_t n = bytes / FP_LARGE, i, j, k;

	for (i = 0; i < n; i++) {
		uint64_t *l = gcheap_alloc_atomic(FP_LARGE);

		if (!l)
			return -ENOMEM;
		l[0] = canary(l, 0, 3);
		l[FP_LARGE / 16] = canary(l, 1, 3);
		l[FP_LARGE / 8 - 1] = canary(l, 2, 3);
		for (j = 0; j < FP_NODES; j++) {
			struct fp_node *nd = gcheap_alloc(sizeof(*nd));

			if (!nd)
				return -ENOMEM;
			nd->next = g_fp;
			nd->large = l;
			for (k = 0; k < 6; k++)
				nd->w[k] = canary(nd, k, 3);
			g_fp = nd;
		}
	}
	return 0;
}

/* The whole nodes, or -1 - the index of the first bad one. */
static noinline long fp_check(void)
{
	const uint64_t *last = NULL;
	const struct fp_node *nd;
	long i = 0;
	int k;

	for (nd = g_fp; nd; nd = nd->next, i++) {
		if (gcheap_base(nd) != nd)
			return -1 - i;
		for (k = 0; k < 6; k++)
			if (nd->w[k] != canary(nd, k, 3))
				return -1 - i;
		if (nd->large == last)
			continue;
		last = nd->large;
		if (gcheap_base(last) != last || gcheap_size(last) < FP_LARGE ||
		    last[0] != canary(last, 0, 3) || last[FP_LARGE / 16] != canary(last, 1, 3) ||
		    last[FP_LARGE / 8 - 1] != canary(last, 2, 3))
			return -1 - i;
	}
	return i;
}

/*
 * The thread that keeps writing HOT_PAGES heap pages while the collector
 * runs: real pointers, to a few small objects of its own.  It idles while
 * the heap grows, when it would only take one of the guest's two CPUs.
 */
#define HOT_NODES	8

struct hot {
	uint64_t *pages;	/* HOT_PAGES whole pages of a scanned object */
	uint64_t *nodes[HOT_NODES];
	int active;		/* write; else idle */
	int stop;
	uint64_t passes;
};

static void *hot_fn(void *arg)
{
	struct hot *h = arg;
	uint64_t pass = 0;
	size_t p;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		uint64_t v = (uintptr_t)h->nodes[pass % HOT_NODES];

		if (!__atomic_load_n(&h->active, __ATOMIC_ACQUIRE)) {
			usleep(1000);
			continue;
		}
		for (p = 0; p < HOT_PAGES; p++)
			__atomic_store_n(&h->pages[p * (PAGE / 8) + pass % (PAGE / 8)], v,
					 __ATOMIC_RELAXED);
		__atomic_store_n(&h->passes, ++pass, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The 4 GiB step needs about 4.1 GiB of the guest's memory (tools/vmrun
 * gives 6 GiB, and 8 GiB to the debug kernel, whose KASAN shadow takes an
 * eighth of it).  A reason to skip that step, or NULL.
 */
static const char *skip_4g(void)
{
	static char why[160];
	long avail_kib = -1;
	char line[256];
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &avail_kib) == 1)
			break;
	fclose(f);
	if (avail_kib >= 0 && (unsigned long)avail_kib < (4 * GiB + 512 * MiB) / KiB) {
		snprintf(why, sizeof(why), "a 4 GiB heap needs 4.5 GiB available, %ld MiB are",
			 avail_kib / 1024);
		return why;
	}
	return NULL;
}

FIXTURE(pause) {
	struct hot hot;
	pthread_t hot_thread;
	bool hot_running;
};

FIXTURE_SETUP(pause)
{
}

FIXTURE_TEARDOWN(pause)
{
	if (self->hot_running) {
		__atomic_store_n(&self->hot.stop, 1, __ATOMIC_RELEASE);
		pthread_join(self->hot_thread, NULL);
	}
}

TEST_F_TIMEOUT(pause, flat_pause, 300)
{
	static const uint64_t sizes[FP_NSIZES] = { 64 * MiB, 256 * MiB, 1 * GiB, 4 * GiB };
	uint64_t pp[FP_NSIZES] = { 0 }, faults[FP_NSIZES] = { 0 };
	long pause_pages = param_read("pause_pages");
	const char *skip = skip_4g();
	struct gcheap_stats s0, st;
	uint64_t t0, t1, passes, live = 0;
	int i, c, nsizes = skip ? FP_NSIZES - 1 : FP_NSIZES;
	long nodes;
	void *hot;

	NEED_MODULE();
	ASSERT_EQ(0, heap_init(4 * GiB + 512 * MiB, 0));
	hot = gcheap_alloc((HOT_PAGES + 1) * PAGE);
	ASSERT_NE(NULL, hot);
	self->hot.pages = (uint64_t *)(((uintptr_t)hot + PAGE - 1) & ~(PAGE - 1));
	for (i = 0; i < HOT_NODES; i++) {
		self->hot.nodes[i] = gcheap_alloc(64);
		ASSERT_NE(NULL, self->hot.nodes[i]);
	}
	ASSERT_EQ(0, pthread_create(&self->hot_thread, NULL, hot_fn, &self->hot));
	self->hot_running = true;

	for (i = 0; i < nsizes; i++) {
		/*
		 * The heap grows from one size to the next: the peak is the
		 * same as with a heap built afresh for each, and neither the
		 * smaller heaps' objects nor their sweeping are paid for twice.
		 */
		t0 = now_ns();
		ASSERT_EQ(0, fp_grow(sizes[i] - live)) TH_LOG("%llu MiB", (unsigned long long)(sizes[i] >> 20));
		live = sizes[i];
		t1 = now_ns();
		STATS(s0);
		passes = __atomic_load_n(&self->hot.passes, __ATOMIC_ACQUIRE);
		__atomic_store_n(&self->hot.active, 1, __ATOMIC_RELEASE);
		for (c = 0; c < FP_CYCLES; c++) {
			ASSERT_EQ(0, gcheap_collect());
			STATS(st);
			if (st.pause_pages_last > pp[i])
				pp[i] = st.pause_pages_last;
			EXPECT_LE(sizes[i], st.marked_bytes)
				TH_LOG("%llu MiB, collection %d", (unsigned long long)(sizes[i] >> 20), c);
			TH_LOG("%5llu MiB live: pause rescanned %4llu pages, %6.2f ms",
			       (unsigned long long)(sizes[i] >> 20),
			       (unsigned long long)st.pause_pages_last, st.last_pause_ns / 1e6);
		}
		__atomic_store_n(&self->hot.active, 0, __ATOMIC_RELEASE);
		faults[i] = st.barrier_faults - s0.barrier_faults;
		EXPECT_EQ(0, st.stop_aborts);
		EXPECT_EQ(0, st.checkmark_errors);
		/* The writer ran while the collector marked. */
		EXPECT_LT(passes, __atomic_load_n(&self->hot.passes, __ATOMIC_ACQUIRE));
		nodes = fp_check();
		EXPECT_EQ((long)(sizes[i] / FP_LARGE * FP_NODES), nodes)
			TH_LOG("%llu MiB", (unsigned long long)(sizes[i] >> 20));
		TH_LOG("%5llu MiB live: at most %llu pages in the final pause, %llu barrier faults; grown in %.1f s, collected in %.1f s",
		       (unsigned long long)(sizes[i] >> 20), (unsigned long long)pp[i],
		       (unsigned long long)faults[i], (t1 - t0) / 1e9, (now_ns() - t1) / 1e9);
	}
	STATS(st);
	TH_LOG("pause_pages_max %llu, pause_pages parameter %ld",
	       (unsigned long long)st.pause_pages_max, pause_pages);

	for (i = 0; i < nsizes; i++) {
		/* The same bound at every size. */
		EXPECT_GE(PAUSE_BOUND, pp[i]) TH_LOG("%llu MiB", (unsigned long long)(sizes[i] >> 20));
		if (pause_pages > 0) {
			EXPECT_GE((uint64_t)pause_pages, pp[i]);
		}
		/*
		 * The collections re-protected the hot pages and the writer
		 * wrote them again: at least one fault per hot page.
		 */
		EXPECT_LE(HOT_PAGES, faults[i]) TH_LOG("%llu MiB", (unsigned long long)(sizes[i] >> 20));
	}
	/*
	 * The largest heap's pause rescans no more than the smallest's --
	 * or than the hot pages, which a short marking at 64 MiB may not
	 * have given the writer time to write them all.
	 */
	EXPECT_GE((pp[0] > HOT_PAGES ? pp[0] : HOT_PAGES) + PAUSE_SLACK, pp[nsizes - 1]);
	/*
	 * The pauses did rescan what the writer wrote during marking: at
	 * the largest size, marking is long enough for it to write some.
	 */
	EXPECT_LE(1, pp[nsizes - 1]);
	EXPECT_LE(pp[nsizes - 1], st.pause_pages_max);
	/* Only a passing run may report the skipped step as a skip. */
	if (skip && _metadata->passed)
		SKIP(return, "64 MiB to 1 GiB passed; the 4 GiB step was skipped: %s", skip);
	if (skip)
		TH_LOG("the 4 GiB step was skipped: %s", skip);
}

/*
 * The closing rounds.  Threads that allocate page-sized objects as fast
 * as they can write a new page with every allocation, and while the
 * collector marks, every one of those pages is one to rescan -- about as
 * fast as the marker rescans them.  The final pause must still rescan
 * only about GCHEAP_FINAL_PAGES (8) pages plus one per thread: in the
 * closing rounds a thread that writes more new pages waits for the next
 * round.  (If the threads could keep pause_pages pages waiting, as many
 * would be left for the pause.)  The live heap is big enough, and the
 * threads fast enough, that they fill pause_pages while it is marked; the
 * test checks that they did.  Every object they keep is checked.
 */
#define AT_THREADS	4
#define AT_RING		2048
#define AT_SIZE		4096
#define AT_FINAL	8
#define AT_CYCLES	8

struct at_worker {
	int *stop;
	uint64_t allocs;
	long bad;
};

static void *at_fn(void *arg)
{
	struct at_worker *w = arg;
	uint64_t **ring = gcheap_alloc(AT_RING * sizeof(*ring));
	uint64_t i = 0, k;

	if (!ring) {
		w->bad = -1;
		return NULL;
	}
	while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		uint64_t *o = ring[i % AT_RING];

		if (o && (o[0] != canary(o, 0, 5) || o[AT_SIZE / 8 - 1] != canary(o, 1, 5))) {
			w->bad = 1 + (long)(i % AT_RING);
			break;
		}
		o = gcheap_alloc(AT_SIZE);
		if (!o) {
			w->bad = -2;
			break;
		}
		o[0] = canary(o, 0, 5);
		o[AT_SIZE / 8 - 1] = canary(o, 1, 5);
		ring[i % AT_RING] = o;
		__atomic_store_n(&w->allocs, ++i, __ATOMIC_RELEASE);
	}
	for (k = 0; !w->bad && k < AT_RING && k < i; k++) {
		const uint64_t *o = ring[k];

		if (gcheap_base(o) != o || o[0] != canary(o, 0, 5) ||
		    o[AT_SIZE / 8 - 1] != canary(o, 1, 5))
			w->bad = 1 + (long)k;
	}
	return NULL;
}

TEST_F_TIMEOUT(pause, allocating_threads, 300)
{
	struct at_worker w[AT_THREADS];
	pthread_t t[AT_THREADS];
	long pause_pages = param_read("pause_pages");
	uint64_t worst = 0, before, during = 0, a0, a1;
	struct gcheap_stats st;
	int i, c, stop = 0;

	NEED_MODULE();
	ASSERT_EQ(0, heap_init(1 * GiB, 0));
	/* Marking 256 MiB of nodes and large objects takes a while. */
	ASSERT_EQ(0, fp_grow(256 * MiB));
	for (i = 0; i < AT_THREADS; i++) {
		w[i] = (struct at_worker){ .stop = &stop };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, at_fn, &w[i]));
	}
	for (c = 0; c < AT_CYCLES; c++) {
		STATS(st);
		before = st.barrier_faults;
		a0 = 0;
		for (i = 0; i < AT_THREADS; i++)
			a0 += __atomic_load_n(&w[i].allocs, __ATOMIC_ACQUIRE);
		ASSERT_EQ(0, gcheap_collect());
		STATS(st);
		a1 = 0;
		for (i = 0; i < AT_THREADS; i++)
			a1 += __atomic_load_n(&w[i].allocs, __ATOMIC_ACQUIRE);
		if (st.pause_pages_last > worst)
			worst = st.pause_pages_last;
		if (st.barrier_faults - before > during)
			during = st.barrier_faults - before;
		TH_LOG("collection %d: %llu allocations and %llu barrier faults meanwhile, final pause rescanned %llu pages in %.2f ms",
		       c, (unsigned long long)(a1 - a0),
		       (unsigned long long)(st.barrier_faults - before),
		       (unsigned long long)st.pause_pages_last, st.last_pause_ns / 1e6);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < AT_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, w[i].bad) TH_LOG("thread %d", i);
	}
	EXPECT_EQ((long)(256 * MiB / FP_LARGE * FP_NODES), fp_check());
	EXPECT_EQ(0, st.stop_aborts);
	EXPECT_EQ(0, st.checkmark_errors);
	/* The threads did outrun the marker: some collection saw them
	 * write more pages than a final pause may rescan.
	 */
	EXPECT_LT((uint64_t)(pause_pages > 0 ? pause_pages : AT_FINAL), during);
	/* 8 pages, one per thread (the main thread too), the slack. */
	EXPECT_GE((uint64_t)(AT_FINAL + AT_THREADS + 1 + PAUSE_SLACK), worst);
}

TEST_HARNESS_MAIN
