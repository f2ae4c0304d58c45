// SPDX-License-Identifier: GPL-2.0

//! The test handler: a file type that carries a little data across the kexec, with failure
//! injection, dependencies and ballast memory. Built for FDBox's tests; never loaded in
//! production. The user interface is `selftests/core/fdbox_test.h`.
//!
//! It is also the worked example of a handler: [`TestHandler`] implements
//! [`preservable::Preservable`], and the module holds a [`preservable::Registration`].

use core::sync::atomic::{
    AtomicPtr,
    Ordering, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_void, //
    },
    fs::{
        File,
        Kiocb,
        LocalFile, //
    },
    ioctl::{
        _IOR,
        _IOW, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    types::ForeignOwnable,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

#[path = "../../fdbox-core/preservable.rs"]
pub mod preservable;

use preservable::{
    Dependencies,
    Payload,
    Preservable,
    Registration,
    RestoredDeps, //
};

module! {
    type: TestModule,
    name: "fdbox_test",
    authors: ["FDBox developers"],
    description: "FDBox test handler: carries test files across a kexec, with failure injection",
    license: "GPL",
}

/// The most data a test file holds.
const DATA_MAX: usize = 4096;
/// The payload version this handler writes; version 2 adds a checksum of the data.
///
/// `compat_kexec` builds the module twice: version 1 reads and writes only version 1, and the
/// build with `--cfg fdbox_test_v2` reads only version 2 but writes version 1 on request.
#[cfg(not(fdbox_test_v2))]
const VERSION: u32 = 1;
#[cfg(fdbox_test_v2)]
const VERSION: u32 = 2;
/// The oldest payload version this handler reads.
const MIN_VERSION: u32 = VERSION;
/// The first payload version with a checksum of the data.
const CHECKSUM_VERSION: u32 = 2;
/// Ballast comes in chunks of this size (the largest `kho_alloc_preserve` serves).
const CHUNK: u64 = 4 << 20;
/// The most ballast per file.
const BALLAST_MAX: u64 = 1 << 30;

const FAIL_PREPARE: u32 = 1 << 0;
const FAIL_SERIALIZE: u32 = 1 << 1;
const FAIL_RESTORE: u32 = 1 << 2;
const KNOWN_FLAGS: u32 = FAIL_PREPARE | FAIL_SERIALIZE | FAIL_RESTORE;

/// `struct fdbox_test_config`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Config {
    flags: u32,
    payload_version: u32,
    dep_fd: i32,
    reserved: u32,
    ballast: u64,
}

/// `struct fdbox_test_info`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Info {
    prepared: u32,
    serialized: u32,
    restored: u32,
    dep_len: u32,
    prepare_calls: u32,
    unprepare_calls: u32,
    dep_data: [u8; 64],
}

impl Info {
    const EMPTY: Info = Info {
        prepared: 0,
        serialized: 0,
        restored: 0,
        dep_len: 0,
        prepare_calls: 0,
        unprepare_calls: 0,
        dep_data: [0; 64],
    };
}

// SAFETY: Integers only, no padding.
unsafe impl FromBytes for Config {}
// SAFETY: Integers only, no padding.
unsafe impl AsBytes for Info {}

const FDBOX_TEST_CONFIG: u32 = _IOW::<Config>(0xBB, 0x80);
const FDBOX_TEST_INFO: u32 = _IOR::<Info>(0xBB, 0x81);

#[allow(improper_ctypes)]
extern "C" {
    fn kho_alloc_preserve(size: usize) -> *mut c_void;
    fn kho_unpreserve_free(mem: *mut c_void);
    fn kho_restore_free(mem: *mut c_void);
    fn anon_inode_getfile(
        name: *const c_char,
        fops: *const bindings::file_operations,
        private: *mut c_void,
        flags: c_int,
    ) -> *mut bindings::file;
    fn fdbox_test_virt_to_phys(addr: *mut c_void) -> u64;
    fn fdbox_test_phys_to_virt(phys: u64) -> *mut c_void;
}

