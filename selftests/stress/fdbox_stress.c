// SPDX-License-Identifier: GPL-2.0
/*
 * FDBox's stress fuzzer: many processes of two uids, several threads each,
 * run random sequences of every ioctl against /dev/fdbox and box fds, and in
 * between do to memfds what a VMM does (write, mmap and touch, fallocate,
 * truncate, punch, dup, close, fork, pidfd_getfd, exit mid-sequence).
 *
 * Every thread keeps a model of its boxes, and every errno is checked against
 * the one the model predicts (the documented table of linux/fdbox.h), every
 * BOX_INFO and LIST_BOXES against the model. The model lives in shared
 * memory, so that the supervisor knows what a worker that exited left sealed
 * and keeps it as a survivor (cancelling the oldest, as root, to stay within
 * the limits).
 *
 * At the deadline every thread seals a random part of its boxes, and the
 * workers exit. The expected hand-over (boxes, owners, entries, data
 * versions) is written to a memfd, boxed as root's "fz-model" and sealed.
 * After the kexec, the next stage checks that exactly those boxes and entries
 * come back, with their data. With more stages (make stress), each one then
 * fuzzes again.
 *
 * "-s N" is the stage. fdbox.stress_seconds=, fdbox.stress_seed= and
 * fdbox.stages= on the kernel command line set the run; a failure prints
 * the seed, to replay it (the scheduling is not replayed).
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdbox_util.h"

#define UIDS 2
#define WORKERS_PER_UID 2
#define THREADS 3
#define BOXES 4			/* box names per thread */
#define FILES 6			/* memfds per thread */
#define BOX_FDS 4		/* fds one box may have at once */
#define MAX_GENS 4096		/* workers over a whole stage */
#define MAX_SURVIVORS 16	/* sealed boxes kept from exited workers */
#define MAX_EXPECTED 512
#define PAGE 4096
#define MODEL_BOX "fz-model"
/*
 * Memfds sit at fixed fd numbers, above any box fd, so that pidfd_getfd of
 * a peer's memfd never takes a box fd by mistake (which would delay that
 * box's discard and fool its thread's model).
 */
#define FILE_FD(thread, k) (1000 + (thread) * FILES + (k))

static const uid_t uids[UIDS] = { 1001, 1002 };

enum box_state { B_NONE, B_OPEN, B_SEALED, B_INCOMING };
enum op {
	OP_CREATE, OP_OPEN, OP_ADD, OP_ADD_BAD, OP_REMOVE, OP_SEAL, OP_CANCEL,
	OP_RETRIEVE, OP_DISCARD, OP_INFO, OP_LIST, OP_CLOSE, OP_DUP_BOX,
	OP_PEEK, OP_WRITE, OP_MMAP, OP_FALLOCATE, OP_TRUNCATE, OP_PUNCH,
	OP_DUP_FILE, OP_CLOSE_FILE, OP_FORK, OP_GETFD, OP_EXIT, OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
	"CREATE", "OPEN", "ADD", "ADD(bad fd)", "REMOVE", "SEAL", "CANCEL",
	"RETRIEVE", "DISCARD", "INFO", "LIST", "close box", "dup box",
	"INFO(sibling)", "write", "mmap+touch", "fallocate", "truncate",
	"punch", "dup file", "close file", "fork", "pidfd_getfd", "exit",
};
static const char *const state_names[] = { "none", "open", "sealed", "incoming" };

struct mfile {
	int fd;			/* FILE_FD(), or -1: closed (an entry may hold it) */
	int slot_fd;		/* FILE_FD() of this slot */
	uint32_t id;		/* unique in the stage: names the data */
	uint32_t pages;
	uint32_t version;	/* the data written last */
	uint32_t pending;	/* a write in flight: either may be found */
	int box;		/* the box whose entry it is, or -1 */
	char entry[16];
};

struct mbox {
	char name[48];
	int state;
	int fds[BOX_FDS];	/* -1 for a free slot */
	int n;
	int files[FILES];	/* entries, by file index, in order added */
};

struct tmodel {
	struct mbox boxes[BOXES];
	struct mfile files[FILES];
};

struct worker {
	pid_t pid;
	uid_t uid;
	int gen;
	struct tmodel t[THREADS];
};

struct expected {
	uid_t owner;
	char name[48];
	int n;
	struct {
		char entry[16];
		uint32_t id, pages, version, pending;
	} e[FILES];
};

struct shared {
	atomic_int stop;
	atomic_int failed;
	char failure[512];
	uint64_t seed;
	atomic_ullong ops;
	atomic_ullong counts[OP_COUNT][4];
	atomic_ullong errnos[OP_COUNT];
	struct worker w[MAX_GENS];
	int n_survivors;
	struct expected survivors[MAX_SURVIVORS + 64];
};

static struct shared *sh;
static int dev;
static int stage;

