// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the fdbox_core selftests; see fdbox_util.h.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdbox_util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

bool fdbox_module_loaded(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return stat(path, &st) == 0;
}

/*
 * Loads $FDBOX_MODULES/NAME.ko unless it is loaded already. A module that is
 * missing or fails to load is an error for the caller to report: the tests
 * fail then, they never skip.
 */
int fdbox_load_module(const char *name)
{
	const char *dir = getenv("FDBOX_MODULES");
	char path[PATH_MAX];
	int fd, ret;

	if (fdbox_module_loaded(name))
		return 0;
	if (!dir || !*dir)
		dir = FDBOX_MODULES_DEFAULT;
	snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret == -EEXIST ? 0 : ret;
}

int fdbox_open_dev(void)
{
	int fd = open(FDBOX_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* A valid name field: SRC, NUL-terminated and zero-padded. */
void fdbox_name(char dst[FDBOX_NAME_LEN], const char *src)
{
	memset(dst, 0, FDBOX_NAME_LEN);
	memcpy(dst, src, strnlen(src, FDBOX_NAME_LEN - 1));
}

int fdbox_create(int dev, const char *name)
{
	struct fdbox_create_box arg = { .size = sizeof(arg), .box_fd = -1 };

	fdbox_name(arg.name, name);
	if (ioctl(dev, FDBOX_CREATE_BOX, &arg))
		return -errno;
	return arg.box_fd;
}

static int open_box(int dev, const char *name, __u32 flags, __u32 owner)
{
	struct fdbox_open_box arg = {
		.size = sizeof(arg),
		.flags = flags,
		.box_fd = -1,
		.owner_uid = owner,
	};

	fdbox_name(arg.name, name);
	if (ioctl(dev, FDBOX_OPEN_BOX, &arg))
		return -errno;
	return arg.box_fd;
}

int fdbox_open(int dev, const char *name, __u32 flags)
{
	return open_box(dev, name, flags, 0);
}

int fdbox_open_as(int dev, const char *name, __u32 flags, __u32 owner)
{
	return open_box(dev, name, flags | FDBOX_OPEN_OWNER, owner);
}

int fdbox_add(int box, int fd, const char *name)
{
	struct fdbox_box_add arg = { .size = sizeof(arg), .fd = fd };

	fdbox_name(arg.name, name);
	return ioctl(box, FDBOX_BOX_ADD, &arg) ? -errno : 0;
}

int fdbox_settle(int dev, int fd, unsigned int flags, struct fdbox_settle_fd *out)
{
	struct fdbox_settle_fd arg = { .size = sizeof(arg), .flags = flags, .fd = fd };

	if (ioctl(dev, FDBOX_SETTLE_FD, &arg))
		return -errno;
	if (out)
		*out = arg;
	return 0;
}

int fdbox_remove(int box, const char *name)
{
	struct fdbox_box_remove arg = { .size = sizeof(arg) };

	fdbox_name(arg.name, name);
	return ioctl(box, FDBOX_BOX_REMOVE, &arg) ? -errno : 0;
}

int fdbox_seal(int box)
{
	return fdbox_seal_flags(box, 0);
}

int fdbox_seal_flags(int box, __u32 flags)
{
	struct fdbox_box_seal arg = { .size = sizeof(arg), .flags = flags };

	return ioctl(box, FDBOX_BOX_SEAL, &arg) ? -errno : 0;
}

int fdbox_cancel(int box)
{
	struct fdbox_box_cancel arg = { .size = sizeof(arg) };

	return ioctl(box, FDBOX_BOX_CANCEL, &arg) ? -errno : 0;
}

int fdbox_retrieve(int box, const char *name)
{
	struct fdbox_box_retrieve arg = { .size = sizeof(arg), .fd = -1 };

	fdbox_name(arg.name, name);
	if (ioctl(box, FDBOX_BOX_RETRIEVE, &arg))
		return -errno;
	return arg.fd;
}

/* NAME NULL discards every entry not retrieved. */
int fdbox_discard(int box, const char *name)
{
	struct fdbox_box_discard arg = { .size = sizeof(arg) };

	if (name)
		fdbox_name(arg.name, name);
	else
		arg.flags = FDBOX_DISCARD_ALL;
	return ioctl(box, FDBOX_BOX_DISCARD, &arg) ? -errno : 0;
}

/* Room for a few more than the kernel reported, in case the count grows. */
#define SLACK 16

int fdbox_caps(int dev, struct fdbox_get_caps *caps,
	       struct fdbox_handler_info **out)
{
	struct fdbox_handler_info *h = NULL;
	__u32 room = 0;

	for (;;) {
		memset(caps, 0, sizeof(*caps));
		caps->size = sizeof(*caps);
		caps->n_handlers = room;
		caps->handlers = (uintptr_t)h;
		if (ioctl(dev, FDBOX_GET_CAPS, caps)) {
			int err = errno;

			free(h);
			return -err;
		}
		if (h && caps->n_handlers <= room)
			break;
		free(h);
		room = caps->n_handlers + SLACK;
		h = calloc(room, sizeof(*h));
		if (!h)
			return -ENOMEM;
	}
	*out = h;
	return caps->n_handlers;
}

int fdbox_list(int dev, struct fdbox_box_summary **out)
{
	struct fdbox_box_summary *b = NULL;
	struct fdbox_list_boxes arg;
	__u32 room = 0;

	for (;;) {
		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.n_boxes = room;
		arg.boxes = (uintptr_t)b;
		if (ioctl(dev, FDBOX_LIST_BOXES, &arg)) {
			int err = errno;

			free(b);
			return -err;
		}
		if (b && arg.n_boxes <= room)
			break;
		free(b);
		room = arg.n_boxes + SLACK;
		b = calloc(room, sizeof(*b));
		if (!b)
			return -ENOMEM;
	}
	*out = b;
	return arg.n_boxes;
}

int fdbox_box_info(int box, struct fdbox_box_info *info,
		   struct fdbox_entry_info **out)
{
	struct fdbox_entry_info *e = NULL;
	__u32 room = 0;

	for (;;) {
		memset(info, 0, sizeof(*info));
		info->size = sizeof(*info);
		info->n_entries = room;
		info->entries = (uintptr_t)e;
		if (ioctl(box, FDBOX_BOX_INFO, info)) {
			int err = errno;

			free(e);
			return -err;
		}
		if (e && info->n_entries <= room)
			break;
		free(e);
		room = info->n_entries + SLACK;
		e = calloc(room, sizeof(*e));
		if (!e)
			return -ENOMEM;
	}
	*out = e;
	return info->n_entries;
}

static bool name_is(const char name[FDBOX_NAME_LEN], const char *want)
{
	return strnlen(name, FDBOX_NAME_LEN) == strlen(want) &&
	       !memcmp(name, want, strlen(want));
}

int fdbox_find_box(int dev, const char *name, __u32 dir,
		   struct fdbox_box_summary *out)
{
	struct fdbox_box_summary *b;
	int n, i, ret = -ENOENT;

	n = fdbox_list(dev, &b);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (b[i].direction == dir && name_is(b[i].name, name)) {
			*out = b[i];
			ret = 0;
			break;
		}
	}
	free(b);
	return ret;
}

const struct fdbox_entry_info *fdbox_find_entry(const struct fdbox_entry_info *e,
						int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (name_is(e[i].name, name))
			return &e[i];
	return NULL;
}

const struct fdbox_handler_info *fdbox_find_handler(const struct fdbox_handler_info *h,
						   int n, const char *compatible)
{
	int i;

	for (i = 0; i < n; i++)
		if (strnlen(h[i].compatible, FDBOX_COMPATIBLE_LEN) == strlen(compatible) &&
		    !strcmp(h[i].compatible, compatible))
			return &h[i];
	return NULL;
}

int fdbox_count_boxes(int dev, const char *prefix)
{
	struct fdbox_box_summary *b;
	int n, i, count = 0;

	n = fdbox_list(dev, &b);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++)
		if (!strncmp(b[i].name, prefix, strlen(prefix)))
			count++;
	free(b);
	return count;
}