/// The file operations of test files, from the misc device, so that restored files (made
/// without an `open()`) are test files too.
static FOPS: AtomicPtr<bindings::file_operations> = AtomicPtr::new(core::ptr::null_mut());

/// A chunk of ballast preserved with KHO.
struct Chunk(*mut c_void);

// SAFETY: Plain kernel memory owned by the chunk.
unsafe impl Send for Chunk {}

impl Chunk {
    fn new() -> Result<Self> {
        // CAST: 4 MiB fits `usize`.
        // SAFETY: Any size may be asked for.
        let mem = unsafe { kho_alloc_preserve(CHUNK as usize) };
        let mem = kernel::error::from_err_ptr(mem)?;
        if mem.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self(mem))
    }

    fn phys(&self) -> u64 {
        // SAFETY: The chunk is in the direct map.
        unsafe { fdbox_test_virt_to_phys(self.0) }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: Came from `kho_alloc_preserve`, owned by the chunk.
        unsafe { kho_unpreserve_free(self.0) };
    }
}

/// Frees a chunk handed over by the previous kernel.
fn free_handed_over(phys: u64) {
    // SAFETY: The previous kernel allocated it with `kho_alloc_preserve` and recorded its
    // address in a payload that the core checked; it is freed once, as the entry is restored
    // or discarded once.
    unsafe { kho_restore_free(fdbox_test_phys_to_virt(phys)) };
}

struct Inner {
    data: KVec<u8>,
    config: Config,
    dep: Option<ARef<File>>,
    chunks: KVec<Chunk>,
    info: Info,
}

/// A test file.
#[pin_data]
struct TestFile {
    #[pin]
    inner: Mutex<Inner>,
}

impl TestFile {
    fn new(data: KVec<u8>, info: Info) -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- new_mutex!(Inner {
                data,
                config: Config::default(),
                dep: None,
                chunks: KVec::new(),
                info,
            }, "TestFile::inner"),
        })
    }

    /// The test file behind `file`, if it is one.
    fn of(file: &File) -> Option<Pin<&TestFile>> {
        if !is_test_file(file) {
            return None;
        }
        // SAFETY: A test file's private data is its `Pin<KBox<TestFile>>`, owned by the file,
        // which outlives the borrow.
        Some(unsafe {
            <Pin<KBox<TestFile>> as ForeignOwnable>::borrow((*file.as_ptr()).private_data)
        })
    }
}

fn is_test_file(file: &File) -> bool {
    let fops = FOPS.load(Ordering::Acquire);
    // SAFETY: `file` is valid; `f_op` is set for its whole life.
    !fops.is_null() && core::ptr::eq(unsafe { (*file.as_ptr()).f_op }, fops)
}

#[vtable]
impl MiscDevice for TestFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(TestFile::new(KVec::new(), Info::EMPTY), GFP_KERNEL)
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let me = kiocb.file();
        let inner = me.inner.lock();
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), &inner.data)
    }

    fn write_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let me = kiocb.file();
        let mut inner = me.inner.lock();
        if inner.info.prepared != 0 {
            return Err(EBUSY);
        }
        let mut data = KVec::new();
        let len = iov.copy_from_iter_vec(&mut data, GFP_KERNEL)?;
        if data.len() > DATA_MAX {
            return Err(EFBIG);
        }
        inner.data = data;
        drop(inner);
        *kiocb.ki_pos_mut() = 0;
        Ok(len)
    }

    fn ioctl(me: Pin<&TestFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            FDBOX_TEST_CONFIG => {
                let config: Config =
                    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<Config>())
                        .reader()
                        .read()?;
                if config.flags & !KNOWN_FLAGS != 0
                    || config.reserved != 0
                    || config.ballast > BALLAST_MAX
                {
                    return Err(EINVAL);
                }
                let dep = match u32::try_from(config.dep_fd) {
                    Err(_) => None,
                    Ok(fd) => {
                        let file = LocalFile::fget(fd)?;
                        // SAFETY: No `fdget_pos` region is held on it here; it is only kept
                        // as a reference.
                        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
                        if !is_test_file(&file) {
                            return Err(EINVAL);
                        }
                        Some(file)
                    }
                };
                let mut inner = me.inner.lock();
                if inner.info.prepared != 0 {
                    return Err(EBUSY);
                }
                inner.config = config;
                inner.dep = dep;
                Ok(0)
            }
            FDBOX_TEST_INFO => {
                let info = me.inner.lock().info;
                UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<Info>())
                    .writer()
                    .write(&info)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The handler for test files.