static void fail(const char *fmt, ...)
{
	va_list ap;
	int first = !atomic_exchange(&sh->failed, 1);

	va_start(ap, fmt);
	if (first) {
		vsnprintf(sh->failure, sizeof(sh->failure), fmt, ap);
	} else {
		fprintf(stderr, "# also: ");
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
	}
	va_end(ap);
	atomic_store(&sh->stop, 1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int pick(uint64_t *s, int n)
{
	return (int)(rnd(s) % (uint64_t)n);
}

/* The byte at @off of version @v of file @id. */
static unsigned char data_byte(uint32_t id, uint32_t v, size_t off)
{
	return (unsigned char)(id * 131 + v * 31 + off / PAGE * 7 + off % 251);
}

static void fill(unsigned char *p, uint32_t id, uint32_t v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = data_byte(id, v, i);
}

/* Whether @fd holds version @v of @id for @pages pages. */
static bool holds(int fd, uint32_t id, uint32_t v, uint32_t pages)
{
	size_t len = (size_t)pages * PAGE, i;
	unsigned char *buf = malloc(len);
	bool ok;

	if (!buf)
		return false;
	ok = pread(fd, buf, len, 0) == (ssize_t)len;
	for (i = 0; ok && i < len; i++)
		ok = buf[i] == data_byte(id, v, i);
	free(buf);
	return ok;
}

/* Moves @fd to @f's fixed number; -errno on failure. */
static int place(struct mfile *f, int fd)
{
	if (fd < 0)
		return -errno;
	if (dup3(fd, f->slot_fd, O_CLOEXEC) != f->slot_fd) {
		close(fd);
		return -errno;
	}
	close(fd);
	f->fd = f->slot_fd;
	return 0;
}

/* Writes version @v of @f in full; 0 or -errno. */
static int write_version(struct mfile *f, uint32_t v)
{
	size_t len = (size_t)f->pages * PAGE;
	unsigned char *buf = malloc(len);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	fill(buf, f->id, v, len);
	if (pwrite(f->fd, buf, len, 0) != (ssize_t)len)
		ret = -errno;
	free(buf);
	return ret;
}

static void count(int op, int state, int err)
{
	atomic_fetch_add(&sh->counts[op][state], 1);
	if (err)
		atomic_fetch_add(&sh->errnos[op], 1);
	atomic_fetch_add(&sh->ops, 1);
}

#define EXPECT_RET(op, st, got, want) do {					\
	int _g = (got), _w = (want);						\
	count(op, st, _g < 0);							\
	if (!(_g == _w || (_w == 0 && _g >= 0)))				\
		fail("%s on a box %s: expected %s, got %s (uid %u)",		\
		     op_names[op], state_names[st], fdbox_errname(_w),		\
		     _g >= 0 ? "success" : fdbox_errname(_g), getuid());	\
} while (0)

struct thread_ctx {
	struct worker *w;
	int index;
	uint64_t rng;
	pthread_rwlock_t *fork_lock;
};

static int any_fd(struct mbox *b)
{
	int i;

	for (i = 0; i < BOX_FDS; i++)
		if (b->fds[i] >= 0)
			return b->fds[i];
	return -1;
}

static int n_fds(struct mbox *b)
{
	int i, n = 0;

	for (i = 0; i < BOX_FDS; i++)
		n += b->fds[i] >= 0;
	return n;
}

static int free_fd_slot(struct mbox *b)
{
	int i;

	for (i = 0; i < BOX_FDS; i++)
		if (b->fds[i] < 0)
			return i;
	return -1;
}

/* The box's entries become plain files again: it went with its last fd. */
static void box_gone(struct tmodel *t, struct mbox *b)
{
	int i;

	for (i = 0; i < b->n; i++)
		t->files[b->files[i]].box = -1;
	b->n = 0;
	b->state = B_NONE;
}

/* Checks BOX_INFO of @b against the model. */
static void check_info(struct tmodel *t, struct mbox *b, int fd)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	int n, i;

	n = fdbox_box_info(fd, &info, &e);
	EXPECT_RET(OP_INFO, b->state, n, 0);
	if (n < 0)
		return;
	if (n != b->n || info.state != (b->state == B_SEALED ? FDBOX_BOX_SEALED :
					FDBOX_BOX_OPEN) ||
	    info.owner_uid != getuid() || strcmp(info.name, b->name))
		fail("INFO of %s: %d entries state %u, model %d entries state %d",
		     b->name, n, info.state, b->n, b->state);
	for (i = 0; i < n && i < b->n; i++)
		if (strcmp(e[i].name, t->files[b->files[i]].entry))
			fail("INFO of %s: entry %d is %s, model %s", b->name, i,
			     e[i].name, t->files[b->files[i]].entry);
	free(e);
}

/* Checks LIST_BOXES against every box of this thread. */
static void check_list(struct tmodel *t)
{
	struct fdbox_box_summary *all;
	int n, i, k;

	n = fdbox_list(dev, &all);
	count(OP_LIST, B_NONE, n < 0);
	if (n < 0) {
		fail("LIST_BOXES: %s", fdbox_errname(n));
		return;
	}
	for (k = 0; k < BOXES; k++) {
		struct mbox *b = &t->boxes[k];
		bool found = false;

		for (i = 0; i < n; i++) {
			if (all[i].direction != FDBOX_DIR_OUTGOING ||
			    all[i].owner_uid != getuid() ||
			    strcmp(all[i].name, b->name))
				continue;
			found = true;
			if (b->state == B_NONE ||
			    all[i].n_entries != (unsigned int)b->n ||
			    all[i].state != (b->state == B_SEALED ?
					     FDBOX_BOX_SEALED : FDBOX_BOX_OPEN))
				fail("LIST: %s state %u with %u entries, model %s with %d",
				     b->name, all[i].state, all[i].n_entries,
				     state_names[b->state], b->n);
		}
		if (!found && b->state != B_NONE)
			fail("LIST: %s missing, model %s", b->name,
			     state_names[b->state]);
	}
	free(all);
}

