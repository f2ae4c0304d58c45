/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Assertion helpers for the fdbox_core selftests, on top of
 * kselftest_harness.h; include after it.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef FDBOX_SELFTEST_COMMON_H
#define FDBOX_SELFTEST_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fdbox_util.h"

/* An ioctl as 0 or -errno. */
static inline int fdbox_raw(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/* A syscall's result as itself, or -errno. */
static inline int fdbox_sys(int ret)
{
	return ret < 0 ? -errno : ret;
}

/* Logs what CALL returned when it isn't WANT; returns it. */
static inline int fdbox_check(int got, int want, const char *call)
{
	if (got != want && !(want == 0 && got >= 0))
		fprintf(stderr, "# %s: expected %s, got %s\n", call,
			want ? fdbox_errname(want) : "success",
			got >= 0 ? "success" : fdbox_errname(got));
	return got;
}

/*
 * CALL (0, an fd, or -errno) must succeed; evaluates to its result. For a
 * syscall returning -1, wrap it in fdbox_sys().
 */
#define ASSERT_OK(call) ({						\
	int _r = fdbox_check(call, 0, #call);				\
	ASSERT_LE(0, _r);						\
	_r;								\
})

/*
 * CALL (0, an fd, or -errno) must fail with ERR. Like ASSERT_EQ(), may be
 * followed by a statement run on failure.
 */
#define ASSERT_FAILS(err, call)						\
	ASSERT_EQ(-(err), fdbox_check(call, -(err), #call))

#define EXPECT_FAILS(err, call)						\
	EXPECT_EQ(-(err), fdbox_check(call, -(err), #call))

/* The whole visible state, to compare before and after a failed call. */
#define SNAPSHOT(dev) ({						\
	char *_s = fdbox_snapshot(dev);					\
	ASSERT_TRUE(_s != NULL)						\
		TH_LOG("snapshot: %s", fdbox_errname(errno));		\
	_s;								\
})

#define ASSERT_UNCHANGED(dev, before) do {				\
	char *_after = SNAPSHOT(dev);					\
	ASSERT_STREQ(before, _after);					\
	free(_after);							\
} while (0)

/* A name field equals the C string WANT, and is NUL-terminated. */
#define ASSERT_NAME(want, field) do {					\
	ASSERT_GT(sizeof(field), strnlen(field, sizeof(field)));	\
	ASSERT_STREQ(want, field);					\
} while (0)

#define ASSERT_CLOEXEC(fd) do {						\
	int _flags = fcntl(fd, F_GETFD);				\
	ASSERT_LE(0, _flags);						\
	ASSERT_TRUE(_flags & FD_CLOEXEC)				\
		TH_LOG("fd %d lacks FD_CLOEXEC", (int)(fd));		\
} while (0)

/* Loads a module; failing to is a test failure, never a skip. */
#define ASSERT_MODULE(name) do {					\
	int _r = fdbox_load_module(name);				\
	ASSERT_EQ(0, _r)						\
		TH_LOG("loading %s.ko: %s", name, fdbox_errname(_r));	\
} while (0)

/*
 * A forked child can't use ASSERT_*: it would run the fixture's teardown
 * and abort. It checks with these and exits with STEP, which the parent
 * asserts is 0.
 */
#define CHILD_FAILS(step, err, call) do {				\
	int _r = (call);						\
	if (_r != -(err)) {						\
		fprintf(stderr, "# child: %s: expected %s, got %s\n",	\
			#call, fdbox_errname(err),			\
			_r >= 0 ? "success" : fdbox_errname(_r));	\
		_exit(step);						\
	}								\
} while (0)

#define CHILD_OK(step, call) ({						\
	int _r = (call);						\
	if (_r < 0) {							\
		fprintf(stderr, "# child: %s: %s\n", #call,		\
			fdbox_errname(_r));				\
		_exit(step);						\
	}								\
	_r;								\
})

/*
 * The state of a test file: each of PREPARED, SERIALIZED, PREPARE_CALLS and
 * UNPREPARE_CALLS is checked unless it is -1.
 */
