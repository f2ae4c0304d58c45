// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest, in a boot pair of its own (fdbox.tests=/forged): the
 * previous kernel hands over, as fdbox_core's, a blob whose checksum is right
 * but whose entries are forged, in a root beside slots and out-of-line
 * payloads that are forged too.
 *
 * "-s 1": load fdbox_format_test.ko mode=4, which forges the root and the
 * blobs and preserves the memory they name (selftests/format/format_test.rs,
 * modules forged and root, say what each slot and entry is).
 *
 * "-s 2": load fdbox_core, fdbox_memfd, fdbox_iommufd and fdbox_vfio, then:
 * - the entries whose record is forged (a page named twice, in one box or
 *   two; a page frame past RAM; a run past the format's MAX_PFN; 64 KiB
 *   pages; an IOAS mapping past its memfd) are corrupt from the start, and
 *   refuse RETRIEVE with ENODATA;
 * - the entries only KHO can catch (a run longer than what was preserved, a
 *   folio of a larger order than was preserved) are restorable until their
 *   RETRIEVE fails, and unavailable after it;
 * - a slot of the root that is corrupt, names memory KHO didn't preserve, or
 *   names a blob that is damaged, invalid or of a box taken already, costs
 *   only that box; an out-of-line payload whose chunk KHO didn't preserve,
 *   preserved at another size, is named twice, or fails its checksum, costs
 *   only that entry;
 * - memory two records name (two slots, or a chunk and a memfd's page) is
 *   trusted to neither: both boxes are lost, or both entries corrupt, and
 *   nothing of it is freed;
 * - a VFIO device that doesn't exist fails its RETRIEVE without an oops, and
 *   so does one whose subsystem id isn't the device's in its slot (another
 *   board there), with the kernel saying why;
 * - every clean entry restores byte for byte;
 * - DISCARD of every box leaves no bad page, BUG or new warning in the log;
 * - fdbox inspect verify finds the same corrupt entries in the blob.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"

#define FORMAT_TEST_MODULE "fdbox_format_test"
#define PAGE 4096
#define INCOMING_BLOB "/sys/kernel/debug/fdbox/incoming"
#define VERIFY_OUT "/tmp/forged-verify"

enum kind {
	CLEAN,		/* restores byte for byte */
	CORRUPT,	/* unavailable (corrupt) from the start */
	KHO_FORGED,	/* restorable until RETRIEVE checks it against KHO */
	KHO_DISCARD,	/* the same, discarded unretrieved */
	VALID,		/* valid; restored, if ever, as a dependency */
	NO_DEVICE,	/* a VFIO device that isn't there */
	OTHER_DEVICE,	/* a VFIO device that is there, but not the one preserved */
};

struct forged_entry {
	const char *box;
	const char *name;
	const char *compatible;
	enum kind kind;
	int seed;		/* CLEAN: the pattern's seed, also in the name */
	int pages;		/* CLEAN: the file's length in pages */
	bool hidden;		/* CORRUPT, but not to a reader blind to RAM */
};

/* As format_test.rs forges them; the seeds and lengths are in its table too. */
static const struct forged_entry entries[] = {
	{ "forged", "clean-a", "memfd", CLEAN, 11, 8 },
	{ "forged", "longer", "memfd", KHO_FORGED },
	{ "forged", "order", "memfd", KHO_FORGED },
	{ "forged", "longer-d", "memfd", KHO_DISCARD },
	{ "forged", "order-d", "memfd", KHO_DISCARD },
	{ "forged", "dup-1", "memfd", CORRUPT },
	{ "forged", "dup-2", "memfd", CORRUPT },
	{ "forged", "past-ram", "memfd", CORRUPT, .hidden = true },
	{ "forged", "count40", "memfd", CORRUPT },
	{ "forged", "shift16", "memfd", CORRUPT },
	{ "forged", "clean-b", "memfd", CLEAN, 12, 4 },
	{ "forged", "dup-x2", "memfd", CORRUPT },
	{ "forged-2", "dup-x", "memfd", CORRUPT },
	{ "forged-2", "clean-c", "memfd", CLEAN, 13, 2 },
	{ "forged-iommu", "ram", "memfd", CLEAN, 14, 4 },
	{ "forged-iommu", "iommufd", "iommufd", CORRUPT },
	{ "forged-vfio", "ram", "memfd", CLEAN, 15, 4 },
	{ "forged-vfio", "iommufd", "iommufd", VALID },
	{ "forged-vfio", "dev", "vfio", NO_DEVICE },
	{ "forged-vfio", "other", "vfio", OTHER_DEVICE },
	/* Payloads out of line: one in two sound chunks, five forged. */
	{ "root-chunks", "chunked", "memfd", CLEAN, 21, 4000 },
	{ "root-chunks", "chunk-gone", "memfd", CORRUPT, .hidden = true },
	{ "root-chunks", "chunk-size", "memfd", CORRUPT, .hidden = true },
	{ "root-chunks", "chunk-crc", "memfd", CORRUPT, .hidden = true },
	{ "root-chunks", "chunk-twice-1", "memfd", CORRUPT },
	{ "root-chunks", "chunk-twice-2", "memfd", CORRUPT },
	/* One page, a memfd's and a chunk's: neither is trusted, nor freed. */
	{ "root-cross", "victim", "memfd", CORRUPT, .hidden = true },
	{ "root-cross", "thief", "memfd", CORRUPT, .hidden = true },
};

static const struct {
	const char *name;
	__u32 n_entries;
} boxes[] = {
	{ "forged", 12 },
	{ "forged-2", 2 },
	{ "forged-iommu", 2 },
	{ "forged-vfio", 4 },
	{ "root-chunks", 6 },
	{ "root-cross", 2 },
};

/*
 * What fdbox_core logs for each slot of the root it refuses (format_test.rs,
 * module root, says how each is forged), and the boxes they named.
 */
static const char *const root_refusals[] = {
	"slot 1 (at byte 48) is corrupt: its box is lost",
	"slot 2 names 100 bytes at ",
	"slot 3 names 8192 bytes at ",
	"not a block KHO preserved for them: its box is lost",
	"slot 4's blob is unusable: ",
	"slot 5's blob is unusable: ",
	"slot 7: a box of the same owner and name came first: lost",
	"slot 10: a box of the same owner and name came first: lost",
	"slot 11's blob is not one box: lost",
	"records name memory another one names",
};

static const char *const lost_boxes[] = {
	"root-lost-crc", "root-lost-invalid", "root-shared", "root-two-",
};

/* Kernel log lines that mean the kernel went wrong. */
static const char *const bad_words[] = { "Bad page", "BUG", "Oops" };
#define WARNING "WARNING:"
/* WARNING lines in the log before stage 2 loaded anything. */
static int warnings_before = -1;

/* The whole kernel log, NUL-terminated; free() it. NULL on error. */
static char *kernel_log(void)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf;
	int n;

	if (size <= 0)
		return NULL;
	buf = malloc(size + 1);
	if (!buf)
		return NULL;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* How many lines of LOG contain WORD. */
static int count_lines(const char *log, const char *word)
{
	const char *p = log;
	int n = 0;

	while ((p = strstr(p, word))) {
		n++;
		p = strchr(p, '\n');
		if (!p)
			break;
	}
	return n;
}

/* Prints the lines of LOG that contain WORD, as diagnostics. */
static void print_lines(const char *log, const char *word)
{
	const char *p = log;

	while ((p = strstr(p, word))) {
		const char *start = p, *end = strchr(p, '\n');

		while (start > log && start[-1] != '\n')
			start--;
		ksft_print_msg("%.*s\n", (int)(end ? end - start : (long)strlen(start)), start);
		if (!end)
			break;
		p = end;
	}
}

/* The pattern format_test.rs wrote: byte I of page P. */
static unsigned char pattern(int seed, long p, long i)
{
	return (unsigned char)(p * 131 + i + seed);
}

/* The first byte of BUF (LEN bytes of a file from offset 0) off the pattern, or -1. */
static long first_mismatch(const unsigned char *buf, long len, int seed)
{
	long off;

	for (off = 0; off < len; off++)
		if (buf[off] != pattern(seed, off / PAGE, off % PAGE))
			return off;
	return -1;
}

/* Loads fdbox_format_test.ko with PARAMS; 0 or -errno. */
static int load_with_params(const char *name, const char *params)
{
	const char *dir = getenv("FDBOX_MODULES");
	char path[PATH_MAX];
	int fd, ret;

	if (!dir || !*dir)
		dir = FDBOX_MODULES_DEFAULT;
	snprintf(path, sizeof(path), "%s/%s.ko", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static const char *kind_name(enum kind k)
{
	switch (k) {
	case CLEAN: return "clean";
	case CORRUPT: return "corrupt";
	case KHO_FORGED: return "forged past KHO";
	case KHO_DISCARD: return "forged past KHO, discarded";
	case VALID: return "valid";
	case NO_DEVICE: return "no device";
	case OTHER_DEVICE: return "other device";
	}
	return "?";
}

FIXTURE(stage1) {
};

FIXTURE_SETUP(stage1)
{
}

FIXTURE_TEARDOWN(stage1)
{
}

/* fdbox_format_test forges the blob and hands it over as fdbox_core's. */
TEST_F(stage1, forged_blob_handed_over)
{
	int ret;

	ASSERT_FALSE(fdbox_module_loaded(FDBOX_CORE_MODULE))
		TH_LOG("fdbox_core would hand over a subtree of the same name");
	ret = load_with_params(FORMAT_TEST_MODULE, "mode=4");
	ASSERT_EQ(0, ret) TH_LOG("loading %s.ko mode=4: %s (the kernel log says why)",
				 FORMAT_TEST_MODULE, fdbox_errname(ret));
}

FIXTURE(stage2) {
	int dev;
	int box[ARRAY_SIZE(boxes)];
};

/*
 * fdbox_core first: it decides what is corrupt as it loads, before any
 * handler is there. Then the handlers; nothing else loads them in this boot.
 */
FIXTURE_SETUP(stage2)
{
	size_t i;

	self->dev = -1;
	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		self->box[i] = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE("fdbox_memfd");
	ASSERT_MODULE("fdbox_iommufd");
	ASSERT_MODULE("fdbox_vfio");
	self->dev = ASSERT_OK(fdbox_open_dev());
	/* Once every entry is retrieved or discarded, the boxes are gone. */
	for (i = 0; i < ARRAY_SIZE(boxes); i++) {
		self->box[i] = fdbox_open(self->dev, boxes[i].name,
					  FDBOX_OPEN_INCOMING);
		ASSERT_TRUE(self->box[i] >= 0 || self->box[i] == -ENOENT)
			TH_LOG("OPEN_BOX %s: %s", boxes[i].name,
			       fdbox_errname(self->box[i]));
	}
}

FIXTURE_TEARDOWN(stage2)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		if (self->box[i] >= 0)
			close(self->box[i]);
	if (self->dev >= 0)
		close(self->dev);
}

/* The box fd of E's box. */
static int box_of(FIXTURE_DATA(stage2) *self, const struct forged_entry *e)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		if (!strcmp(boxes[i].name, e->box))
			return self->box[i];
	return -1;
}

/* E's BOX_INFO entry into *OUT: 0, or -errno. */
static int entry_info(FIXTURE_DATA(stage2) *self, const struct forged_entry *e,
		      struct fdbox_entry_info *out)
{
	const struct fdbox_entry_info *found;
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	int n = fdbox_box_info(box_of(self, e), &info, &all);

	if (n < 0)
		return n;
	found = fdbox_find_entry(all, n, e->name);
	if (found)
		*out = *found;
	free(all);
	return found ? 0 : -ENOENT;
}

/* E reads STATE, and REASON unless -1. */
#define ASSERT_STATE(e, want_state, want_reason) do {			\
	struct fdbox_entry_info _i;					\
	int _r = entry_info(self, e, &_i);				\
	ASSERT_EQ(0, _r) TH_LOG("entry %s/%s: %s", (e)->box, (e)->name,	\
				fdbox_errname(_r));			\
	ASSERT_EQ(want_state, _i.state)					\
		TH_LOG("entry %s/%s (%s): reason %u", (e)->box,		\
		       (e)->name, kind_name((e)->kind), _i.reason);	\
	if ((int)(want_reason) >= 0)					\
		ASSERT_EQ(want_reason, _i.reason)			\
			TH_LOG("entry %s/%s (%s)", (e)->box, (e)->name,	\
			       kind_name((e)->kind));			\
} while (0)