/* Closes fd slot @slot of box @b, and checks what its last close did. */
static void close_box_fd(struct tmodel *t, struct mbox *b, int slot)
{
	int fd = b->fds[slot];

	b->fds[slot] = -1;
	count(OP_CLOSE, b->state, 0);
	if (close(fd))
		fail("close of a box fd: %s", strerror(errno));
	if (n_fds(b) == 0 && b->state == B_OPEN)
		box_gone(t, b);
}

static void box_op(struct thread_ctx *c, struct tmodel *t, int op)
{
	struct mbox *b = &t->boxes[pick(&c->rng, BOXES)];
	int fd = any_fd(b), ret, i, want;
	struct mfile *f;

	switch (op) {
	case OP_CREATE: {
		int slot = free_fd_slot(b);

		if (slot < 0)
			return;
		ret = fdbox_create(dev, b->name);
		EXPECT_RET(op, b->state, ret, b->state == B_NONE ? 0 : -EEXIST);
		if (ret >= 0) {
			b->state = B_OPEN;
			b->fds[slot] = ret;
		}
		return;
	}
	case OP_OPEN: {
		int slot = free_fd_slot(b);

		if (slot < 0)
			return;
		ret = fdbox_open(dev, b->name, FDBOX_OPEN_OUTGOING);
		EXPECT_RET(op, b->state, ret, b->state == B_NONE ? -ENOENT : 0);
		if (ret >= 0)
			b->fds[slot] = ret;
		return;
	}
	case OP_DUP_BOX: {
		int slot = free_fd_slot(b);

		if (fd < 0 || slot < 0)
			return;
		b->fds[slot] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		count(op, b->state, b->fds[slot] < 0);
		return;
	}
	case OP_CLOSE:
		for (i = 0; i < BOX_FDS; i++)
			if (b->fds[i] >= 0) {
				pthread_rwlock_rdlock(c->fork_lock);
				close_box_fd(t, b, i);
				pthread_rwlock_unlock(c->fork_lock);
				return;
			}
		return;
	}
	if (fd < 0)
		return;
	switch (op) {
	case OP_ADD:
		f = &t->files[pick(&c->rng, FILES)];
		if (f->fd < 0)
			return;
		snprintf(f->entry, sizeof(f->entry), "e%u", f->id);
		ret = fdbox_add(fd, f->fd, f->entry);
		if (b->state == B_SEALED)
			want = -EBUSY;
		else if (f->box >= 0)
			want = -EEXIST;
		else
			want = 0;
		EXPECT_RET(op, b->state, ret, want);
		if (ret >= 0) {
			f->box = (int)(b - t->boxes);
			b->files[b->n++] = (int)(f - t->files);
		}
		return;
	case OP_ADD_BAD: {
		int bad = pick(&c->rng, 3), pipefd[2] = { -1, -1 }, what;

		if (bad == 0) {
			what = fd;	/* a box fd */
			want = b->state == B_SEALED ? -EBUSY : -EOPNOTSUPP;
		} else if (bad == 1) {
			if (pipe2(pipefd, O_CLOEXEC))
				return;
			what = pipefd[0];
			want = b->state == B_SEALED ? -EBUSY : -EOPNOTSUPP;
		} else {
			what = 1 << 20;	/* past any fd */
			want = -EBADF;
		}
		ret = fdbox_add(fd, what, "bad");
		EXPECT_RET(op, b->state, ret, want);
		if (pipefd[0] >= 0) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return;
	}
	case OP_REMOVE:
		if (b->n == 0 || pick(&c->rng, 4) == 0) {
			ret = fdbox_remove(fd, "nothing");
			EXPECT_RET(op, b->state, ret,
				   b->state == B_SEALED ? -EBUSY : -ENOENT);
			return;
		}
		i = pick(&c->rng, b->n);
		f = &t->files[b->files[i]];
		ret = fdbox_remove(fd, f->entry);
		EXPECT_RET(op, b->state, ret, b->state == B_SEALED ? -EBUSY : 0);
		if (ret >= 0) {
			f->box = -1;
			memmove(&b->files[i], &b->files[i + 1],
				(b->n - i - 1) * sizeof(b->files[0]));
			b->n--;
		}
		return;
	case OP_SEAL:
		ret = fdbox_seal(fd);
		EXPECT_RET(op, b->state, ret, b->state == B_SEALED ? -EBUSY : 0);
		if (ret >= 0)
			b->state = B_SEALED;
		return;
	case OP_CANCEL:
		ret = fdbox_cancel(fd);
		EXPECT_RET(op, b->state, ret, b->state == B_SEALED ? 0 : -EBUSY);
		if (ret >= 0)
			b->state = B_OPEN;
		return;
	case OP_RETRIEVE:
		ret = fdbox_retrieve(fd, "e0");
		EXPECT_RET(op, b->state, ret, -EBUSY);
		return;
	case OP_DISCARD:
		ret = fdbox_discard(fd, NULL);
		EXPECT_RET(op, b->state, ret, -EBUSY);
		return;
	case OP_INFO:
		check_info(t, b, fd);
		return;
	}
}

