// SPDX-License-Identifier: GPL-2.0
/*
 * Three-stage selftest, in a boot chain of its own (fdbox.tests=/compat,
 * --stages 3): a kexec between kernels whose handlers read different payload
 * versions, and back. Every stage loads fdbox_core and fdbox_memfd; the test
 * handler is built twice from one source: version 1 in /lib/modules/fdbox,
 * and version 2 (reads only version 2, writes version 1 on request) in
 * /lib/modules/fdbox-v2, a module set without fdbox_iommufd, with two
 * modules compressed.
 *
 * "-s 1" (test handler version 1, fdbox_iommufd loaded):
 * - FDBOX_SEAL_PREVIOUS is refused with EOPNOTSUPP by a handler that has no
 *   previous version, and an unknown seal flag with EINVAL, changing nothing;
 *   a memfd box sealed with it says so in BOX_INFO;
 * - it seals entries at version 1, forged at versions 2 and 3, a memfd, an
 *   iommufd, and dependencies on a readable and an unreadable entry;
 * - fdbox check against /lib/modules/fdbox-v2 predicts each entry, and the
 *   prediction goes to the next stage on its command line.
 *
 * "-s 2" (version 2 from /lib/modules/fdbox-v2, no fdbox_iommufd): every
 * entry is as predicted, and the restorable ones restore byte for byte. Then
 * the rollback: a box sealed with FDBOX_SEAL_PREVIOUS is written at version 1
 * for the version 1 kernel, and fdbox check against /lib/modules/fdbox
 * predicts it restores, and that a box sealed without it doesn't.
 *
 * "-s 3" (version 1 again): every entry is as predicted, and the box written
 * at the previous version restores byte for byte.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "fdbox_test.h"

#define MEMFD_MODULE "fdbox_memfd"
#define IOMMUFD_MODULE "fdbox_iommufd"
#define V1_MODULES FDBOX_MODULES_DEFAULT
#define V2_MODULES "/lib/modules/fdbox-v2"
#define NO_MODULES "/lib/fdbox"
#define PREFIX "compat-"
#define PAGE 4096
#define MEMFD_PAGES 3
#define MAX_PLANNED 16

enum kind { TEST_FILE, MEMFD, IOMMUFD };

/* An entry a stage seals, and what fdbox check must predict for it. */
struct planned {
	const char *box;
	const char *name;
	enum kind kind;
	__u32 version;		/* TEST_FILE: the version to forge; 0: the handler's */
	const char *dep;	/* TEST_FILE: the entry of its box it depends on */
	const char *verdict;	/* in the next stage's kernel */
};

/* Sealed by the version 1 kernel, for the version 2 kernel. */
static const struct planned forward[] = {
	{ "compat-a", "t1", TEST_FILE, 0, NULL, "version" },
	{ "compat-a", "t2", TEST_FILE, 2, NULL, "ok" },
	{ "compat-a", "t3", TEST_FILE, 3, NULL, "version" },
	{ "compat-a", "ram", MEMFD, 0, NULL, "ok" },
	{ "compat-a", "iommufd", IOMMUFD, 0, NULL, "no-handler" },
	{ "compat-dep-ok", "base", TEST_FILE, 2, NULL, "ok" },
	{ "compat-dep-ok", "child", TEST_FILE, 2, "base", "ok" },
	{ "compat-dep-bad", "base", TEST_FILE, 0, NULL, "version" },
	{ "compat-dep-bad", "child", TEST_FILE, 2, "base", "dependency" },
};

/* Sealed by the version 2 kernel, for the version 1 kernel. */
#define BACK_BOX "compat-back"
static const struct planned backward[] = {
	{ BACK_BOX, "r1", TEST_FILE, 0, NULL, "ok" },
	{ BACK_BOX, "r2", TEST_FILE, 0, "r1", "ok" },
	{ BACK_BOX, "ram", MEMFD, 0, NULL, "ok" },
	{ "compat-fwd", "f1", TEST_FILE, 0, NULL, "version" },
};

/* One row of fdbox check's table. */
struct predicted {
	char box[FDBOX_NAME_LEN];
	char name[FDBOX_NAME_LEN];
	char verdict[32];
};