/* The blob was taken, its boxes are there, and the handlers registered. */
TEST_F(stage2, handed_over)
{
	static const char *const handlers[] = { "memfd", "iommufd", "vfio" };
	struct fdbox_handler_info *h;
	struct fdbox_get_caps caps;
	size_t i;
	int n;

	n = ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	for (i = 0; i < ARRAY_SIZE(handlers); i++) {
		const char *name = handlers[i];

		EXPECT_TRUE(fdbox_find_handler(h, n, name) != NULL)
			TH_LOG("handler %s isn't registered", name);
	}
	free(h);
	ASSERT_EQ(FDBOX_INCOMING_OK, caps.incoming);
	for (i = 0; i < ARRAY_SIZE(boxes); i++) {
		struct fdbox_box_summary s;

		ASSERT_EQ(0, fdbox_find_box(self->dev, boxes[i].name,
					    FDBOX_DIR_INCOMING, &s))
			TH_LOG("no incoming box %s", boxes[i].name);
		ASSERT_LE(0, self->box[i]) TH_LOG("OPEN_BOX %s", boxes[i].name);
		EXPECT_EQ(0, s.owner_uid);
		EXPECT_EQ(0, s.owner_gid);
		EXPECT_EQ(boxes[i].n_entries, s.n_entries)
			TH_LOG("box %s", boxes[i].name);
	}
}

