// SPDX-License-Identifier: GPL-2.0

//! FDBox: carries named file descriptors across a kexec with Kexec HandOver.
//!
//! `/dev/fdbox` creates and opens boxes; each box is handled through its own box fd
//! (`boxfile`). Handler modules make file types preservable through the registry; each sealed
//! box's blob is handed over on its own, named from a root that a seal or cancel changes by
//! one slot (`outgoing`), and the incoming ones are taken over when this module loads
//! (`incoming`). The user ABI is `uapi/linux/fdbox.h`.

use kernel::{
    bindings,
    debugfs::{
        Dir,
        File as DebugFile, //
    },
    fs::File,
    ioctl::_IO,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

mod boxfile;
mod combine;
mod debugfs;
#[path = "../fdbox-format/src/kernel.rs"]
pub mod fdbox_format;
mod incoming;
mod kho;
mod outgoing;
pub mod preservable;
mod quota;
mod registry;
mod state;
mod uapi;

use outgoing::HANDOVER;
use quota::Usage;
use state::{
    FdBox,
    Kind,
    Outgoing,
    Slot,
    TABLE, //
};
use uapi::*;

module! {
    type: FdboxModule,
    name: "fdbox_core",
    authors: ["FDBox developers"],
    description: "FDBox: carry named file descriptors across a kexec",
    license: "GPL",
}

// The blob format majors this core reads and the version it writes, for `fdbox check`.
// CAST: Each version is a `u16`.
crate::fdbox_modinfo!(
    Text(b"fdbox_format_read="),
    Number(fdbox_format::header::MIN_FORMAT_MAJOR as u32),
    Text(b"-"),
    Number(fdbox_format::FORMAT_MAJOR as u32),
);
// CAST: As above.
crate::fdbox_modinfo!(
    Text(b"fdbox_format_write="),
    Number(fdbox_format::FORMAT_MAJOR as u32),
    Text(b"."),
    Number(fdbox_format::FORMAT_MINOR as u32),
);

#[pin_data(PinnedDrop)]
struct FdboxModule {
    #[pin]
    _misc: MiscDeviceRegistration<FdboxDevice>,
    _debugfs: Dir,
    #[pin]
    _boxes: DebugFile<debugfs::BoxesView>,
    #[pin]
    _outgoing: DebugFile<debugfs::OutgoingView>,
    #[pin]
    _incoming: DebugFile<debugfs::IncomingView>,
    /// Makes the hand-over final when a kexec starts.
    _reboot: RebootHook,
    /// Whether the previous kernel's hand-over was taken over; set last, once nothing can fail.
    _took_over: bool,
}

extern "C" {
    fn fdbox_reboot_register() -> kernel::ffi::c_int;
    fn fdbox_reboot_unregister();
}

/// The reboot notifier of `fdbox_core_c.c`, registered while this value lives.
struct RebootHook;

impl RebootHook {
    fn register() -> Result<Self> {
        // SAFETY: No requirements; `Drop` unregisters it.
        kernel::error::to_result(unsafe { fdbox_reboot_register() })?;
        Ok(RebootHook)
    }
}

impl Drop for RebootHook {
    fn drop(&mut self) {
        // SAFETY: Registered by `register`.
        unsafe { fdbox_reboot_unregister() };
    }
}

impl kernel::InPlaceModule for FdboxModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, before anything can use the locks.
        unsafe {
            TABLE.init();
            HANDOVER.init();
        }
        // debugfs is for inspection only: FDBox works without it.
        let dir = Dir::new(c"fdbox");
        try_pin_init!(Self {
            _boxes <- dir.read_only_file(c"boxes", debugfs::BoxesView),
            _outgoing <- dir.read_binary_file(c"outgoing", debugfs::OutgoingView),
            _incoming <- dir.read_binary_file(c"incoming", debugfs::IncomingView),
            _debugfs: dir,
            _misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"fdbox" }),
            _reboot: RebootHook::register()?,
            // Last: taking the hand-over over frees its KHO memory, so it must not happen in
            // an init that can still fail.
            _took_over: take_over(module),
        })
    }
}

