// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The error type: one variant per errno the header documents.

use rustix::io::Errno;

/// Why a name is refused before the kernel is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`NAME_MAX`](crate::NAME_MAX) bytes.
    #[error("the name is {len} bytes long, more than {max}", max = crate::NAME_MAX)]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name contains a NUL byte.
    #[error("the name has a NUL byte at byte {at}")]
    Nul {
        /// The offset of the first NUL byte.
        at: usize,
    },
}

/// An error from FDBox.
///
/// The kernel's errors are mapped from the errno the header documents for
/// each command; [`Error::errno`] gives the errno back. The messages are
/// generic: the caller knows which box, entry or file was concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `ENOENT`: no box or entry has that name; for [`BoxFd::seal`], an
    /// entry depends on a file that isn't in the box; opening the device,
    /// there is no `/dev/fdbox` (`fdbox_core` isn't loaded).
    ///
    /// [`BoxFd::seal`]: crate::BoxFd::seal
    #[error("not found (ENOENT)")]
    NotFound,
    /// `EEXIST`: the name is taken, or the file is in a box already.
    #[error("already exists (EEXIST)")]
    Exists,
    /// `EPERM` or `EACCES`: [`Device::open_box`] on a box the caller
    /// doesn't own, without `CAP_SYS_ADMIN` (`EPERM`); opening
    /// `/dev/fdbox` without permission, as it is root-only by default
    /// (`EACCES`). [`Error::errno`] gives `EPERM` back for both.
    ///
    /// [`Device::open_box`]: crate::Device::open_box
    #[error("permission denied (EPERM or EACCES)")]
    PermissionDenied,
    /// `EBUSY`: the box or entry is in the wrong state for the command
    /// (e.g. adding to a sealed box, retrieving an entry twice).
    #[error("wrong state for this command (EBUSY)")]
    Busy,
    /// `EOPNOTSUPP`: no handler preserves this file type (box fds and
    /// `/dev/fdbox` never are).
    #[error("no handler preserves this file type (EOPNOTSUPP)")]
    Unsupported,
    /// `ENOSPC`: a limit is reached: `FDBOX_MAX_BOXES`, `FDBOX_MAX_ENTRIES`, or at seal the
    /// size of one entry's payload (16 MiB) or of the whole hand-over (4 MiB).
    #[error("a limit is reached (ENOSPC)")]
    NoSpace,
    /// `EDQUOT`: a per-user limit of the box owner is reached: boxes, entries
    /// or sealed payload bytes (fdbox_core's `user_max_*` and `root_max_*`
    /// parameters).
    #[error("the box owner's limit is reached (EDQUOT)")]
    QuotaExceeded,
    /// `EINTR`: the caller was killed while it waited for a box another call
    /// was using.
    #[error("interrupted while waiting for the box (EINTR)")]
    Interrupted,
    /// `EINVAL`: the kernel refused a field (a name, a flag, a size).
    #[error("invalid argument (EINVAL)")]
    InvalidArgument,
    /// `E2BIG`: the kernel is older than this library and a field it
    /// doesn't know is set.
    #[error("the kernel doesn't know a field that is set (E2BIG)")]
    TooBig,
    /// `EBADF`: not an open file descriptor.
    #[error("bad file descriptor (EBADF)")]
    BadFd,
    /// `ENODATA`: the incoming entry is unavailable; [`BoxFd::info`] gives
    /// the reason.
    ///
    /// [`BoxFd::info`]: crate::BoxFd::info
    #[error("the entry is unavailable (ENODATA)")]
    Unavailable,
    /// `ELOOP`: the entries' dependencies form a cycle ([`BoxFd::seal`]).
    ///
    /// [`BoxFd::seal`]: crate::BoxFd::seal
    #[error("the entries' dependencies form a cycle (ELOOP)")]
    DependencyCycle,
    /// `ENOTTY`: the fd is not `/dev/fdbox` or a box fd, or the kernel
    /// doesn't know the command (it is older than this library).
    #[error("not an FDBox fd, or a command this kernel doesn't know (ENOTTY)")]
    UnknownCommand,
    /// `ENOMEM`: the kernel is out of memory.
    #[error("out of memory (ENOMEM)")]
    OutOfMemory,
    /// `EPROTO`: from [`BoxFd::seal_with`] with [`SealFlags::PREVIOUS`], a
    /// handler wrote a newer payload version than its previous one, which
    /// the flag allows at most (a handler bug); nothing was sealed.
    ///
    /// [`BoxFd::seal_with`]: crate::BoxFd::seal_with
    /// [`SealFlags::PREVIOUS`]: crate::SealFlags::PREVIOUS
    #[error("a handler broke its payload version contract (EPROTO)")]
    NewerVersion,
    /// A name refused before the kernel was asked.
    #[error("invalid name: {0}")]
    InvalidName(NameError),
    /// Any other errno.
    #[error("{0}")]
    Other(Errno),
}

/// The mapping between the documented errnos and [`Error`]'s variants.
const ERRNOS: [(Errno, Error); 16] = [
    (Errno::NOENT, Error::NotFound),
    (Errno::EXIST, Error::Exists),
    (Errno::PERM, Error::PermissionDenied),
    (Errno::BUSY, Error::Busy),
    (Errno::OPNOTSUPP, Error::Unsupported),
    (Errno::NOSPC, Error::NoSpace),
    (Errno::DQUOT, Error::QuotaExceeded),
    (Errno::INTR, Error::Interrupted),
    (Errno::INVAL, Error::InvalidArgument),
    (Errno::TOOBIG, Error::TooBig),
    (Errno::BADF, Error::BadFd),
    (Errno::NODATA, Error::Unavailable),
    (Errno::LOOP, Error::DependencyCycle),
    (Errno::NOTTY, Error::UnknownCommand),
    (Errno::NOMEM, Error::OutOfMemory),
    (Errno::PROTO, Error::NewerVersion),
];