/*
 * Before any RETRIEVE, each forged record is corrupt, and the kernel log
 * says so; the rest are restorable, the forgeries only KHO knows about too.
 */
TEST_F(stage2, corrupt_at_load)
{
	char *log = kernel_log();
	char line[2 * FDBOX_NAME_LEN + 32];
	size_t i;

	ASSERT_TRUE(log != NULL) TH_LOG("klogctl: %s", fdbox_errname(-errno));
	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];
		struct fdbox_entry_info info;

		ASSERT_EQ(0, entry_info(self, e, &info))
			TH_LOG("no entry %s/%s", e->box, e->name);
		EXPECT_STREQ(e->compatible, info.compatible);
		if (e->kind == CORRUPT) {
			EXPECT_EQ(FDBOX_ENTRY_UNAVAILABLE, info.state)
				TH_LOG("entry %s/%s", e->box, e->name);
			EXPECT_EQ(FDBOX_REASON_CORRUPT, info.reason)
				TH_LOG("entry %s/%s", e->box, e->name);
			snprintf(line, sizeof(line), "box %s: entry %s is corrupt",
				 e->box, e->name);
			EXPECT_TRUE(strstr(log, line) != NULL)
				TH_LOG("no \"%s\" in the kernel log", line);
		} else {
			EXPECT_EQ(FDBOX_ENTRY_RESTORABLE, info.state)
				TH_LOG("entry %s/%s (%s): reason %u", e->box,
				       e->name, kind_name(e->kind), info.reason);
		}
	}
	free(log);
}

