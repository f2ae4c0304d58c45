// SPDX-License-Identifier: GPL-2.0
/*
 * fdbox-kexec: load a kernel with kexec_file_load(2), the only kexec path
 * that carries KHO state, and reboot into it.
 *
 *   fdbox-kexec KERNEL INITRD CMDLINE
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_or_die(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "fdbox-kexec: %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	int kernel_fd, initrd_fd;
	const char *cmdline;

	if (argc != 4) {
		fprintf(stderr, "usage: fdbox-kexec KERNEL INITRD CMDLINE\n");
		return 2;
	}
	kernel_fd = open_or_die(argv[1]);
	initrd_fd = open_or_die(argv[2]);
	cmdline = argv[3];

	if (syscall(SYS_kexec_file_load, kernel_fd, initrd_fd,
		    strlen(cmdline) + 1, cmdline, 0UL)) {
		fprintf(stderr, "fdbox-kexec: kexec_file_load: %s\n",
			strerror(errno));
		return 1;
	}
	sync();
	reboot(LINUX_REBOOT_CMD_KEXEC);
	fprintf(stderr, "fdbox-kexec: reboot(KEXEC): %s\n", strerror(errno));
	return 1;
}