static int cmp_box(const void *a, const void *b)
{
	const struct fdbox_box_summary *x = a, *y = b;

	if (x->direction != y->direction)
		return x->direction < y->direction ? -1 : 1;
	return strncmp(x->name, y->name, FDBOX_NAME_LEN);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct fdbox_entry_info *x = a, *y = b;

	return strncmp(x->name, y->name, FDBOX_NAME_LEN);
}

char *fdbox_snapshot(int dev)
{
	struct fdbox_box_summary *b = NULL;
	struct fdbox_entry_info *e = NULL;
	struct fdbox_box_info info;
	char *text = NULL;
	size_t len = 0;
	int n, i, j, m, box, err = 0;
	FILE *f;

	n = fdbox_list(dev, &b);
	if (n < 0) {
		errno = -n;
		return NULL;
	}
	qsort(b, n, sizeof(*b), cmp_box);
	f = open_memstream(&text, &len);
	if (!f) {
		free(b);
		return NULL;
	}
	for (i = 0; i < n && !err; i++) {
		fprintf(f, "box %.*s dir=%u state=%u owner=%u n=%u\n",
			FDBOX_NAME_LEN, b[i].name, b[i].direction, b[i].state,
			b[i].owner_uid, b[i].n_entries);
		box = fdbox_open_as(dev, b[i].name,
				    b[i].direction == FDBOX_DIR_INCOMING ?
				    FDBOX_OPEN_INCOMING : FDBOX_OPEN_OUTGOING,
				    b[i].owner_uid);
		if (box < 0) {
			err = -box;
			break;
		}
		m = fdbox_box_info(box, &info, &e);
		close(box);
		if (m < 0) {
			err = -m;
			break;
		}
		fprintf(f, " info %.*s dir=%u state=%u owner=%u n=%u\n",
			FDBOX_NAME_LEN, info.name, info.direction, info.state,
			info.owner_uid, info.n_entries);
		qsort(e, m, sizeof(*e), cmp_entry);
		for (j = 0; j < m; j++)
			fprintf(f, "  entry %.*s compat=%.*s v=%u state=%u reason=%u deps=%u\n",
				FDBOX_NAME_LEN, e[j].name,
				FDBOX_COMPATIBLE_LEN, e[j].compatible,
				e[j].version, e[j].state, e[j].reason,
				e[j].n_deps);
		free(e);
		e = NULL;
	}
	fclose(f);
	free(b);
	if (err) {
		free(text);
		errno = err;
		return NULL;
	}
	return text;
}