/*
 * Each slot of the root that fails its checks costs only its own box, and
 * the kernel log says why; the root's other boxes are all there.
 */
TEST_F(stage2, root_refusals_cost_one_box)
{
	char *log = kernel_log();
	size_t i;

	ASSERT_TRUE(log != NULL) TH_LOG("klogctl: %s", fdbox_errname(-errno));
	for (i = 0; i < ARRAY_SIZE(root_refusals); i++) {
		const char *want = root_refusals[i];

		EXPECT_TRUE(strstr(log, want) != NULL)
			TH_LOG("no \"%s\" in the kernel log", want);
	}
	free(log);
	for (i = 0; i < ARRAY_SIZE(lost_boxes); i++) {
		const char *lost = lost_boxes[i];

		EXPECT_EQ(0, fdbox_count_boxes(self->dev, lost))
			TH_LOG("box %s was taken over", lost);
	}
	EXPECT_EQ(1, fdbox_count_boxes(self->dev, "root-chunks"));
}

/*
 * The inspector reads the same blob from debugfs and lists the same corrupt
 * entries; all but past-ram, which takes knowing where RAM ends.
 */
TEST_F(stage2, inspector_agrees)
{
	char want[2 * FDBOX_NAME_LEN + 32];
	char out[16384];
	ssize_t len;
	size_t i;
	int fd, status;

	status = system("fdbox inspect verify " INCOMING_BLOB " >" VERIFY_OUT " 2>&1");
	fd = ASSERT_OK(fdbox_sys(open(VERIFY_OUT, O_RDONLY | O_CLOEXEC)));
	len = read(fd, out, sizeof(out) - 1);
	close(fd);
	ASSERT_LE(0, len);
	out[len] = '\0';
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0)
		TH_LOG("fdbox inspect verify: status %#x:\n%s", status, out);
	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];
		bool listed;

		snprintf(want, sizeof(want), "entry %s/%s: corrupt", e->box, e->name);
		listed = strstr(out, want) != NULL;
		EXPECT_EQ(e->kind == CORRUPT && !e->hidden, listed)
			TH_LOG("%s/%s (%s): %s listed:\n%s", e->box, e->name,
			       kind_name(e->kind), listed ? "" : "not", out);
	}
}