struct TestHandler;

/// The checksum of a version 2 payload's data: the wrapping sum of its bytes.
fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)))
}

/// Reads a little-endian `u32` at `*at`, advancing it.
fn take_u32(payload: &[u8], at: &mut usize) -> Result<u32> {
    let end = at.checked_add(4).ok_or(EINVAL)?;
    let bytes = payload.get(*at..end).ok_or(EINVAL)?;
    *at = end;
    Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| EINVAL)?))
}

/// The decoded payload: `data_len u32, data, flags u32, chunks u32, phys u64...`.
struct Decoded<'a> {
    data: &'a [u8],
    flags: u32,
    chunks: &'a [u8],
}

impl<'a> Decoded<'a> {
    fn parse(payload: &'a [u8], version: u32) -> Result<Self> {
        let mut at = 0;
        let len = take_u32(payload, &mut at)? as usize;
        if len > DATA_MAX {
            return Err(EINVAL);
        }
        let end = at.checked_add(len).ok_or(EINVAL)?;
        let data = payload.get(at..end).ok_or(EINVAL)?;
        at = end;
        if version >= CHECKSUM_VERSION && take_u32(payload, &mut at)? != checksum(data) {
            return Err(EINVAL);
        }
        let flags = take_u32(payload, &mut at)?;
        let n = take_u32(payload, &mut at)? as usize;
        let chunks = payload.get(at..).ok_or(EINVAL)?;
        if chunks.len() != n.checked_mul(8).ok_or(EINVAL)? {
            return Err(EINVAL);
        }
        Ok(Self {
            data,
            flags,
            chunks,
        })
    }

    fn free_chunks(&self) {
        for c in self.chunks.chunks_exact(8) {
            let mut phys = [0u8; 8];
            phys.copy_from_slice(c);
            free_handed_over(u64::from_le_bytes(phys));
        }
    }
}

crate::fdbox_handler_modinfo!(TestHandler);

#[vtable]
impl Preservable for TestHandler {
    type State = ();

    const COMPATIBLE: &'static CStr = c"fdbox-test";
    const VERSION: u32 = VERSION;
    const MIN_VERSION: u32 = MIN_VERSION;

    fn can_preserve(file: &File) -> bool {
        is_test_file(file)
    }

    fn prepare(file: &File, deps: &mut Dependencies<'_>) -> Result {
        let me = TestFile::of(file).ok_or(EOPNOTSUPP)?;
        let mut inner = me.inner.lock();
        inner.info.prepare_calls = inner.info.prepare_calls.wrapping_add(1);
        if inner.config.flags & FAIL_PREPARE != 0 {
            return Err(EIO);
        }
        if let Some(dep) = &inner.dep {
            deps.add(dep)?;
        }
        inner.info.prepared = 1;
        Ok(())
    }

    fn unprepare(file: &File, _state: ()) {
        if let Some(me) = TestFile::of(file) {
            let mut inner = me.inner.lock();
            inner.info.prepared = 0;
            inner.info.unprepare_calls = inner.info.unprepare_calls.wrapping_add(1);
        }
    }