/*
 * INFO of a sibling thread's box through a fresh open: only the errno is
 * known. Under the fork lock, so that no sibling's last close is delayed
 * by this fd while it checks what that close did.
 */
static void peek_op(struct thread_ctx *c)
{
	int sibling = pick(&c->rng, THREADS), box, ret;
	struct mbox *b = &c->w->t[sibling].boxes[pick(&c->rng, BOXES)];
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;

	pthread_rwlock_wrlock(c->fork_lock);
	box = fdbox_open(dev, b->name, FDBOX_OPEN_OUTGOING);
	if (box >= 0) {
		ret = fdbox_box_info(box, &info, &e);
		if (ret >= 0)
			free(e);
		else if (ret != -EINTR)
			fail("INFO of a sibling's box: %s", fdbox_errname(ret));
		close(box);
	} else if (box != -ENOENT) {
		fail("OPEN of a sibling's box: %s", fdbox_errname(box));
	}
	count(OP_PEEK, B_NONE, box < 0);
	pthread_rwlock_unlock(c->fork_lock);
}

static int state_of(struct tmodel *t, struct mfile *f)
{
	return f->box < 0 ? B_NONE : t->boxes[f->box].state;
}

static void file_op(struct thread_ctx *c, struct tmodel *t, int op)
{
	struct mfile *f = &t->files[pick(&c->rng, FILES)];
	int st = state_of(t, f), ret;
	bool frozen = f->box >= 0;

	if (f->fd < 0) {
		/* Closed: reopen a new memfd in the slot once it is free. */
		if (f->box >= 0)
			return;
		if (place(f, memfd_create("fz", MFD_CLOEXEC))) {
			fail("memfd_create: %s", strerror(errno));
			return;
		}
		f->id += 1u << 20;
		f->pages = 1 + pick(&c->rng, 8);
		f->version = f->pending = 0;
		if (ftruncate(f->fd, (off_t)f->pages * PAGE) || write_version(f, 0))
			fail("filling a new memfd: %s", strerror(errno));
		return;
	}
	switch (op) {
	case OP_WRITE:
		f->pending = f->version + 1;
		ret = write_version(f, f->pending);
		EXPECT_RET(op, st, ret, 0);
		f->version = f->pending;
		return;
	case OP_MMAP: {
		size_t len = (size_t)f->pages * PAGE;
		unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_SHARED, f->fd, 0);

		count(op, st, p == MAP_FAILED);
		if (p == MAP_FAILED) {
			fail("mmap of a memfd: %s", strerror(errno));
			return;
		}
		f->pending = f->version + 1;
		fill(p, f->id, f->pending, len);
		f->version = f->pending;
		munmap(p, len);
		return;
	}
	case OP_FALLOCATE:
		ret = fallocate(f->fd, 0, 0, (off_t)(f->pages + 1) * PAGE) ? -errno : 0;
		EXPECT_RET(op, st, ret, frozen ? -EPERM : 0);
		if (!ret) {
			f->pages++;
			f->pending = f->version + 1;
			if (write_version(f, f->pending))
				fail("refill after fallocate: %s", strerror(errno));
			f->version = f->pending;
		}
		return;
	case OP_TRUNCATE: {
		uint32_t pages = 1 + pick(&c->rng, 8);

		if (pages == f->pages)
			return;
		ret = ftruncate(f->fd, (off_t)pages * PAGE) ? -errno : 0;
		EXPECT_RET(op, st, ret, frozen ? -EPERM : 0);
		if (!ret) {
			f->pages = pages;
			f->pending = f->version + 1;
			if (write_version(f, f->pending))
				fail("refill after truncate: %s", strerror(errno));
			f->version = f->pending;
		}
		return;
	}
	case OP_PUNCH:
		ret = fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				0, PAGE) ? -errno : 0;
		EXPECT_RET(op, st, ret, frozen ? -EPERM : 0);
		if (!ret) {
			f->pending = f->version + 1;
			if (write_version(f, f->pending))
				fail("refill after punch: %s", strerror(errno));
			f->version = f->pending;
		}
		return;
	case OP_DUP_FILE: {
		/* The same file, through another fd, back in its place. */
		int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);

		count(op, st, fd < 0);
		if (place(f, fd))
			fail("dup of a memfd: %s", strerror(errno));
		return;
	}
	case OP_CLOSE_FILE:
		/* A boxed file lives on in its entry. */
		count(op, st, 0);
		close(f->fd);
		f->fd = -1;
		return;
	}
}