/// Takes over what the previous kernel handed over; returns whether there was anything.
fn take_over(module: &'static ThisModule) -> bool {
    let took_over = incoming::load(&mut TABLE.lock());
    if took_over {
        // The hand-over's memory is consumed: a reloaded module could not find it again, so
        // this one stays until the next kexec.
        // SAFETY: `module` is this module, being initialized.
        unsafe { bindings::__module_get(module.as_ptr()) };
    }
    took_over
}

#[pinned_drop]
impl PinnedDrop for FdboxModule {
    fn drop(self: Pin<&mut Self>) {
        HANDOVER.lock().clear();
        // Dropped outside the lock: dropping an entry takes it.
        let boxes = TABLE.lock().take_all();
        drop(boxes);
    }
}

/// Whether `file` belongs to FDBox itself (`/dev/fdbox` or a box fd); those are never boxed.
pub(crate) fn is_fdbox_file(file: &File) -> bool {
    // SAFETY: `file` is valid, and `f_op` is set for its whole life.
    let fops = unsafe { (*file.as_ptr()).f_op };
    if fops.is_null() {
        return false;
    }
    // SAFETY: A non-NULL `f_op` of an open file points to a valid table.
    let owner = unsafe { (*fops).owner };
    boxfile::is_box_file(file)
        || core::ptr::eq(owner, kernel::module::this_module::<LocalModule>().as_ptr())
}

/// An open `/dev/fdbox`.
struct FdboxDevice;