impl Error {
    /// The errno the kernel returned, or `None` for [`Error::InvalidName`].
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Other(e) => Some(*e),
            Error::InvalidName(_) => None,
            _ => ERRNOS.iter().find(|(_, v)| v == self).map(|(e, _)| *e),
        }
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        if e == Errno::ACCESS {
            return Error::PermissionDenied;
        }
        ERRNOS
            .iter()
            .find(|(k, _)| *k == e)
            .map_or(Error::Other(e), |(_, v)| v.clone())
    }
}

impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        Error::InvalidName(e)
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error with an OS error code maps like that errno; any other
    /// (such as a path with a NUL byte) is [`Error::InvalidArgument`].
    fn from(e: std::io::Error) -> Self {
        Errno::from_io_error(&e).map_or(Error::InvalidArgument, Error::from)
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e.errno() {
            Some(errno) => errno.into(),
            None => std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        }
    }
}

/// The result of an FDBox call.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_errno_has_its_variant() {
        let cases = [
            (libc_errno::ENOENT, Error::NotFound),
            (libc_errno::EEXIST, Error::Exists),
            (libc_errno::EPERM, Error::PermissionDenied),
            (libc_errno::EBUSY, Error::Busy),
            (libc_errno::EOPNOTSUPP, Error::Unsupported),
            (libc_errno::ENOSPC, Error::NoSpace),
            (libc_errno::EDQUOT, Error::QuotaExceeded),
            (libc_errno::EINTR, Error::Interrupted),
            (libc_errno::EINVAL, Error::InvalidArgument),
            (libc_errno::E2BIG, Error::TooBig),
            (libc_errno::EBADF, Error::BadFd),
            (libc_errno::ENODATA, Error::Unavailable),
            (libc_errno::ELOOP, Error::DependencyCycle),
            (libc_errno::ENOTTY, Error::UnknownCommand),
            (libc_errno::ENOMEM, Error::OutOfMemory),
            (libc_errno::EPROTO, Error::NewerVersion),
        ];
        for (raw, want) in cases {
            let errno = Errno::from_raw_os_error(raw);
            let got = Error::from(errno);
            assert_eq!(got, want, "errno {raw}");
            assert_eq!(got.errno(), Some(errno), "errno {raw}");
            let io = std::io::Error::from(got.clone());
            assert_eq!(io.raw_os_error(), Some(raw), "errno {raw}");
            assert_eq!(Error::from(io), want, "errno {raw}");
        }
    }

    #[test]
    fn eacces_is_permission_denied() {
        let got = Error::from(Errno::from_raw_os_error(libc_errno::EACCES));
        assert_eq!(got, Error::PermissionDenied);
        assert_eq!(got.errno(), Some(Errno::PERM));
        let io = std::io::Error::from_raw_os_error(libc_errno::EACCES);
        assert_eq!(Error::from(io), Error::PermissionDenied);
        assert_eq!(
            std::io::Error::from(got).kind(),
            std::io::ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn other_errnos_are_kept() {
        for raw in [libc_errno::EFAULT, libc_errno::EIO] {
            let errno = Errno::from_raw_os_error(raw);
            assert_eq!(Error::from(errno), Error::Other(errno));
            assert_eq!(Error::from(errno).errno(), Some(errno));
            assert_eq!(
                std::io::Error::from(Error::from(errno)).raw_os_error(),
                Some(raw)
            );
        }
    }

    #[test]
    fn name_errors_have_no_errno() {
        let e = Error::from(NameError::Empty);
        assert_eq!(e.errno(), None);
        let io = std::io::Error::from(e);
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(io.to_string(), "invalid name: the name is empty");
    }

    #[test]
    fn io_errors_without_errno_are_invalid_arguments() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidInput, "nul in path");
        assert_eq!(Error::from(io), Error::InvalidArgument);
    }

    #[test]
    fn messages_name_the_errno() {
        assert_eq!(
            Error::Unavailable.to_string(),
            "the entry is unavailable (ENODATA)"
        );
        assert_eq!(
            Error::from(NameError::TooLong { len: 70 }).to_string(),
            "invalid name: the name is 70 bytes long, more than 63"
        );
        assert_eq!(
            NameError::Nul { at: 3 }.to_string(),
            "the name has a NUL byte at byte 3"
        );
    }

    /// The raw errno values of x86-64 Linux (`asm-generic/errno*.h`).
    mod libc_errno {
        pub const EPERM: i32 = 1;
        pub const ENOENT: i32 = 2;
        pub const EINTR: i32 = 4;
        pub const EIO: i32 = 5;
        pub const E2BIG: i32 = 7;
        pub const EBADF: i32 = 9;
        pub const ENOMEM: i32 = 12;
        pub const EACCES: i32 = 13;
        pub const EFAULT: i32 = 14;
        pub const EBUSY: i32 = 16;
        pub const EEXIST: i32 = 17;
        pub const EINVAL: i32 = 22;
        pub const ENOTTY: i32 = 25;
        pub const ENOSPC: i32 = 28;
        pub const ELOOP: i32 = 40;
        pub const ENODATA: i32 = 61;
        pub const EPROTO: i32 = 71;
        pub const EOPNOTSUPP: i32 = 95;
        pub const EDQUOT: i32 = 122;
    }
}