/* A child checks a file and a box, then exits without a word. */
static void fork_op(struct thread_ctx *c, struct tmodel *t)
{
	struct mfile *f = &t->files[pick(&c->rng, FILES)];
	struct mbox *b = &t->boxes[pick(&c->rng, BOXES)];
	int status, box = any_fd(b);
	pid_t pid;

	pthread_rwlock_wrlock(c->fork_lock);
	pid = fork();
	if (pid == 0) {
		struct fdbox_entry_info *e;
		struct fdbox_box_info info;

		if (f->fd >= 0 && !holds(f->fd, f->id, f->version, f->pages))
			_exit(3);
		if (box >= 0 && fdbox_box_info(box, &info, &e) >= 0 &&
		    (int)info.n_entries != b->n)
			_exit(4);
		_exit(0);
	}
	count(OP_FORK, box >= 0 ? b->state : B_NONE, pid < 0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status))
		fail("a forked child saw the file or box differ from the model (%d)",
		     pid < 0 ? -1 : WEXITSTATUS(status));
	pthread_rwlock_unlock(c->fork_lock);
}

/* Takes a sibling worker's memfd through pidfd_getfd, and reads it. */
static void getfd_op(struct thread_ctx *c)
{
	struct worker *peer = NULL;
	int gen, pidfd, fd, i;

	for (gen = pick(&c->rng, MAX_GENS), i = 0; i < MAX_GENS; i++, gen = (gen + 1) % MAX_GENS)
		if (sh->w[gen].pid > 0 && sh->w[gen].uid == c->w->uid &&
		    sh->w[gen].pid != getpid()) {
			peer = &sh->w[gen];
			break;
		}
	if (!peer)
		return;
	pidfd = syscall(SYS_pidfd_open, peer->pid, 0);
	if (pidfd < 0)
		return;
	fd = syscall(SYS_pidfd_getfd, pidfd, FILE_FD(0, 0), 0);
	count(OP_GETFD, B_NONE, fd < 0);
	if (fd >= 0) {
		char byte;

		if (pread(fd, &byte, 1, 0) < 0)
			fail("reading a memfd taken with pidfd_getfd: %s",
			     strerror(errno));
		close(fd);
	}
	close(pidfd);
}

static const int weights[OP_COUNT] = {
	[OP_CREATE] = 10, [OP_OPEN] = 6, [OP_ADD] = 14, [OP_ADD_BAD] = 3,
	[OP_REMOVE] = 6, [OP_SEAL] = 8, [OP_CANCEL] = 6, [OP_RETRIEVE] = 1,
	[OP_DISCARD] = 1, [OP_INFO] = 6, [OP_LIST] = 3, [OP_CLOSE] = 8,
	[OP_DUP_BOX] = 2, [OP_PEEK] = 3, [OP_WRITE] = 6, [OP_MMAP] = 3,
	[OP_FALLOCATE] = 2, [OP_TRUNCATE] = 2, [OP_PUNCH] = 2,
	[OP_DUP_FILE] = 2, [OP_CLOSE_FILE] = 2, [OP_FORK] = 1, [OP_GETFD] = 1,
	[OP_EXIT] = 0,
};

static int next_op(uint64_t *rng)
{
	int total = 0, i, r;

	/* Exit mid-sequence: about once per 800 operations of a thread. */
	if (pick(rng, 800) == 0)
		return OP_EXIT;
	for (i = 0; i < OP_COUNT; i++)
		total += weights[i];
	r = pick(rng, total);
	for (i = 0; i < OP_COUNT; i++) {
		if (r < weights[i])
			return i;
		r -= weights[i];
	}
	return OP_INFO;
}

static void *thread_main(void *arg)
{
	struct thread_ctx *c = arg;
	struct tmodel *t = &c->w->t[c->index];
	int op, k;

	while (!atomic_load(&sh->stop)) {
		op = next_op(&c->rng);
		switch (op) {
		case OP_CREATE: case OP_OPEN: case OP_ADD: case OP_ADD_BAD:
		case OP_REMOVE: case OP_SEAL: case OP_CANCEL: case OP_RETRIEVE:
		case OP_DISCARD: case OP_INFO: case OP_CLOSE: case OP_DUP_BOX:
			box_op(c, t, op);
			break;
		case OP_LIST:
			check_list(t);
			break;
		case OP_PEEK:
			peek_op(c);
			break;
		case OP_FORK:
			fork_op(c, t);
			break;
		case OP_GETFD:
			getfd_op(c);
			break;
		case OP_EXIT:
			count(op, B_NONE, 0);
			_exit(0);
		default:
			file_op(c, t, op);
		}
	}
	/* The final state: a random part of the open boxes sealed. */
	for (k = 0; k < BOXES; k++) {
		struct mbox *b = &t->boxes[k];
		int fd = any_fd(b);

		if (b->state == B_OPEN && fd >= 0 && pick(&c->rng, 2) &&
		    fdbox_seal(fd) >= 0)
			b->state = B_SEALED;
	}
	return NULL;
}