#[vtable]
impl MiscDevice for FdboxDevice {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(FdboxDevice, GFP_KERNEL)?)
    }

    fn ioctl(_me: &FdboxDevice, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let nr = |n: u32| _IO(FDBOX_IOCTL_TYPE, n);
        match cmd {
            c if c == nr(FDBOX_CMD_GET_CAPS) => get_caps(arg)?,
            c if c == nr(FDBOX_CMD_CREATE_BOX) => create_box(arg)?,
            c if c == nr(FDBOX_CMD_OPEN_BOX) => open_box(arg)?,
            c if c == nr(FDBOX_CMD_LIST_BOXES) => list_boxes(arg)?,
            c if c == nr(FDBOX_CMD_SETTLE_FD) => settle_fd(arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

fn get_caps(arg: usize) -> Result {
    let mut a = Arg::<fdbox_get_caps>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    let handlers = {
        let table = TABLE.lock();
        a.val.incoming = table.incoming.status;
        let mut list = KVec::with_capacity(table.handlers().len(), GFP_KERNEL)?;
        for h in table.handlers().iter() {
            list.push(
                fdbox_handler_info {
                    compatible: str_to_array(h.compatible().to_bytes()),
                    version: h.ops().version,
                    min_version: h.ops().min_version,
                    __reserved: 0,
                },
                GFP_KERNEL,
            )?;
        }
        list
    };
    a.val.format_major = fdbox_format::FORMAT_MAJOR;
    a.val.format_minor = fdbox_format::FORMAT_MINOR;
    a.val.format_read_min = fdbox_format::header::MIN_FORMAT_MAJOR;
    a.val.format_read_max = fdbox_format::FORMAT_MAJOR;
    a.val.max_boxes = FDBOX_MAX_BOXES;
    a.val.max_entries = FDBOX_MAX_ENTRIES;
    a.val.n_handlers = write_array(a.val.handlers, a.val.n_handlers, &handlers)?;
    a.write_back()
}

/// The charge of one box.
const BOX: Usage = Usage {
    boxes: 1,
    entries: 0,
    bytes: 0,
};

fn create_box(arg: usize) -> Result {
    let mut a = Arg::<fdbox_create_box>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    if a.val.__reserved != 0 {
        return Err(EINVAL);
    }
    let name = Name::from_array(&a.val.name)?;
    let owner = state::current_euid();
    let reservation =
        kernel::fs::file::FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let id = TABLE.lock().new_id();
    let kind = Kind::Outgoing(Outgoing::new());
    let fdbox = FdBox::new(id, name, owner, state::current_egid(), kind)?;
    // Until it is in the table, the file's release finds no box to count down.
    let file = boxfile::new_file(fdbox.clone())?;
    {
        let mut table = TABLE.lock();
        if table.lookup(owner, FDBOX_DIR_OUTGOING, &name).is_some() {
            return Err(EEXIST);
        }
        let boxes = table.boxes().len();
        table.quotas.charge(owner, &BOX, boxes)?;
        let slot = Slot {
            fdbox,
            fds: 1,
            charged: BOX,
        };
        if let Err(err) = table.insert(slot) {
            table.quotas.uncharge(owner, &BOX);
            return Err(err);
        }
    }
    // CAST: An fd number fits `int`.
    a.val.box_fd = reservation.reserved_fd() as i32;
    // On failure, dropping the file discards the box again, as a close would.
    a.write_back()?;
    reservation.fd_install(file);
    Ok(())
}

fn open_box(arg: usize) -> Result {
    let mut a = Arg::<fdbox_open_box>::read(arg)?;
    let direction = match a.val.flags & !FDBOX_OPEN_OWNER {
        FDBOX_OPEN_OUTGOING => FDBOX_DIR_OUTGOING,
        FDBOX_OPEN_INCOMING => FDBOX_DIR_INCOMING,
        _ => return Err(EINVAL),
    };
    let owner = if a.val.flags & FDBOX_OPEN_OWNER != 0 {
        state::uid_from_user(a.val.owner_uid)?
    } else if a.val.owner_uid != 0 {
        return Err(EINVAL);
    } else {
        state::current_euid()
    };
    let name = Name::from_array(&a.val.name)?;
    // Before the lookup, so that no one learns what another uid's boxes are called.
    if !state::may_manage(owner) {
        return Err(EPERM);
    }
    let reservation =
        kernel::fs::file::FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let fdbox = TABLE
        .lock()
        .lookup(owner, direction, &name)
        .ok_or(ENOENT)?
        .fdbox
        .clone();
    let id = fdbox.id;
    let file = boxfile::new_file(fdbox)?;
    {
        let mut table = TABLE.lock();
        // The box may have gone with its last fd meanwhile.
        let slot = table.slot_mut(id).ok_or(ENOENT)?;
        slot.fds = slot.fds.saturating_add(1);
    }
    // CAST: An fd number fits `int`.
    a.val.box_fd = reservation.reserved_fd() as i32;
    // On failure, dropping the file counts it down again.
    a.write_back()?;
    reservation.fd_install(file);
    Ok(())
}

fn list_boxes(arg: usize) -> Result {
    let mut a = Arg::<fdbox_list_boxes>::read(arg)?;
    check_flags(a.val.flags, 0)?;
    if a.val.__reserved != 0 {
        return Err(EINVAL);
    }
    let boxes = {
        let table = TABLE.lock();
        let mut list = KVVec::with_capacity(table.boxes().len(), GFP_KERNEL)?;
        for slot in table.boxes() {
            let b = &slot.fdbox;
            list.push(
                fdbox_box_summary {
                    name: b.name.to_array(),
                    direction: b.direction,
                    state: b.published_state(),
                    owner_uid: state::uid_to_user(b.owner),
                    n_entries: b.published_len(),
                    owner_gid: state::gid_to_user(b.owner_gid),
                    __reserved: [0; 3],
                },
                GFP_KERNEL,
            )?;
        }
        list
    };
    a.val.n_boxes = write_array(a.val.boxes, a.val.n_boxes, &boxes)?;
    a.write_back()
}

const _: () = assert!(
    preservable::SETTLE_NOW == FDBOX_SETTLE_NOW
        && preservable::SETTLE_FUTURE == FDBOX_SETTLE_FUTURE
);

fn settle_fd(arg: usize) -> Result {
    let mut a = Arg::<fdbox_settle_fd>::read(arg)?;
    check_flags(a.val.flags, FDBOX_SETTLE_NOW | FDBOX_SETTLE_FUTURE)?;
    if a.val.__reserved != 0 {
        return Err(EINVAL);
    }
    let fd = u32::try_from(a.val.fd).map_err(|_| EBADF)?;
    let file = kernel::fs::LocalFile::fget(fd)?;
    // SAFETY: This ioctl holds no `fdget_pos` region on the file, and uses it only as a
    // reference.
    let file = unsafe { kernel::fs::LocalFile::assume_no_fdget_pos(file) };
    // It changes how the file's memory is allocated: that takes write access.
    if file.flags() & bindings::O_ACCMODE == bindings::O_RDONLY {
        return Err(EBADF);
    }
    let settled = outgoing::settle(&file, a.val.flags)?;
    a.val.unsettled = settled.unsettled;
    a.val.migrated = settled.migrated;
    a.write_back()
}