/* RETRIEVE of a corrupt entry fails with ENODATA, and changes nothing. */
TEST_F(stage2, corrupt_refuse_retrieve)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];

		if (e->kind != CORRUPT)
			continue;
		EXPECT_FAILS(ENODATA, fdbox_retrieve(box_of(self, e), e->name))
			TH_LOG("entry %s/%s", e->box, e->name);
		ASSERT_STATE(e, FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_CORRUPT);
	}
}

/* A counter of /sys/kernel/debug/fdbox_memfd/stats, or -1. */
static long long memfd_stat(const char *key)
{
	FILE *f = fopen("/sys/kernel/debug/fdbox_memfd/stats", "re");
	char name[64];
	long long v, found = -1;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &v) == 2)
		if (!strcmp(name, key))
			found = v;
	fclose(f);
	return found;
}

/*
 * "longer-d" and "order-d" are forged like "longer" and "order", and
 * discarded unretrieved: DISCARD frees only the blocks KHO vouches for,
 * stops at the first it doesn't (fdbox_memfd counts it as refused), and
 * touches no page it wasn't handed. kernel_unhurt checks that no page was
 * freed wrongly; the boot runs with check_pages=1.
 */
TEST_F(stage2, kho_check_guards_discard)
{
	long long refused = memfd_stat("refused");
	int n = 0;
	size_t i;

	ASSERT_LE(0, refused);
	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];

		if (e->kind != KHO_DISCARD)
			continue;
		EXPECT_EQ(0, fdbox_discard(box_of(self, e), e->name))
			TH_LOG("DISCARD of %s/%s", e->box, e->name);
		ASSERT_STATE(e, FDBOX_ENTRY_DISCARDED, FDBOX_REASON_NONE);
		n++;
	}
	EXPECT_EQ(refused + n, memfd_stat("refused"));
}

/*
 * "longer" names 511 pages KHO never preserved, "order" an order-2 folio
 * where KHO preserved one page: RETRIEVE checks each block against KHO, and
 * fails; the entry is then unavailable for good.
 */