static void worker_main(struct worker *w)
{
	pthread_t threads[THREADS];
	struct thread_ctx ctx[THREADS];
	pthread_rwlock_t fork_lock;
	int i, k;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fdbox_become(w->uid))
		_exit(90);
	/* Let siblings of the same uid take memfds (pidfd_getfd). */
	prctl(PR_SET_DUMPABLE, 1);
	pthread_rwlock_init(&fork_lock, NULL);
	for (i = 0; i < THREADS; i++) {
		struct tmodel *t = &w->t[i];

		for (k = 0; k < BOXES; k++) {
			snprintf(t->boxes[k].name, sizeof(t->boxes[k].name),
				 "fz-s%d-g%d-t%d-b%d", stage, w->gen, i, k);
			memset(t->boxes[k].fds, -1, sizeof(t->boxes[k].fds));
		}
		for (k = 0; k < FILES; k++) {
			struct mfile *f = &t->files[k];

			f->id = ((uint32_t)w->gen * THREADS + i) * FILES + k;
			f->box = -1;
			f->pages = 1 + k;
			f->slot_fd = FILE_FD(i, k);
			if (place(f, memfd_create("fz", MFD_CLOEXEC)) ||
			    ftruncate(f->fd, (off_t)f->pages * PAGE) ||
			    write_version(f, 0))
				_exit(91);
		}
		ctx[i] = (struct thread_ctx){
			.w = w, .index = i, .fork_lock = &fork_lock,
			.rng = sh->seed * 0x9e3779b97f4a7c15ull +
			       (uint64_t)(w->gen * THREADS + i + 1) * 0x100000001b3ull,
		};
		rnd(&ctx[i].rng);
	}
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&threads[i], NULL, thread_main, &ctx[i]))
			_exit(92);
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	_exit(0);
}

static int spawn(int gen, uid_t uid)
{
	struct worker *w = &sh->w[gen];
	pid_t pid;

	memset(w, 0, sizeof(*w));
	w->uid = uid;
	w->gen = gen;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		worker_main(w);
	w->pid = pid;
	return 0;
}

/* Finds @owner's outgoing box @name in @all. */
static struct fdbox_box_summary *find(struct fdbox_box_summary *all, int n,
				      uid_t owner, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (all[i].direction == FDBOX_DIR_OUTGOING &&
		    all[i].owner_uid == owner && !strcmp(all[i].name, name))
			return &all[i];
	return NULL;
}

/* Cancels the oldest survivor, as root: it goes with its box fd. */
static void drop_oldest_survivor(void)
{
	struct expected *s = &sh->survivors[0];
	struct fdbox_box_summary sum;
	int box, ret;

	box = fdbox_open_as(dev, s->name, FDBOX_OPEN_OUTGOING, s->owner);
	ret = box < 0 ? box : fdbox_cancel(box);
	if (ret < 0)
		fail("root's CANCEL of %u's %s: %s", s->owner, s->name,
		     fdbox_errname(ret));
	if (box >= 0)
		close(box);
	if (fdbox_find_box(dev, s->name, FDBOX_DIR_OUTGOING, &sum) == 0)
		fail("%s stayed after its cancel and close", s->name);
	memmove(&sh->survivors[0], &sh->survivors[1],
		(sh->n_survivors - 1) * sizeof(sh->survivors[0]));
	sh->n_survivors--;
}

/*
 * After worker @w exited: its open boxes must be gone, its sealed ones stay
 * (survivors), as LIST_BOXES shows.
 */
static void resolve(struct worker *w)
{
	struct fdbox_box_summary *all, *s;
	int i, k, j, n, tries;

	for (tries = 0;; tries++) {
		bool open_left = false;

		n = fdbox_list(dev, &all);
		if (n < 0) {
			fail("LIST_BOXES: %s", fdbox_errname(n));
			return;
		}
		for (i = 0; i < THREADS; i++)
			for (k = 0; k < BOXES; k++) {
				s = find(all, n, w->uid, w->t[i].boxes[k].name);
				open_left |= s && s->state == FDBOX_BOX_OPEN;
			}
		/* A forked child may hold fds a moment longer than its parent. */
		if (!open_left || tries == 500)
			break;
		free(all);
		usleep(10000);
	}
	for (i = 0; i < THREADS; i++)
		for (k = 0; k < BOXES; k++) {
			struct tmodel *t = &w->t[i];
			struct mbox *b = &t->boxes[k];
			struct expected *e;

			s = find(all, n, w->uid, b->name);
			if (!s)
				continue;
			if (s->state != FDBOX_BOX_SEALED) {
				fail("%s is %u after its worker exited", b->name,
				     s->state);
				continue;
			}
			if ((int)s->n_entries != b->n) {
				fail("%s has %u entries, model %d", b->name,
				     s->n_entries, b->n);
				continue;
			}
			if (sh->n_survivors >= MAX_SURVIVORS)
				drop_oldest_survivor();
			e = &sh->survivors[sh->n_survivors++];
			memset(e, 0, sizeof(*e));
			e->owner = w->uid;
			strcpy(e->name, b->name);
			e->n = b->n;
			for (j = 0; j < b->n; j++) {
				struct mfile *f = &t->files[b->files[j]];

				strcpy(e->e[j].entry, f->entry);
				e->e[j].id = f->id;
				e->e[j].pages = f->pages;
				e->e[j].version = f->version;
				e->e[j].pending = f->pending;
			}
		}
	free(all);
}

