/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The handler ABI of fdbox_core, for C code: the same table that
 * preservable.rs defines for Rust handlers (struct HandlerOps there; keep the
 * two in step). A handler fills one table, registers it with
 * fdbox_register_handler() and unregisters it before the table goes away.
 * Documentation/fdbox/handlers.md describes every callback.
 */
#ifndef FDBOX_HANDLER_H
#define FDBOX_HANDLER_H

#include <linux/types.h>

struct file;
struct module;

#define FDBOX_HANDLER_ABI_VERSION 2

/* Where prepare() names the files an entry depends on. */
struct fdbox_dep_sink {
	void *ctx;
	int (*add)(void *ctx, struct file *file);
};

/* Where serialize() writes an entry's payload. */
struct fdbox_payload_sink {
	void *ctx;
	int (*write)(void *ctx, const u8 *data, size_t len);
	/* The index of dependency @file in restore()'s @deps, or -ENOENT. */
	int (*dep_index)(void *ctx, struct file *file);
	/*
	 * The newest payload version serialize() may write: the handler's
	 * version, or one less for a box sealed with FDBOX_SEAL_PREVIOUS
	 * (-EOPNOTSUPP if the handler can't write it).
	 */
	u32 max_version;
};

/* What settle() found and did, as FDBOX_SETTLE_FD reports it. */
struct fdbox_settled {
	u64 unsettled;
	u64 migrated;
};

struct fdbox_handler_ops {
	u32 abi_version;	/* FDBOX_HANDLER_ABI_VERSION */
	u32 size;		/* sizeof(struct fdbox_handler_ops) */
	const char *compatible;	/* UTF-8, 1 to 63 bytes */
	u32 version;		/* payload version serialize() writes */
	u32 min_version;	/* oldest payload version restore() reads */
	struct module *owner;	/* pinned while the handler has entries;
				 * NULL for built-in code */
	bool (*can_preserve)(struct file *file);
	int (*prepare)(struct file *file, struct fdbox_dep_sink *deps,
		       void **state);
	void (*unprepare)(struct file *file, void *state);
	int (*serialize)(struct file *file, void *state,
			 struct fdbox_payload_sink *out, u32 *version);
	void (*unserialize)(struct file *file, void *state);
	int (*restore)(u32 version, const u8 *payload, size_t len,
		       struct file *const *deps, size_t n_deps,
		       struct file **out);
	void (*discard)(u32 version, const u8 *payload, size_t len);
	/* FDBOX_SETTLE_FD; NULL if the handler has no such notion. */
	int (*settle)(struct file *file, u32 flags,
		      struct fdbox_settled *out);
};

/*
 * Returns 0, -EINVAL for a malformed table, -EEXIST if a handler with the
 * same compatible string is registered, -ENOSPC past 64 handlers, or -ENOMEM.
 */
int fdbox_register_handler(const struct fdbox_handler_ops *ops);
void fdbox_unregister_handler(const struct fdbox_handler_ops *ops);

#endif