TEST_F(stage2, kho_check_refuses)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];
		struct fdbox_entry_info info;
		int fd;

		if (e->kind != KHO_FORGED)
			continue;
		fd = fdbox_retrieve(box_of(self, e), e->name);
		if (fd >= 0) {
			close(fd);
			/* It handed out memory KHO never vouched for. */
			EXPECT_GT(0, fd) TH_LOG("RETRIEVE %s/%s succeeded",
						e->box, e->name);
			continue;
		}
		ksft_print_msg("RETRIEVE %s/%s: %s\n", e->box, e->name, fdbox_errname(fd));
		ASSERT_EQ(0, entry_info(self, e, &info));
		EXPECT_EQ(FDBOX_ENTRY_UNAVAILABLE, info.state)
			TH_LOG("entry %s/%s", e->box, e->name);
		EXPECT_EQ(FDBOX_REASON_RESTORE_FAILED, info.reason)
			TH_LOG("entry %s/%s", e->box, e->name);
		EXPECT_FAILS(ENODATA, fdbox_retrieve(box_of(self, e), e->name))
			TH_LOG("second RETRIEVE of %s/%s", e->box, e->name);
	}
}

/* Every clean entry restores, named, sized, and byte for byte. */
TEST_F(stage2, clean_entries_restore)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];
		long len = (long)e->pages * PAGE, bad;
		char path[64], link[PATH_MAX] = "";
		unsigned char *buf, *map;
		const char *seed;
		struct stat st;
		ssize_t n;
		int fd;

		if (e->kind != CLEAN)
			continue;
		fd = fdbox_retrieve(box_of(self, e), e->name);
		ASSERT_LE(0, fd) TH_LOG("RETRIEVE %s/%s: %s", e->box, e->name,
					fdbox_errname(fd));
		ASSERT_CLOEXEC(fd);
		ASSERT_EQ(0, fstat(fd, &st));
		EXPECT_EQ(len, st.st_size) TH_LOG("entry %s/%s", e->box, e->name);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ASSERT_LT(0, readlink(path, link, sizeof(link) - 1));
		seed = strstr(link, "fdbox-forged-seed-");
		EXPECT_TRUE(seed && atoi(seed + strlen("fdbox-forged-seed-")) == e->seed)
			TH_LOG("entry %s/%s: %s, not the memfd of seed %d",
			       e->box, e->name, link, e->seed);

		buf = malloc(len);
		ASSERT_TRUE(buf != NULL);
		n = pread(fd, buf, len, 0);
		EXPECT_EQ(len, n) TH_LOG("pread %s/%s: %s", e->box, e->name,
					 n < 0 ? strerror(errno) : "short");
		if (n == len) {
			bad = first_mismatch(buf, len, e->seed);
			EXPECT_EQ(-1, bad)
				TH_LOG("entry %s/%s: byte %ld is %#x, not %#x",
				       e->box, e->name, bad, buf[bad],
				       pattern(e->seed, bad / PAGE, bad % PAGE));
		}
		free(buf);

		map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap %s/%s: %s", e->box,
						  e->name, strerror(errno));
		bad = first_mismatch(map, len, e->seed);
		EXPECT_EQ(-1, bad) TH_LOG("entry %s/%s, mapped: byte %ld", e->box,
					  e->name, bad);
		munmap(map, len);
		close(fd);
		ASSERT_STATE(e, FDBOX_ENTRY_RETRIEVED, -1);
	}
}

/*
 * The VFIO device 0000:ff:1f.7 isn't there: its RETRIEVE fails with an
 * errno (ENODEV, most likely), the kernel stays up, and the entry is then
 * unavailable. Its memfd was retrieved, clean, before.
 */
TEST_F(stage2, missing_device)
{
	const struct forged_entry *e = NULL;
	size_t i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(entries); i++)
		if (entries[i].kind == NO_DEVICE)
			e = &entries[i];
	ASSERT_TRUE(e != NULL);
	fd = fdbox_retrieve(box_of(self, e), e->name);
	if (fd >= 0)
		close(fd);
	ASSERT_GT(0, fd) TH_LOG("RETRIEVE %s/%s succeeded", e->box, e->name);
	ksft_print_msg("RETRIEVE %s/%s: %s\n", e->box, e->name, fdbox_errname(fd));
	ASSERT_STATE(e, FDBOX_ENTRY_UNAVAILABLE, -1);
}

/*
 * edu is where "other" says, with its vendor and device IDs, but not its
 * subsystem ID: RETRIEVE refuses it with ENODEV rather than hand a guest
 * another board, the kernel says why, and the entry is unavailable.
 */