/* Writes the expected hand-over into a memfd, and seals it as "fz-model". */
static int seal_model(void)
{
	int fd, box, i, j, ret;
	FILE *out;

	fd = memfd_create("fz-model", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	out = fdopen(dup(fd), "w");
	if (!out)
		return -errno;
	fprintf(out, "seed %llu\n", (unsigned long long)sh->seed);
	for (i = 0; i < sh->n_survivors; i++) {
		struct expected *e = &sh->survivors[i];

		fprintf(out, "box %u %s %d\n", e->owner, e->name, e->n);
		for (j = 0; j < e->n; j++)
			fprintf(out, "entry %s %u %u %u %u\n", e->e[j].entry,
				e->e[j].id, e->e[j].pages, e->e[j].version,
				e->e[j].pending);
	}
	if (fclose(out))
		return -EIO;
	box = fdbox_create(dev, MODEL_BOX);
	if (box < 0)
		return box;
	ret = fdbox_add(box, fd, "model");
	if (!ret)
		ret = fdbox_seal(box);
	close(box);
	close(fd);
	return ret;
}

static void print_table(void);

static void print_report(double seconds, int gens, int deaths)
{
	unsigned long long total = atomic_load(&sh->ops);

	printf("# stress: %llu operations in %.0f s: %.0f ops/s; %d workers, %d exited mid-sequence; %d boxes sealed for the kexec\n",
	       total, seconds, total / seconds, gens, deaths, sh->n_survivors);
	print_table();
}

/* How often each (operation, box state) pair was reached, and failed. */
static void print_table(void)
{
	int op, st;

	printf("# %-16s %10s %10s %10s %10s %10s\n", "operation", "no box",
	       "open", "sealed", "incoming", "errno");
	for (op = 0; op < OP_COUNT; op++) {
		printf("# %-16s", op_names[op]);
		for (st = 0; st < 4; st++)
			printf(" %10llu", atomic_load(&sh->counts[op][st]));
		printf(" %10llu\n", atomic_load(&sh->errnos[op]));
	}
}

/* Stage 1 of a pair (and every stage but the last of a longer run). */
static int fuzz(unsigned int seconds)
{
	int gens = 0, deaths = 0, live = 0, i, u, status, ret;
	double start = fdbox_now(), deadline = start + seconds;
	double last_report = start;
	pid_t pid;

	for (u = 0; u < UIDS; u++)
		for (i = 0; i < WORKERS_PER_UID; i++, live++)
			if (spawn(gens++, uids[u]))
				return -1;
	while (live > 0) {
		if (fdbox_now() >= deadline)
			atomic_store(&sh->stop, 1);
		if (fdbox_now() - last_report >= 10) {
			/* The VM runner's silence watchdog wants a line now and then. */
			printf("# stress: %llu operations so far\n",
			       (unsigned long long)atomic_load(&sh->ops));
			fflush(stdout);
			last_report = fdbox_now();
		}
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0) {
			/* Root reads what everyone reads, meanwhile. */
			struct fdbox_box_summary *all;

			if (fdbox_list(dev, &all) >= 0)
				free(all);
			usleep(20000);
			continue;
		}
		if (pid < 0)
			break;
		for (i = 0; i < gens; i++)
			if (sh->w[i].pid == pid)
				break;
		if (i == gens)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail("worker %d died: status %#x", i, status);
		sh->w[i].pid = 0;
		resolve(&sh->w[i]);
		live--;
		if (!atomic_load(&sh->stop)) {
			deaths++;
			if (gens >= MAX_GENS || spawn(gens, sh->w[i].uid))
				return -1;
			gens++;
			live++;
		}
	}
	print_report(fdbox_now() - start, gens, deaths);
	ret = seal_model();
	if (ret < 0)
		fail("sealing the model: %s", fdbox_errname(ret));
	return 0;
}