static int cmp_bigger(const void *a, const void *b)
{
	const struct fdbox_box_summary *x = a, *y = b;

	return x->n_entries < y->n_entries ? 1 : x->n_entries > y->n_entries ? -1 : 0;
}

int fdbox_discard_incoming(int dev, const char *prefix)
{
	struct fdbox_box_summary *b;
	int n, i, box;

	n = fdbox_list(dev, &b);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (b[i].direction != FDBOX_DIR_INCOMING ||
		    strncmp(b[i].name, prefix, strlen(prefix)))
			continue;
		box = fdbox_open_as(dev, b[i].name, FDBOX_OPEN_INCOMING,
				    b[i].owner_uid);
		if (box < 0)
			continue;
		fdbox_discard(box, NULL);
		close(box);
	}
	free(b);
	return 0;
}

int fdbox_cancel_outgoing(int dev, const char *prefix)
{
	struct fdbox_box_summary *b;
	int n, i, box, ret, count = 0;

	n = fdbox_list(dev, &b);
	if (n < 0)
		return n;
	/* Every cancel re-encodes what stays sealed: the biggest box first. */
	qsort(b, n, sizeof(*b), cmp_bigger);
	for (i = 0; i < n; i++) {
		if (b[i].direction != FDBOX_DIR_OUTGOING ||
		    b[i].state != FDBOX_BOX_SEALED ||
		    strncmp(b[i].name, prefix, strlen(prefix)))
			continue;
		box = fdbox_open_as(dev, b[i].name, FDBOX_OPEN_OUTGOING,
				    b[i].owner_uid);
		if (box < 0) {
			free(b);
			return box;
		}
		ret = fdbox_cancel(box);
		close(box);
		if (ret < 0) {
			free(b);
			return ret;
		}
		count++;
	}
	free(b);
	return count;
}

