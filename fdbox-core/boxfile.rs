// SPDX-License-Identifier: GPL-2.0

//! Box fds: an anonymous-inode file per open of a box, whose ioctls act on that box.

use crate::{
    incoming,
    outgoing,
    state::{
        self,
        FdBox,
        Kind,
        TABLE, //
    },
    uapi::*, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_ulong,
        c_void, //
    },
    fs::{
        file::FileDescriptorReservation,
        File,
        LocalFile, //
    },
    ioctl::_IO,
    module::this_module,
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    types::ForeignOwnable, //
};

// `file_operations` is only passed by pointer, so the zero-sized bindgen members of
// `struct module` don't matter.
#[allow(improper_ctypes)]
extern "C" {
    fn anon_inode_getfile(
        name: *const c_char,
        fops: *const bindings::file_operations,
        private: *mut c_void,
        flags: c_int,
    ) -> *mut bindings::file;
}

/// The file operations of box fds.
struct BoxFile;

impl BoxFile {
    /// The one table of box fds; one function, so that every use sees the same address.
    const fn vtable() -> &'static bindings::file_operations {
        &Self::VTABLE
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: this_module::<crate::LocalModule>().as_ptr(),
        release: Some(Self::release),
        unlocked_ioctl: Some(Self::ioctl),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        // SAFETY: All zeroes is a valid `file_operations`.
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// `file` must be a box fd being released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The private data of a box fd came from `Arc::into_foreign` in `new_file`, and
        // the release call owns it.
        let fdbox = unsafe { Arc::<FdBox>::from_foreign((*file).private_data) };
        close(fdbox);
        0
    }

    /// # Safety
    ///
    /// `file` must be a box fd.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The private data of a box fd came from `Arc::into_foreign` in `new_file`, and
        // stays until its release, which can't run during an ioctl.
        let fdbox = unsafe { Arc::<FdBox>::borrow((*file).private_data) };
        // CAST: An `int` errno or 0 widens to `long`.
        match dispatch(&fdbox, cmd, arg) {
            Ok(()) => 0,
            Err(err) => err.to_errno() as c_long,
        }
    }
}

/// Whether `file` is a box fd.
pub(crate) fn is_box_file(file: &File) -> bool {
    // SAFETY: `file` is valid; `f_op` is set for the life of the file.
    let fops = unsafe { (*file.as_ptr()).f_op };
    core::ptr::eq(fops, BoxFile::vtable())
}

/// A new box fd holding `fdbox`. The caller counts it in the box's [`state::Slot`]; its
/// release uncounts it.
pub(crate) fn new_file(fdbox: Arc<FdBox>) -> Result<ARef<File>> {
    let private = fdbox.into_foreign();
    // SAFETY: The name is a static string, the table is static, and the private data is
    // released by `release` or below.
    let file = unsafe {
        anon_inode_getfile(
            c"[fdbox]".as_char_ptr(),
            BoxFile::vtable(),
            private,
            // CAST: Flag constants that fit `int`.
            (bindings::O_RDWR | bindings::O_CLOEXEC) as c_int,
        )
    };
    let file = match kernel::error::from_err_ptr(file) {
        Ok(file) => file,
        Err(err) => {
            // SAFETY: No file took `private`, which came from `into_foreign` above.
            drop(unsafe { Arc::<FdBox>::from_foreign(private) });
            return Err(err);
        }
    };
    let file = core::ptr::NonNull::new(file.cast::<File>()).ok_or(ENOMEM)?;
    // SAFETY: `anon_inode_getfile` returned a new reference, which moves to the `ARef`.
    Ok(unsafe { ARef::from_raw(file) })
}

/// The close of a box fd. After the last one, an open outgoing box is discarded, its entries
/// unprepared, and an incoming box with nothing left is released.
fn close(fdbox: Arc<FdBox>) {
    // Not killable: a release can't fail.
    let mut inner = fdbox.inner.lock();
    let gone = {
        let mut table = TABLE.lock();
        let Some(slot) = table.slot_mut(fdbox.id) else {
            // A box fd that was never counted: its box never made it into the table.
            return;
        };
        slot.fds = slot.fds.saturating_sub(1);
        slot.fds == 0 && inner.is_disposable() && table.remove(fdbox.id).is_some()
    };
    if gone {
        let contents = inner.take();
        fdbox.publish(&inner);
        drop(inner);
        // Unprepared outside every lock; each file stays boxed until its entry is.
        drop(contents);
    }
}

/// Reads a name field.
fn name_of(array: &[core::ffi::c_char; NAME_LEN]) -> Result<Name> {
    Name::from_array(array)
}

