/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The user interface of fdbox_test.ko, the test handler: a file type that
 * carries a little data across the kexec, with failure injection. Built by
 * the project for its tests; never loaded in production.
 *
 * Each open() of /dev/fdbox_test creates a test file. write() replaces its
 * data (at most FDBOX_TEST_DATA_MAX bytes, from offset 0); read() returns it.
 * Its handler's compatible string is "fdbox-test".
 */
#ifndef _FDBOX_TEST_H
#define _FDBOX_TEST_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define FDBOX_TEST_COMPATIBLE "fdbox-test"
#define FDBOX_TEST_DATA_MAX 4096
/*
 * The payload version fdbox_test.ko writes and reads. compat_kexec's second
 * build of it writes and reads version 2 (version 1 plus a checksum of the
 * data), and writes version 1 for a box sealed with FDBOX_SEAL_PREVIOUS.
 */
#define FDBOX_TEST_VERSION 1
#define FDBOX_TEST_VERSION_2 2

/* Failure injection, per file (struct fdbox_test_config.flags). */
#define FDBOX_TEST_FAIL_PREPARE (1U << 0)	/* prepare fails: -EIO */
#define FDBOX_TEST_FAIL_SERIALIZE (1U << 1)	/* serialize fails: -EIO */
#define FDBOX_TEST_FAIL_RESTORE (1U << 2)	/* restore fails: -EIO */

/**
 * struct fdbox_test_config - argument of FDBOX_TEST_CONFIG
 * @flags: FDBOX_TEST_FAIL_* bits
 * @payload_version: the payload version to write, in that version's layout;
 *	0 for the handler's own (at most the box's, see FDBOX_SEAL_PREVIOUS).
 *	Any other version is one this handler can't read after the kexec.
 * @dep_fd: a test file this one depends on, or -1; it must be in the same
 *	box at seal time, and is restored first
 * @__reserved: zero
 * @ballast: bytes of extra memory preserved with the file and freed by
 *	restore or discard, rounded up to 4 MiB chunks (at most 1 GiB)
 */
struct fdbox_test_config {
	__u32 flags;
	__u32 payload_version;
	__s32 dep_fd;
	__u32 __reserved;
	__u64 ballast;
};

/**
 * struct fdbox_test_info - argument of FDBOX_TEST_INFO
 * @prepared: 1 while the file is prepared (in an outgoing box)
 * @serialized: 1 while the file is serialized (in a sealed box)
 * @restored: 1 if the file came out of a restore
 * @dep_len: after a restore, the length of the dependency's data
 * @prepare_calls: prepare calls on this file so far
 * @unprepare_calls: unprepare calls on this file so far
 * @dep_data: after a restore, the first bytes of the dependency's data, as
 *	the dependency's restored file held them when this one was restored
 */
struct fdbox_test_info {
	__u32 prepared;
	__u32 serialized;
	__u32 restored;
	__u32 dep_len;
	__u32 prepare_calls;
	__u32 unprepare_calls;
	__u8 dep_data[64];
};

#define FDBOX_TEST_CONFIG _IOW(0xBB, 0x80, struct fdbox_test_config)
#define FDBOX_TEST_INFO _IOR(0xBB, 0x81, struct fdbox_test_info)

#endif /* _FDBOX_TEST_H */