    fn serialize(file: &File, _state: &mut (), out: &mut Payload<'_>) -> Result<u32> {
        let me = TestFile::of(file).ok_or(EINVAL)?;
        let mut inner = me.inner.lock();
        if inner.config.flags & FAIL_SERIALIZE != 0 {
            return Err(EIO);
        }
        let mut chunks = KVec::new();
        let n = inner.config.ballast.div_ceil(CHUNK);
        for _ in 0..n {
            chunks.push(Chunk::new()?, GFP_KERNEL)?;
        }
        // A forged version is written in the layout of that version.
        let version = match inner.config.payload_version {
            0 => out.max_version(),
            v => v,
        };
        // CAST: At most `DATA_MAX`.
        out.write(&(inner.data.len() as u32).to_le_bytes())?;
        out.write(&inner.data)?;
        if version >= CHECKSUM_VERSION {
            out.write(&checksum(&inner.data).to_le_bytes())?;
        }
        out.write(&inner.config.flags.to_le_bytes())?;
        // CAST: At most 256 chunks.
        out.write(&(chunks.len() as u32).to_le_bytes())?;
        for c in chunks.iter() {
            out.write(&c.phys().to_le_bytes())?;
        }
        inner.chunks = chunks;
        inner.info.serialized = 1;
        Ok(version)
    }

    fn unserialize(file: &File, _state: &mut ()) {
        if let Some(me) = TestFile::of(file) {
            let mut inner = me.inner.lock();
            inner.chunks.clear();
            inner.info.serialized = 0;
        }
    }

    fn restore(version: u32, payload: &[u8], deps: &RestoredDeps<'_>) -> Result<ARef<File>> {
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(EINVAL);
        }
        let decoded = Decoded::parse(payload, version)?;
        if decoded.flags & FAIL_RESTORE != 0 {
            // A failed restore consumes the entry.
            decoded.free_chunks();
            return Err(EIO);
        }
        let mut data = KVec::with_capacity(decoded.data.len(), GFP_KERNEL)?;
        data.extend_from_slice(decoded.data, GFP_KERNEL)?;
        let mut info = Info {
            restored: 1,
            ..Info::EMPTY
        };
        if let Some(dep) = deps.get(0).and_then(TestFile::of) {
            let dep = dep.inner.lock();
            let n = dep.data.len().min(info.dep_data.len());
            // CAST: At most `DATA_MAX`.
            info.dep_len = dep.data.len() as u32;
            if let (Some(to), Some(from)) = (info.dep_data.get_mut(..n), dep.data.get(..n)) {
                to.copy_from_slice(from);
            }
        }
        let me = KBox::pin_init(TestFile::new(data, info), GFP_KERNEL)?;
        let fops = FOPS.load(Ordering::Acquire);
        let private = me.into_foreign();
        // SAFETY: The name is static; `fops` are the misc device's, which expect a
        // `Pin<KBox<TestFile>>` as private data, as given.
        let file = unsafe {
            anon_inode_getfile(
                c"[fdbox_test]".as_char_ptr(),
                fops,
                private,
                // CAST: Flag constants that fit `int`.
                bindings::O_RDWR as c_int,
            )
        };
        let file = match kernel::error::from_err_ptr(file) {
            Ok(file) => file,
            Err(err) => {
                // SAFETY: Came from `into_foreign` above and was not handed to a file.
                drop(unsafe { <Pin<KBox<TestFile>> as ForeignOwnable>::from_foreign(private) });
                return Err(err);
            }
        };
        decoded.free_chunks();
        // SAFETY: `anon_inode_getfile` returned a new reference; `File` is transparent.
        Ok(unsafe { ARef::from_raw(core::ptr::NonNull::new_unchecked(file.cast::<File>())) })
    }

    fn discard(version: u32, payload: &[u8]) {
        if let Ok(decoded) = Decoded::parse(payload, version) {
            decoded.free_chunks();
        }
    }
}

#[pin_data]
struct TestModule {
    #[pin]
    misc: MiscDeviceRegistration<TestFile>,
    #[pin]
    handler: Registration<TestHandler>,
}

impl kernel::InPlaceModule for TestModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions {
            name: c"fdbox_test",
        };
        // The table the misc device registers: published before the handler can be asked
        // about a file.
        FOPS.store(
            options.into_raw::<TestFile>().fops.cast_mut(),
            Ordering::Release,
        );
        try_pin_init!(Self {
            misc <- MiscDeviceRegistration::register(options),
            handler <- Registration::<TestHandler>::register(),
        })
    }
}