/* Reads a whole incoming entry into a string. */
static char *slurp(int fd)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	while (buf && (n = pread(fd, buf + len, cap - 1 - len, len)) > 0) {
		len += n;
		if (len + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

/* What an incoming box refuses, each with its documented errno. */
static void incoming_refusals(int box)
{
	int file = memfd_create("fz-in", MFD_CLOEXEC);

	EXPECT_RET(OP_ADD, B_INCOMING, fdbox_add(box, file, "new"), -EBUSY);
	EXPECT_RET(OP_REMOVE, B_INCOMING, fdbox_remove(box, "any"), -EBUSY);
	EXPECT_RET(OP_SEAL, B_INCOMING, fdbox_seal(box), -EBUSY);
	EXPECT_RET(OP_CANCEL, B_INCOMING, fdbox_cancel(box), -EBUSY);
	EXPECT_RET(OP_RETRIEVE, B_INCOMING, fdbox_retrieve(box, "nonesuch"),
		   -ENOENT);
	EXPECT_RET(OP_DISCARD, B_INCOMING, fdbox_discard(box, "nonesuch"),
		   -ENOENT);
	close(file);
}

/* After the kexec: exactly the model's sealed boxes and entries, with data. */
static void verify(void)
{
	struct fdbox_box_summary *all;
	int model_box, fd, n, i, boxes = 0, entries = 0, found = 0;
	char *text, *line, *save;
	int box = -1;
	uid_t owner = 0;
	char name[64];

	model_box = fdbox_open(dev, MODEL_BOX, FDBOX_OPEN_INCOMING);
	if (model_box < 0) {
		fail("no incoming %s: %s", MODEL_BOX, fdbox_errname(model_box));
		return;
	}
	fd = fdbox_retrieve(model_box, "model");
	close(model_box);
	if (fd < 0) {
		fail("retrieving the model: %s", fdbox_errname(fd));
		return;
	}
	text = slurp(fd);
	close(fd);
	if (!text) {
		fail("reading the model");
		return;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned int id, pages, version, pending, o;
		char entry[32];
		int m;

		if (sscanf(line, "seed %*u") == 0 && !strncmp(line, "seed ", 5)) {
			printf("# model of the run with %s\n", line);
			continue;
		}
		if (sscanf(line, "box %u %63s %d", &o, name, &m) == 3) {
			if (box >= 0)
				close(box);
			owner = o;
			boxes++;
			box = fdbox_open_as(dev, name, FDBOX_OPEN_INCOMING, owner);
			/* An empty box is not offered after the kexec. */
			if (m == 0) {
				if (box >= 0)
					fail("%u's empty %s came back", owner, name);
				else if (box != -ENOENT)
					fail("%u's empty %s: %s", owner, name,
					     fdbox_errname(box));
				continue;
			}
			if (box < 0) {
				fail("%u's %s did not come back: %s", owner, name,
				     fdbox_errname(box));
				continue;
			}
			struct fdbox_box_info info;
			struct fdbox_entry_info *e;

			count(OP_OPEN, B_INCOMING, 0);
			n = fdbox_box_info(box, &info, &e);
			count(OP_INFO, B_INCOMING, n < 0);
			if (n != m || info.owner_uid != owner)
				fail("%s came back with %d entries of owner %u, model %d of %u",
				     name, n, info.owner_uid, m, owner);
			if (n >= 0)
				free(e);
			incoming_refusals(box);
			continue;
		}
		if (sscanf(line, "entry %31s %u %u %u %u", entry, &id, &pages,
			   &version, &pending) == 5 && box >= 0) {
			entries++;
			fd = fdbox_retrieve(box, entry);
			count(OP_RETRIEVE, B_INCOMING, fd < 0);
			if (fd < 0) {
				fail("%s/%s: %s", name, entry, fdbox_errname(fd));
				continue;
			}
			/* Once only. */
			EXPECT_RET(OP_RETRIEVE, B_INCOMING, fdbox_retrieve(box, entry),
				   -EBUSY);
			if (!holds(fd, id, version, pages) &&
			    !holds(fd, id, pending, pages))
				fail("%s/%s came back without its data (version %u or %u of %u pages)",
				     name, entry, version, pending, pages);
			close(fd);
		}
	}
	if (box >= 0)
		close(box);
	free(text);
	/* Nothing else of the fuzzer came back. */
	n = fdbox_list(dev, &all);
	for (i = 0; i < n; i++)
		found += all[i].direction == FDBOX_DIR_INCOMING &&
			 !strncmp(all[i].name, "fz-", 3);
	free(all);
	if (found)
		fail("%d boxes of the fuzzer came back beyond the model", found);
	printf("# stress: %d boxes with %d entries came back as the model says\n",
	       boxes, entries);
}

static unsigned long cmdline_ulong(const char *key, unsigned long def)
{
	char buf[4096], *p;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return def;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return def;
	buf[n] = 0;
	p = strstr(buf, key);
	if (!p || p[strlen(key)] != '=')
		return def;
	return strtoul(p + strlen(key) + 1, NULL, 10);
}

int main(int argc, char **argv)
{
	unsigned long seconds = cmdline_ulong("fdbox.stress_seconds", 60);
	unsigned long last = cmdline_ulong("fdbox.stages", 2);
	int tests = 0;

	if (argc != 3 || strcmp(argv[1], "-s")) {
		fprintf(stderr, "usage: %s -s STAGE\n", argv[0]);
		return 2;
	}
	stage = atoi(argv[2]);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	sh->seed = cmdline_ulong("fdbox.stress_seed", 1) + (uint64_t)stage * 7919;
	printf("TAP version 13\n1..%d\n", (stage > 1) + (stage < (int)last));
	fflush(stdout);
	if (fdbox_load_module(FDBOX_CORE_MODULE) < 0 ||
	    fdbox_load_module("fdbox_memfd") < 0 ||
	    fdbox_raise_nofile(4096) < 0) {
		printf("not ok 1 stress setup\n");
		return 1;
	}
	dev = fdbox_open_dev();
	if (dev < 0) {
		printf("not ok 1 stress setup: %s\n", fdbox_errname(dev));
		return 1;
	}
	if (stage > 1) {
		verify();
		if (stage == (int)last)
			print_table();
		printf("%s %d stress.verify_handover%s%s\n",
		       atomic_load(&sh->failed) ? "not ok" : "ok", ++tests,
		       atomic_load(&sh->failed) ? ": " : "", sh->failure);
	}
	if (stage < (int)last && !atomic_load(&sh->failed)) {
		printf("# stress: stage %d, %lu s, seed %llu\n", stage, seconds,
		       (unsigned long long)sh->seed);
		fflush(stdout);
		fuzz(seconds);
		printf("%s %d stress.fuzz%s%s\n",
		       atomic_load(&sh->failed) ? "not ok" : "ok", ++tests,
		       atomic_load(&sh->failed) ? ": " : "", sh->failure);
		if (atomic_load(&sh->failed))
			printf("# replay: make stress SECONDS=%lu SEED=%llu\n",
			       seconds, (unsigned long long)(sh->seed - (uint64_t)stage * 7919));
	}
	return atomic_load(&sh->failed) ? 1 : 0;
}