/* The data of test file NAME in BOX. */
static void test_data(char *buf, size_t len, const char *box, const char *name)
{
	snprintf(buf, len, "compat %s/%s", box, name);
}

/* A memfd of MEMFD_PAGES pages of a pattern of BOX/NAME. */
static int make_memfd(const char *box, const char *name)
{
	char tag[2 * FDBOX_NAME_LEN + 2];
	char buf[MEMFD_PAGES * PAGE];
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	snprintf(tag, sizeof(tag), "%s/%s", box, name);
	fdbox_pattern(buf, sizeof(buf), tag);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* The file of P, with its dependency among FDS (indexed like PLAN) set. */
static int make_file(const struct planned *plan, size_t n, const int *fds,
		     const struct planned *p)
{
	char data[2 * FDBOX_NAME_LEN + 16];
	int fd, dep = -1, ret;
	size_t i;

	if (p->kind == MEMFD)
		return make_memfd(p->box, p->name);
	if (p->kind == IOMMUFD) {
		fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	for (i = 0; p->dep && i < n; i++)
		if (!strcmp(plan[i].box, p->box) && !strcmp(plan[i].name, p->dep))
			dep = fds[i];
	test_data(data, sizeof(data), p->box, p->name);
	fd = fdbox_test_file(data, strlen(data));
	if (fd < 0)
		return fd;
	ret = fdbox_test_config(fd, 0, p->version, dep, 0);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Creates the boxes of PLAN (each box's entries are consecutive) and seals
 * each, the box PREVIOUS_BOX with FDBOX_SEAL_PREVIOUS.
 */
static void seal_plan(struct __test_metadata *_metadata, int dev,
		      const struct planned *plan, size_t n,
		      const char *previous_box)
{
	int fds[MAX_PLANNED];
	int box = -1;
	size_t i;

	ASSERT_GE(MAX_PLANNED, n);
	for (i = 0; i < n; i++) {
		const struct planned *p = &plan[i];

		if (!i || strcmp(plan[i - 1].box, p->box))
			box = ASSERT_OK(fdbox_create(dev, p->box));
		fds[i] = make_file(plan, n, fds, p);
		ASSERT_LE(0, fds[i]) TH_LOG("%s/%s: %s", p->box, p->name,
					    fdbox_errname(fds[i]));
		ASSERT_OK(fdbox_add(box, fds[i], p->name));
		if (i + 1 == n || strcmp(plan[i + 1].box, p->box)) {
			__u32 flags = previous_box && !strcmp(p->box, previous_box) ?
				      FDBOX_SEAL_PREVIOUS : 0;

			ASSERT_OK(fdbox_seal_flags(box, flags));
			close(box);
		}
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Runs fdbox check with ARGS; returns its exit status and reads the rows of
 * boxes named PREFIX* into OUT (at most MAX_PLANNED), their count in *N.
 */
static int run_check(const char *args, struct predicted *out, size_t *n)
{
	char cmd[256], line[512];
	int status;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "fdbox check %s", args);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	*n = 0;
	while (fgets(line, sizeof(line), f)) {
		struct predicted p;
		char handler[FDBOX_COMPATIBLE_LEN], target[32];
		unsigned int version;

		fprintf(stderr, "# %s", line);
		if (strncmp(line, PREFIX, strlen(PREFIX)))
			continue;
		if (sscanf(line, "%63s %63s %63s %u %31s %31s", p.box, p.name,
			   handler, &version, target, p.verdict) != 6 ||
		    *n == MAX_PLANNED) {
			pclose(f);
			return -EPROTO;
		}
		out[(*n)++] = p;
	}
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;
}

/* The row of BOX/NAME in PRED, or NULL. */
static const struct predicted *find_predicted(const struct predicted *pred,
					      size_t n, const char *box,
					      const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(pred[i].box, box) && !strcmp(pred[i].name, name))
			return &pred[i];
	return NULL;
}

/*
 * fdbox check against DIR predicts PLAN's verdicts, exits with WANT_EXIT,
 * and the prediction goes to the next stage as WORD=box/entry:verdict,...
 */
static void predict(struct __test_metadata *_metadata, const char *dir,
		    const struct planned *plan, size_t n, int want_exit,
		    const char *word)
{
	struct predicted pred[MAX_PLANNED];
	char args[128], cmdline[1024];
	size_t got, i, at;
	FILE *next;
	int ret;

	snprintf(args, sizeof(args), "--modules %s", dir);
	ret = run_check(args, pred, &got);
	ASSERT_EQ(want_exit, ret) TH_LOG("fdbox check %s", args);
	ASSERT_EQ(n, got);
	at = snprintf(cmdline, sizeof(cmdline), "%s=", word);
	for (i = 0; i < n; i++) {
		const struct planned *p = &plan[i];
		const struct predicted *row = find_predicted(pred, got, p->box, p->name);

		ASSERT_TRUE(row != NULL) TH_LOG("no prediction for %s/%s", p->box, p->name);
		EXPECT_STREQ(p->verdict, row->verdict)
			TH_LOG("%s/%s", p->box, p->name);
		at += snprintf(cmdline + at, sizeof(cmdline) - at, "%s%s/%s:%s",
			       i ? "," : "", row->box, row->name, row->verdict);
		ASSERT_GT(sizeof(cmdline), at);
	}
	next = fopen("/tmp/fdbox.next-cmdline", "a");
	ASSERT_TRUE(next != NULL);
	fprintf(next, "%s\n", cmdline);
	fclose(next);
}

/* The prediction the previous stage put on the command line as WORD. */
static size_t read_prediction(struct __test_metadata *_metadata,
			      const char *word, struct predicted *out)
{
	char cmdline[4096], *tok, *save, *item, *save_item;
	size_t n = 0, len = strlen(word);
	FILE *f = fopen("/proc/cmdline", "r");

	ASSERT_TRUE(f != NULL);
	ASSERT_TRUE(fgets(cmdline, sizeof(cmdline), f) != NULL);
	fclose(f);
	for (tok = strtok_r(cmdline, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (strncmp(tok, word, len) || tok[len] != '=')
			continue;
		for (item = strtok_r(tok + len + 1, ",", &save_item); item;
		     item = strtok_r(NULL, ",", &save_item)) {
			struct predicted *p = &out[n];

			ASSERT_GT(MAX_PLANNED, n);
			ASSERT_EQ(3, sscanf(item, "%63[^/]/%63[^:]:%31s", p->box,
					    p->name, p->verdict)) TH_LOG("%s", item);
			n++;
		}
	}
	ASSERT_LT(0, n) TH_LOG("no %s= on the command line", word);
	return n;
}

/* The state and reason of an entry of which fdbox check said VERDICT. */
static void expected_state(const char *verdict, __u32 *state, __u32 *reason)
{
	*state = FDBOX_ENTRY_UNAVAILABLE;
	*reason = FDBOX_REASON_NONE;
	if (!strcmp(verdict, "ok"))
		*state = FDBOX_ENTRY_RESTORABLE;
	else if (!strcmp(verdict, "no-handler"))
		*reason = FDBOX_REASON_NO_HANDLER;
	else if (!strcmp(verdict, "version"))
		*reason = FDBOX_REASON_VERSION;
	else if (!strcmp(verdict, "dependency"))
		*reason = FDBOX_REASON_DEPENDENCY;
}

/*
 * Every incoming entry of a PREFIX* box is as the prediction WORD says, and
 * every predicted entry came in.
 */
static void check_prediction(struct __test_metadata *_metadata, int dev,
			     const char *word)
{
	struct predicted pred[MAX_PLANNED];
	size_t n = read_prediction(_metadata, word, pred), seen = 0;
	struct fdbox_box_summary *boxes;
	int i, j, nboxes;

	nboxes = ASSERT_OK(fdbox_list(dev, &boxes));
	for (i = 0; i < nboxes; i++) {
		struct fdbox_entry_info *e;
		struct fdbox_box_info info;
		int box, m;

		if (boxes[i].direction != FDBOX_DIR_INCOMING ||
		    strncmp(boxes[i].name, PREFIX, strlen(PREFIX)))
			continue;
		box = ASSERT_OK(fdbox_open(dev, boxes[i].name, FDBOX_OPEN_INCOMING));
		m = ASSERT_OK(fdbox_box_info(box, &info, &e));
		for (j = 0; j < m; j++) {
			const struct predicted *p =
				find_predicted(pred, n, boxes[i].name, e[j].name);
			__u32 state, reason;

			ASSERT_TRUE(p != NULL)
				TH_LOG("%s/%s came in unpredicted", boxes[i].name, e[j].name);
			expected_state(p->verdict, &state, &reason);
			EXPECT_EQ(state, e[j].state)
				TH_LOG("%s/%s: predicted %s", p->box, p->name, p->verdict);
			EXPECT_EQ(reason, e[j].reason)
				TH_LOG("%s/%s: predicted %s", p->box, p->name, p->verdict);
			seen++;
		}
		free(e);
		close(box);
	}
	free(boxes);
	EXPECT_EQ(n, seen) TH_LOG("predicted entries missing after the kexec");
}

/* Retrieves the restorable entries of PLAN and checks their contents. */
static void check_restored(struct __test_metadata *_metadata, int dev,
			   const struct planned *plan, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct planned *p = &plan[i];
		char want[MEMFD_PAGES * PAGE], got[MEMFD_PAGES * PAGE + 1];
		struct fdbox_test_info info;
		int box, fd;
		ssize_t len;

		if (strcmp(p->verdict, "ok"))
			continue;
		box = ASSERT_OK(fdbox_open(dev, p->box, FDBOX_OPEN_INCOMING));
		fd = fdbox_retrieve(box, p->name);
		close(box);
		ASSERT_LE(0, fd) TH_LOG("RETRIEVE %s/%s: %s", p->box, p->name,
					fdbox_errname(fd));
		if (p->kind == MEMFD) {
			char tag[2 * FDBOX_NAME_LEN + 2];

			snprintf(tag, sizeof(tag), "%s/%s", p->box, p->name);
			fdbox_pattern(want, sizeof(want), tag);
			EXPECT_EQ((ssize_t)sizeof(want), pread(fd, got, sizeof(got), 0));
			EXPECT_EQ(0, memcmp(want, got, sizeof(want))) TH_LOG("%s/%s", p->box, p->name);
			close(fd);
			continue;
		}
		test_data(want, sizeof(want), p->box, p->name);
		len = fdbox_read_all(fd, got, sizeof(got) - 1);
		ASSERT_EQ((ssize_t)strlen(want), len) TH_LOG("%s/%s", p->box, p->name);
		got[len] = 0;
		EXPECT_STREQ(want, got);
		ASSERT_OK(fdbox_test_info(fd, &info));
		EXPECT_EQ(1, info.restored);
		if (p->dep) {
			test_data(want, sizeof(want), p->box, p->dep);
			EXPECT_EQ(strlen(want), info.dep_len);
			EXPECT_EQ(0, strncmp(want, (char *)info.dep_data, strlen(want)));
		}
		close(fd);
	}
}

/* Loads module NAME from DIR. */
static int load_from(const char *dir, const char *name)
{
	int ret;

	setenv("FDBOX_MODULES", dir, 1);
	ret = fdbox_load_module(name);
	setenv("FDBOX_MODULES", V1_MODULES, 1);
	return ret;
}

/* The registered test handler writes VERSION and reads from MIN_VERSION. */
static void assert_test_handler(struct __test_metadata *_metadata, int dev,
				__u32 version, __u32 min_version)
{
	struct fdbox_handler_info *h;
	const struct fdbox_handler_info *test;
	struct fdbox_get_caps caps;
	int n = ASSERT_OK(fdbox_caps(dev, &caps, &h));

	test = fdbox_find_handler(h, n, FDBOX_TEST_COMPATIBLE);
	ASSERT_TRUE(test != NULL);
	EXPECT_EQ(version, test->version);
	EXPECT_EQ(min_version, test->min_version);
	free(h);
}

/*
 * Loads fdbox_core and fdbox_test from DIR and fdbox_memfd (in
 * /lib/modules/fdbox-v2 too, compressed), checks that the test handler reads
 * and writes VERSION only, and returns /dev/fdbox open.
 */
static int open_stage(struct __test_metadata *_metadata, const char *dir,
		      __u32 version)
{
	int dev;

	ASSERT_OK(load_from(dir, FDBOX_CORE_MODULE));
	ASSERT_MODULE(MEMFD_MODULE);
	ASSERT_OK(load_from(dir, FDBOX_TEST_MODULE));
	dev = ASSERT_OK(fdbox_open_dev());
	assert_test_handler(_metadata, dev, version, version);
	return dev;
}

FIXTURE(stage1) {
	int dev;
};

FIXTURE_SETUP(stage1)
{
	self->dev = -1;
	self->dev = open_stage(_metadata, V1_MODULES, FDBOX_TEST_VERSION);
	ASSERT_MODULE(IOMMUFD_MODULE);
}

FIXTURE_TEARDOWN(stage1)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * A handler with no previous version refuses FDBOX_SEAL_PREVIOUS, and so
 * does the core for an unknown flag; the box stays open, as it was.
 */
TEST_F(stage1, seal_previous_refused)
{
	int box = ASSERT_OK(fdbox_create(self->dev, "refuse"));
	int file = ASSERT_OK(fdbox_test_file("old", 3));
	int iommufd = fdbox_sys(open("/dev/iommu", O_RDWR | O_CLOEXEC));
	struct fdbox_test_info info;
	char *before;

	ASSERT_LE(0, iommufd);
	ASSERT_OK(fdbox_add(box, file, "t"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS));
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_FAILS(EINVAL, fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS << 1));
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_OK(fdbox_test_info(file, &info));
	EXPECT_EQ(1, info.prepared);
	EXPECT_EQ(0, info.serialized);
	ASSERT_OK(fdbox_remove(box, "t"));

	/* iommufd writes version 1 only. */
	ASSERT_OK(fdbox_add(box, iommufd, "iommufd"));
	free(before);
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	close(iommufd);
	close(file);
	close(box);
	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, "refuse", FDBOX_OPEN_OUTGOING));
}

/*
 * A refusal after other entries were written at their previous version
 * undoes them: the memfd, serialized first, is as it was, and the box seals
 * without the flag.
 */
TEST_F(stage1, seal_previous_unwound)
{
	int box = ASSERT_OK(fdbox_create(self->dev, "unwind"));
	int ram = ASSERT_OK(make_memfd("unwind", "ram"));
	int file = ASSERT_OK(fdbox_test_file("old", 3));
	struct fdbox_test_info info;
	char *before;

	ASSERT_OK(fdbox_add(box, ram, "ram"));
	ASSERT_OK(fdbox_add(box, file, "t"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_OK(fdbox_test_info(file, &info));
	EXPECT_EQ(0, info.serialized);
	ASSERT_OK(fdbox_seal(box));
	ASSERT_ENTRY_STATE(box, "ram", FDBOX_ENTRY_SEALED);
	ASSERT_OK(fdbox_cancel(box));
	close(file);
	close(ram);
	close(box);
}

/* The exit status of shell command CMD. */
static int run_status(const char *cmd)
{
	int status = system(cmd);

	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The seal flags of the outgoing box BOX. */
static int seal_flags_of(int box)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	int n = fdbox_box_info(box, &info, &e);

	if (n < 0)
		return n;
	free(e);
	return info.state == FDBOX_BOX_SEALED ? (int)info.seal_flags : -EBUSY;
}

/*
 * fdbox seal --previous re-seals a sealed box with the flag, again as a
 * no-op, and leaves a box whose handler refuses sealed as it was.
 */
TEST_F(stage1, cli_reseal_previous)
{
	int box = ASSERT_OK(fdbox_create(self->dev, "reseal"));
	int ram = ASSERT_OK(make_memfd("reseal", "ram"));
	int iommufd = fdbox_sys(open("/dev/iommu", O_RDWR | O_CLOEXEC));

	ASSERT_LE(0, iommufd);
	ASSERT_OK(fdbox_add(box, ram, "ram"));
	ASSERT_OK(fdbox_seal(box));
	EXPECT_EQ(0, run_status("fdbox seal --previous reseal"));
	EXPECT_EQ(FDBOX_SEAL_PREVIOUS, seal_flags_of(box));
	EXPECT_EQ(0, run_status("fdbox seal --previous reseal"));
	EXPECT_EQ(FDBOX_SEAL_PREVIOUS, seal_flags_of(box));
	EXPECT_EQ(0, run_status("fdbox seal reseal"));
	EXPECT_EQ(0, seal_flags_of(box));

	/* iommufd has no previous version: the box stays sealed without it. */
	ASSERT_OK(fdbox_cancel(box));
	ASSERT_OK(fdbox_add(box, iommufd, "iommufd"));
	ASSERT_OK(fdbox_seal(box));
	EXPECT_NE(0, run_status("fdbox seal --previous reseal"));
	EXPECT_EQ(0, seal_flags_of(box));
	ASSERT_ENTRY_STATE(box, "iommufd", FDBOX_ENTRY_SEALED);
	ASSERT_OK(fdbox_cancel(box));
	close(iommufd);
	close(ram);
	close(box);
}

/*
 * A shmem memfd is written at version 1, memfd's previous version: the seal
 * succeeds, and BOX_INFO reports the flag until CANCEL.
 */
TEST_F(stage1, seal_previous_reported)
{
	int box = ASSERT_OK(fdbox_create(self->dev, "compat-previous"));
	int fd = ASSERT_OK(make_memfd("compat-previous", "ram"));
	struct predicted pred[MAX_PLANNED];
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	size_t n;

	ASSERT_OK(fdbox_add(box, fd, "ram"));
	ASSERT_OK(fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS));
	ASSERT_EQ(1, fdbox_box_info(box, &info, &e));
	EXPECT_EQ(FDBOX_BOX_SEALED, info.state);
	EXPECT_EQ(FDBOX_SEAL_PREVIOUS, info.seal_flags);
	EXPECT_EQ(1, e[0].version);
	free(e);
	/* This kernel's own memfd handler reads version 1 too. */
	EXPECT_EQ(0, run_check("compat-previous --modules " V1_MODULES, pred, &n));
	ASSERT_EQ(1, n);
	EXPECT_STREQ("ok", pred[0].verdict);
	ASSERT_OK(fdbox_cancel(box));
	ASSERT_EQ(1, fdbox_box_info(box, &info, &e));
	EXPECT_EQ(FDBOX_BOX_OPEN, info.state);
	EXPECT_EQ(0, info.seal_flags);
	free(e);
	close(fd);
	close(box);
}

/* fdbox check of a target without fdbox_core: nothing will restore. */
TEST_F(stage1, target_without_core)
{
	int fd = ASSERT_OK(make_memfd("compat-none", "ram"));
	int box = ASSERT_OK(fdbox_create(self->dev, "compat-none"));
	struct predicted pred[MAX_PLANNED];
	size_t n;

	ASSERT_OK(fdbox_add(box, fd, "ram"));
	ASSERT_OK(fdbox_seal(box));
	EXPECT_EQ(13, run_check("--modules " NO_MODULES, pred, &n));
	EXPECT_EQ(0, run_check("compat-none --modules " V2_MODULES, pred, &n));
	ASSERT_EQ(1, n);
	EXPECT_STREQ("ok", pred[0].verdict);
	ASSERT_OK(fdbox_cancel(box));
	close(fd);
	close(box);
}

/* Seals the forward plan; fdbox check predicts the version 2 kernel. */
TEST_F(stage1, seal_and_predict)
{
	seal_plan(_metadata, self->dev, forward, ARRAY_SIZE(forward), NULL);
	predict(_metadata, V2_MODULES, forward, ARRAY_SIZE(forward), 12,
		"fdbox_compat.stage2");
}

FIXTURE(stage2) {
	int dev;
};

FIXTURE_SETUP(stage2)
{
	self->dev = -1;
	self->dev = open_stage(_metadata, V2_MODULES, FDBOX_TEST_VERSION_2);
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* Whether the output of shell command CMD has a line containing NEEDLE. */
static bool output_has(const char *cmd, const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f = popen(cmd, "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		fprintf(stderr, "# %s", line);
		found |= strstr(line, needle) != NULL;
	}
	pclose(f);
	return found;
}

/* What came in is what fdbox check predicted before the kexec. */
TEST_F(stage2, as_predicted)
{
	check_prediction(_metadata, self->dev, "fdbox_compat.stage2");
	check_restored(_metadata, self->dev, forward, ARRAY_SIZE(forward));
}

/* fdbox ls tells a missing handler from one that reads other versions. */
TEST_F(stage2, unavailable_in_words)
{
	EXPECT_TRUE(output_has("fdbox ls compat-a --in",
			       "the handler for iommufd is not loaded"));
	EXPECT_TRUE(output_has("fdbox ls compat-a --in",
			       "this kernel's fdbox-test handler reads versions 2-2; "
			       "the entry is version 3"));
	EXPECT_TRUE(output_has("fdbox ls compat-dep-bad --in",
			       "this kernel's fdbox-test handler reads versions 2-2; "
			       "the entry is version 1"));
}

/*
 * A handler that writes a newer version than FDBOX_SEAL_PREVIOUS allows
 * fails the seal with EPROTO, which changes nothing.
 */
TEST_F(stage2, seal_previous_enforced)
{
	int box = ASSERT_OK(fdbox_create(self->dev, "forged-newer"));
	int file = ASSERT_OK(fdbox_test_file("new", 3));
	struct fdbox_test_info info;
	char *before;

	ASSERT_OK(fdbox_test_config(file, 0, 2, -1, 0));
	ASSERT_OK(fdbox_add(box, file, "t"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EPROTO, fdbox_seal_flags(box, FDBOX_SEAL_PREVIOUS));
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_OK(fdbox_test_info(file, &info));
	EXPECT_EQ(0, info.serialized);
	free(before);
	close(file);
	close(box);
}

/*
 * The rollback: written at the previous version on request, for the version
 * 1 kernel, which fdbox check finds will restore it; without the request,
 * it won't.
 */
TEST_F(stage2, seal_previous_and_predict)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	int box, n, i;

	seal_plan(_metadata, self->dev, backward, ARRAY_SIZE(backward), BACK_BOX);
	box = ASSERT_OK(fdbox_open(self->dev, BACK_BOX, FDBOX_OPEN_OUTGOING));
	n = ASSERT_OK(fdbox_box_info(box, &info, &e));
	EXPECT_EQ(FDBOX_SEAL_PREVIOUS, info.seal_flags);
	for (i = 0; i < n; i++)
		EXPECT_EQ(1, e[i].version) TH_LOG("%s", e[i].name);
	free(e);
	close(box);
	predict(_metadata, V1_MODULES, backward, ARRAY_SIZE(backward), 12,
		"fdbox_compat.stage3");
}

FIXTURE(stage3) {
	int dev;
};

FIXTURE_SETUP(stage3)
{
	self->dev = -1;
	self->dev = open_stage(_metadata, V1_MODULES, FDBOX_TEST_VERSION);
}

FIXTURE_TEARDOWN(stage3)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* The version 1 kernel restores what the version 2 kernel wrote for it. */
TEST_F(stage3, rolled_back)
{
	check_prediction(_metadata, self->dev, "fdbox_compat.stage3");
	check_restored(_metadata, self->dev, backward, ARRAY_SIZE(backward));
}

/* "-s N" from the harness selects the fixture of stage N. */
int main(int argc, char **argv)
{
	static char *fixtures[] = { "stage1", "stage2", "stage3" };
	char *args[] = { argv[0], "-f", NULL, NULL };
	int stage;

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") || strlen(argv[2]) != 1 ||
	    argv[2][0] < '1' || argv[2][0] > '3') {
		fprintf(stderr, "usage: %s -s 1|2|3 | -l\n", argv[0]);
		return KSFT_FAIL;
	}
	stage = argv[2][0] - '1';
	args[2] = fixtures[stage];
	return test_harness_run(3, args);
}