static inline void __fdbox_assert_file(struct __test_metadata *_metadata,
				       int fd, int prepared, int serialized,
				       int prepare_calls, int unprepare_calls,
				       int line)
{
	struct fdbox_test_info info;
	int ret = fdbox_test_info(fd, &info);

	ASSERT_EQ(0, ret) TH_LOG("line %d: FDBOX_TEST_INFO: %s", line,
				 fdbox_errname(ret));
	if (prepared >= 0)
		ASSERT_EQ(prepared, info.prepared) TH_LOG("line %d", line);
	if (serialized >= 0)
		ASSERT_EQ(serialized, info.serialized) TH_LOG("line %d", line);
	if (prepare_calls >= 0)
		ASSERT_EQ(prepare_calls, info.prepare_calls) TH_LOG("line %d", line);
	if (unprepare_calls >= 0)
		ASSERT_EQ(unprepare_calls, info.unprepare_calls) TH_LOG("line %d", line);
}

#define ASSERT_FILE(fd, prepared, serialized, prepare_calls, unprepare_calls) \
	__fdbox_assert_file(_metadata, fd, prepared, serialized,	\
			    prepare_calls, unprepare_calls, __LINE__)

/* The box NAME (direction DIR) is listed with this state, owner and size. */
static inline void __fdbox_assert_box(struct __test_metadata *_metadata,
				      int dev, const char *name, __u32 dir,
				      __u32 state, __u32 owner, __u32 n_entries,
				      int line)
{
	struct fdbox_box_summary s;
	int ret = fdbox_find_box(dev, name, dir, &s);

	ASSERT_EQ(0, ret) TH_LOG("line %d: box \"%s\" (dir %u) not listed: %s",
				 line, name, dir, fdbox_errname(ret));
	ASSERT_EQ(state, s.state) TH_LOG("line %d: box %s", line, name);
	ASSERT_EQ(owner, s.owner_uid) TH_LOG("line %d: box %s", line, name);
	ASSERT_EQ(n_entries, s.n_entries) TH_LOG("line %d: box %s", line, name);
}

#define ASSERT_BOX(dev, name, dir, state, owner, n_entries)		\
	__fdbox_assert_box(_metadata, dev, name, dir, state, owner,	\
			   n_entries, __LINE__)

#define ASSERT_NO_BOX(dev, name, dir) do {				\
	struct fdbox_box_summary _s;					\
	ASSERT_FAILS(ENOENT, fdbox_find_box(dev, name, dir, &_s));	\
} while (0)

/*
 * The entry NAME of the box BOX has this state; REASON, VERSION and N_DEPS
 * are checked unless -1. Its compatible is always "fdbox-test".
 */
static inline void __fdbox_assert_entry(struct __test_metadata *_metadata,
					int box, const char *name, __u32 state,
					int reason, int version, int n_deps,
					int line)
{
	const struct fdbox_entry_info *e;
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	int n = fdbox_box_info(box, &info, &all);

	ASSERT_LE(0, n) TH_LOG("line %d: BOX_INFO: %s", line, fdbox_errname(n));
	e = fdbox_find_entry(all, n, name);
	ASSERT_TRUE(e != NULL) TH_LOG("line %d: no entry \"%s\"", line, name);
	ASSERT_NAME(FDBOX_TEST_COMPATIBLE, e->compatible);
	ASSERT_EQ(state, e->state) TH_LOG("line %d: entry %s", line, name);
	if (reason >= 0)
		ASSERT_EQ(reason, e->reason) TH_LOG("line %d: entry %s", line, name);
	if (version >= 0)
		ASSERT_EQ(version, e->version) TH_LOG("line %d: entry %s", line, name);
	if (n_deps >= 0)
		ASSERT_EQ(n_deps, e->n_deps) TH_LOG("line %d: entry %s", line, name);
	free(all);
}

#define ASSERT_ENTRY(box, name, state, reason, version, n_deps)	\
	__fdbox_assert_entry(_metadata, box, name, state, reason,	\
			     version, n_deps, __LINE__)

/* Entry NAME of BOX, of any handler, is in STATE. */
#define ASSERT_ENTRY_STATE(box, name, want) do {			\
	struct fdbox_entry_info *_all;					\
	const struct fdbox_entry_info *_e;				\
	struct fdbox_box_info _info;					\
	int _n = fdbox_box_info(box, &_info, &_all);			\
	ASSERT_LE(0, _n) TH_LOG("BOX_INFO: %s", fdbox_errname(_n));	\
	_e = fdbox_find_entry(_all, _n, name);				\
	ASSERT_TRUE(_e != NULL) TH_LOG("no entry %s", name);		\
	EXPECT_EQ((__u32)(want), _e->state) TH_LOG("entry %s", name);	\
	free(_all);							\
} while (0)

#endif /* FDBOX_SELFTEST_COMMON_H */