TEST_F(stage2, other_device_refused)
{
	const struct forged_entry *e = NULL;
	char *log;
	size_t i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(entries); i++)
		if (entries[i].kind == OTHER_DEVICE)
			e = &entries[i];
	ASSERT_TRUE(e != NULL);
	fd = fdbox_retrieve(box_of(self, e), e->name);
	if (fd >= 0)
		close(fd);
	ASSERT_EQ(-ENODEV, fd) TH_LOG("RETRIEVE %s/%s: %s", e->box, e->name,
				      fdbox_errname(fd));
	ASSERT_STATE(e, FDBOX_ENTRY_UNAVAILABLE, -1);
	log = kernel_log();
	ASSERT_TRUE(log != NULL) TH_LOG("klogctl: %s", fdbox_errname(-errno));
	EXPECT_EQ(1, count_lines(log, "is not the device that was preserved: subsystem 1af4:1100"))
		TH_LOG("the kernel didn't say why");
	free(log);
}

/*
 * DISCARD of every box frees what can be freed: the clean entries' memory
 * went with their fds, a forged entry's only where KHO vouches for it, a
 * corrupt entry's not at all. Nothing is left restorable.
 */
TEST_F(stage2, discard_everything)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++) {
		const char *name = boxes[i].name;
		int ret = fdbox_discard(self->box[i], NULL);

		EXPECT_EQ(0, ret) TH_LOG("DISCARD of box %s: %s", name,
					 fdbox_errname(ret));
	}
	for (i = 0; i < ARRAY_SIZE(entries); i++) {
		const struct forged_entry *e = &entries[i];
		struct fdbox_entry_info info;
		int ret = entry_info(self, e, &info);

		/* A box left with nothing to give may be gone. */
		if (ret == -ENOENT || ret == -ENODEV)
			continue;
		ASSERT_EQ(0, ret) TH_LOG("BOX_INFO of %s: %s", e->box, fdbox_errname(ret));
		EXPECT_NE(FDBOX_ENTRY_RESTORABLE, info.state)
			TH_LOG("entry %s/%s is still restorable", e->box, e->name);
	}
}

/* With their fds closed, boxes with nothing left to give are gone. */
TEST_F(stage2, nothing_left)
{
	EXPECT_EQ(0, fdbox_count_boxes(self->dev, "forged"));
	EXPECT_EQ(0, fdbox_count_boxes(self->dev, "root-"));
}

/*
 * Nothing of it hurt the kernel: no bad page (a page freed twice, or freed
 * while in use), no BUG or oops, no warning since stage 2 began.
 */
TEST_F(stage2, kernel_unhurt)
{
	char *log = kernel_log();
	size_t i;
	int n;

	ASSERT_TRUE(log != NULL) TH_LOG("klogctl: %s", fdbox_errname(-errno));
	for (i = 0; i < ARRAY_SIZE(bad_words); i++) {
		n = count_lines(log, bad_words[i]);
		if (n)
			print_lines(log, bad_words[i]);
		EXPECT_EQ(0, n) TH_LOG("\"%s\" in the kernel log", bad_words[i]);
	}
	n = count_lines(log, WARNING);
	if (n > warnings_before)
		print_lines(log, WARNING);
	EXPECT_GE(warnings_before, n) TH_LOG("new warnings in the kernel log");
	free(log);
}

/* "-s N" from the harness selects the fixture of stage N. */
int main(int argc, char **argv)
{
	char *args[] = { argv[0], "-f", NULL, NULL };
	char *log;

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") ||
	    (strcmp(argv[2], "1") && strcmp(argv[2], "2"))) {
		fprintf(stderr, "usage: %s -s 1|2 | -l\n", argv[0]);
		return KSFT_FAIL;
	}
	if (!strcmp(argv[2], "2")) {
		/* Before anything is loaded: warnings of the boot itself don't count. */
		log = kernel_log();
		warnings_before = log ? count_lines(log, WARNING) : 0;
		free(log);
	}
	args[2] = strcmp(argv[2], "1") ? "stage2" : "stage1";
	return test_harness_run(3, args);
}