int fdbox_test_file(const void *data, size_t len)
{
	int fd = open(FDBOX_TEST_DEV, O_RDWR | O_CLOEXEC);
	ssize_t done;

	if (fd < 0)
		return -errno;
	if (len) {
		done = write(fd, data, len);
		if (done != (ssize_t)len) {
			int err = done < 0 ? errno : EIO;

			close(fd);
			return -err;
		}
	}
	return fd;
}

int fdbox_test_config(int fd, __u32 flags, __u32 payload_version, int dep_fd,
		      __u64 ballast)
{
	struct fdbox_test_config cfg = {
		.flags = flags,
		.payload_version = payload_version,
		.dep_fd = dep_fd,
		.ballast = ballast,
	};

	return ioctl(fd, FDBOX_TEST_CONFIG, &cfg) ? -errno : 0;
}

int fdbox_test_info(int fd, struct fdbox_test_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, FDBOX_TEST_INFO, info) ? -errno : 0;
}

ssize_t fdbox_read_all(int fd, void *buf, size_t cap)
{
	size_t done = 0;
	ssize_t r;

	while (done < cap) {
		r = read(fd, (char *)buf + done, cap - done);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += r;
	}
	return done;
}

void fdbox_pattern(void *buf, size_t len, const char *tag)
{
	unsigned char *p = buf;
	uint32_t x = 2166136261u;
	size_t i, n;

	for (i = 0; tag[i]; i++)
		x = (x ^ (unsigned char)tag[i]) * 16777619u;
	n = snprintf(NULL, 0, "%s:", tag);
	for (i = 0; i < len; i++) {
		if (i < n) {
			p[i] = i + 1 < n ? tag[i] : ':';
		} else {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			p[i] = x;
		}
	}
}

const char *fdbox_errname(int err)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
#define N(e) { e, #e }
		N(0), N(EPERM), N(ENOENT), N(EIO), N(EBADF), N(ENOMEM),
		N(EACCES), N(EFAULT), N(EBUSY), N(EEXIST), N(EINVAL),
		N(ENOTTY), N(ENOSPC), N(E2BIG), N(ENODATA), N(EOPNOTSUPP),
		N(ELOOP), N(ENXIO), N(ENODEV), N(EAGAIN), N(EFBIG),
		N(EDQUOT), N(EINTR),
#undef N
	};
	static char other[4][32];
	static int next;
	size_t i;

	if (err < 0)
		err = -err;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].err == err)
			return names[i].name;
	next = (next + 1) % 4;
	snprintf(other[next], sizeof(other[next]), "errno %d", err);
	return other[next];
}

double fdbox_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int fdbox_raise_nofile(unsigned long min)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= min)
		return 0;
	rl.rlim_cur = min;
	if (rl.rlim_max < min)
		rl.rlim_max = min;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

long fdbox_meminfo_kb(const char *field)
{
	size_t flen = strlen(field);
	char line[256];
	long kb = -ENOENT;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

int fdbox_count_fds(void)
{
	struct dirent *d;
	int n = 0;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

long fdbox_param(const char *name, long value)
{
	char path[128], buf[32];
	long old;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/fdbox_core/parameters/%s", name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		close(fd);
		return n < 0 ? -errno : -EIO;
	}
	buf[n] = 0;
	old = strtol(buf, NULL, 10);
	n = snprintf(buf, sizeof(buf), "%ld\n", value);
	if (pwrite(fd, buf, n, 0) != n) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return old;
}

int fdbox_become(uid_t uid)
{
	if (setresgid(uid, uid, uid) || setgroups(0, NULL) ||
	    setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

int fdbox_become_nobody(void)
{
	return fdbox_become(FDBOX_NOBODY);
}

int fdbox_wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long fdbox_debugfs_size(const char *file)
{
	char path[128], buf[65536];
	long total = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/debug/fdbox/%s", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0)
		total = -errno;
	close(fd);
	return total;
}
