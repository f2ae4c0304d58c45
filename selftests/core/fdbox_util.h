/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the fdbox_core selftests: loading the modules, and thin
 * wrappers over the /dev/fdbox and /dev/fdbox_test ioctls that return a
 * result or -errno, in the manner of liveupdate's lu_utils.c. They assert
 * nothing: the tests do, with kselftest_harness.h.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef FDBOX_SELFTEST_UTIL_H
#define FDBOX_SELFTEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <linux/fdbox.h>

#include "fdbox_test.h"

#define FDBOX_DEV "/dev/fdbox"
#define FDBOX_TEST_DEV "/dev/fdbox_test"
/* Where the guest keeps the modules when $FDBOX_MODULES is unset. */
#define FDBOX_MODULES_DEFAULT "/lib/modules/fdbox"
#define FDBOX_CORE_MODULE "fdbox_core"
#define FDBOX_TEST_MODULE "fdbox_test"

/* The uid of an unprivileged process: nobody. */
#define FDBOX_NOBODY 65534

/* Modules. */
bool fdbox_module_loaded(const char *name);
int fdbox_load_module(const char *name);

/* /dev/fdbox and its boxes; each returns an fd, 0, or -errno. */
int fdbox_open_dev(void);
void fdbox_name(char dst[FDBOX_NAME_LEN], const char *src);
int fdbox_create(int dev, const char *name);
int fdbox_open(int dev, const char *name, __u32 flags);
/* FDBOX_OPEN_BOX of @owner's box (FDBOX_OPEN_OWNER). */
int fdbox_open_as(int dev, const char *name, __u32 flags, __u32 owner);
int fdbox_add(int box, int fd, const char *name);
/* FDBOX_SETTLE_FD on DEV; what it found and did in *OUT (may be NULL). */
int fdbox_settle(int dev, int fd, unsigned int flags, struct fdbox_settle_fd *out);
int fdbox_remove(int box, const char *name);
int fdbox_seal(int box);
int fdbox_seal_flags(int box, __u32 flags);
int fdbox_cancel(int box);
int fdbox_retrieve(int box, const char *name);
int fdbox_discard(int box, const char *name);

/*
 * GET_CAPS, LIST_BOXES and BOX_INFO with arrays sized by the kernel: the
 * array is malloc()ed into *out (free() it) and the count returned.
 */
int fdbox_caps(int dev, struct fdbox_get_caps *caps,
	       struct fdbox_handler_info **out);
int fdbox_list(int dev, struct fdbox_box_summary **out);
int fdbox_box_info(int box, struct fdbox_box_info *info,
		   struct fdbox_entry_info **out);

/* The box NAME in direction DIR: 0 and *out filled, or -ENOENT. */
int fdbox_find_box(int dev, const char *name, __u32 dir,
		   struct fdbox_box_summary *out);
/* The entry NAME in an array from fdbox_box_info(), or NULL. */
const struct fdbox_entry_info *fdbox_find_entry(const struct fdbox_entry_info *e,
						int n, const char *name);
/* The handler COMPATIBLE in an array from fdbox_caps(), or NULL. */
const struct fdbox_handler_info *fdbox_find_handler(const struct fdbox_handler_info *h,
						   int n, const char *compatible);
/* How many boxes whose names start with PREFIX are listed, or -errno. */
int fdbox_count_boxes(int dev, const char *prefix);

/*
 * Every box and entry, as canonical text (sorted, one line each), opening
 * each box with OPEN_BOX to read its BOX_INFO. Two snapshots are equal iff
 * nothing visible changed. malloc()ed; NULL on error, with errno set.
 */
char *fdbox_snapshot(int dev);

/*
 * Cancels every sealed outgoing box whose name starts with PREFIX and closes
 * it, which discards it. Returns how many, or -errno.
 */
int fdbox_cancel_outgoing(int dev, const char *prefix);

/*
 * Discards what is left of every incoming box named PREFIX*, whoever owns it,
 * and closes it: a box with nothing left is released.
 */
int fdbox_discard_incoming(int dev, const char *prefix);

/* fdbox_test files. */
int fdbox_test_file(const void *data, size_t len);
int fdbox_test_config(int fd, __u32 flags, __u32 payload_version, int dep_fd,
		      __u64 ballast);
int fdbox_test_info(int fd, struct fdbox_test_info *info);
ssize_t fdbox_read_all(int fd, void *buf, size_t cap);
/* Deterministic, distinct data for TAG: a readable prefix, then noise. */
void fdbox_pattern(void *buf, size_t len, const char *tag);

/* Odds and ends. */
const char *fdbox_errname(int err);
double fdbox_now(void);
int fdbox_raise_nofile(unsigned long min);
long fdbox_meminfo_kb(const char *field);
int fdbox_count_fds(void);
/* setresgid/setgroups/setresuid to nobody, dropping every capability. */
int fdbox_become_nobody(void);
/* Drops every id to @uid (gid @uid too). */
int fdbox_become(uid_t uid);
/*
 * Sets fdbox_core's module parameter @name to @value; returns the old value,
 * or -errno.
 */
long fdbox_param(const char *name, long value);
/* The size of /sys/kernel/debug/fdbox/FILE, read to its end, or -errno. */
long fdbox_debugfs_size(const char *file);
/* Waits for PID; its exit status, or -1 if it didn't exit normally. */
int fdbox_wait_child(pid_t pid);

#endif /* FDBOX_SELFTEST_UTIL_H */