/// Dispatches a box fd ioctl.
fn dispatch(b: &FdBox, cmd: u32, arg: usize) -> Result {
    let nr = |n: u32| _IO(FDBOX_IOCTL_TYPE, n);
    match cmd {
        c if c == nr(FDBOX_CMD_BOX_ADD) => add(b, arg),
        c if c == nr(FDBOX_CMD_BOX_REMOVE) => {
            let a = Arg::<fdbox_box_remove>::read(arg)?;
            check_flags(a.val.flags, 0)?;
            let name = name_of(&a.val.name)?;
            outgoing::remove(b, &name)
        }
        c if c == nr(FDBOX_CMD_BOX_SEAL) => {
            let a = Arg::<fdbox_box_seal>::read(arg)?;
            check_flags(a.val.flags, FDBOX_SEAL_PREVIOUS)?;
            outgoing::seal(b, a.val.flags)
        }
        c if c == nr(FDBOX_CMD_BOX_CANCEL) => {
            let a = Arg::<fdbox_box_cancel>::read(arg)?;
            check_flags(a.val.flags, 0)?;
            outgoing::cancel(b)
        }
        c if c == nr(FDBOX_CMD_BOX_RETRIEVE) => retrieve(b, arg),
        c if c == nr(FDBOX_CMD_BOX_DISCARD) => {
            let a = Arg::<fdbox_box_discard>::read(arg)?;
            check_flags(a.val.flags, FDBOX_DISCARD_ALL)?;
            let name = if a.val.flags & FDBOX_DISCARD_ALL != 0 {
                if a.val.name.iter().any(|&c| c != 0) {
                    return Err(EINVAL);
                }
                None
            } else {
                Some(name_of(&a.val.name)?)
            };
            incoming::discard(b, name.as_ref())
        }
        c if c == nr(FDBOX_CMD_BOX_INFO) => info(b, arg),
        _ => Err(ENOTTY),
    }
}

fn add(b: &FdBox, arg: usize) -> Result {
    let a = Arg::<fdbox_box_add>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    if a.val.__reserved != 0 {
        return Err(EINVAL);
    }
    let name = name_of(&a.val.name)?;
    let fd = u32::try_from(a.val.fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd)?;
    // SAFETY: This ioctl holds no `fdget_pos` region on the file; the entry only uses the
    // file as a reference.
    let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
    outgoing::add(b, name, file)
}

fn retrieve(b: &FdBox, arg: usize) -> Result {
    let mut a = Arg::<fdbox_box_retrieve>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    if a.val.__reserved != 0 {
        return Err(EINVAL);
    }
    let name = name_of(&a.val.name)?;
    let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let file = incoming::retrieve(b, &name)?;
    // CAST: An fd number fits `int`.
    a.val.fd = reservation.reserved_fd() as i32;
    if let Err(err) = a.write_back() {
        incoming::unretrieve(b, &name, file);
        return Err(err);
    }
    reservation.fd_install(file);
    Ok(())
}

fn info(b: &FdBox, arg: usize) -> Result {
    let mut a = Arg::<fdbox_box_info>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    a.val.name = b.name.to_array();
    a.val.direction = b.direction;
    a.val.owner_uid = state::uid_to_user(b.owner);
    a.val.owner_gid = state::gid_to_user(b.owner_gid);
    let entries = {
        let inner = b.lock()?;
        a.val.state = inner.state();
        // Zero unless sealed: `unseal` clears it.
        a.val.seal_flags = match &inner.kind {
            Kind::Outgoing(out) => out.seal_flags,
            Kind::Incoming(_) => 0,
        };
        let mut list: KVVec<fdbox_entry_info> = KVVec::with_capacity(inner.len(), GFP_KERNEL)?;
        match &inner.kind {
            Kind::Outgoing(out) => {
                for e in out.entries.iter() {
                    let handler = e.handler.get();
                    list.push(
                        fdbox_entry_info {
                            name: e.name.to_array(),
                            compatible: str_to_array(handler.compatible().to_bytes()),
                            version: if e.serialized {
                                e.version
                            } else {
                                handler.ops().version
                            },
                            state: if e.serialized {
                                FDBOX_ENTRY_SEALED
                            } else {
                                FDBOX_ENTRY_PREPARED
                            },
                            reason: FDBOX_REASON_NONE,
                            // CAST: At most `MAX_DEPS`.
                            n_deps: e.deps.len() as u32,
                            __reserved: [0; 2],
                        },
                        GFP_KERNEL,
                    )?;
                }
            }
            Kind::Incoming(state::IncomingBox { entries, .. }) => {
                let status = state::availability(&TABLE.lock(), entries)?;
                for (e, &(state, reason)) in entries.iter().zip(status.iter()) {
                    list.push(
                        fdbox_entry_info {
                            name: e.name.to_array(),
                            compatible: e.compatible.to_array(),
                            version: e.version,
                            state,
                            reason,
                            // CAST: At most `MAX_DEPS`.
                            n_deps: e.deps.len() as u32,
                            __reserved: [0; 2],
                        },
                        GFP_KERNEL,
                    )?;
                }
            }
        }
        list
    };
    a.val.n_entries = write_array(a.val.entries, a.val.n_entries, &entries)?;
    a.write_back()
}
