// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox seal [--previous] BOX`: hand an outgoing box to the next kernel,
//! or seal a sealed one again with other flags.

use fdbox::{
    BoxFd,
    BoxState,
    Direction,
    Error,
    SealFlags, //
};

use crate::device::{
    self,
    explain,
    parse_name,
    refused,
    seal_request,
    DeviceArg,
    Request, //
};
use crate::exit::{
    Code,
    Failure,
    Result, //
    EXIT_CODES_HELP,
};
use crate::view;

/// What `--help` adds.
const AFTER_HELP: &str = "\
The box must be open (another process, a VMM, created it and holds it), or
sealed: sealed with the flags asked for already, nothing changes and fdbox
succeeds; sealed with other flags, fdbox cancels it and seals it again with
the flags asked for, or, if that fails, as it was. Either every entry is
sealed, or none is and the box stays as it was.

Sealing a sealed box again is not atomic. Between the cancel and the seal
the box is open: a kexec in that window hands over nothing of it, and once
a kexec or reboot has started, the hand-over is final and both seals fail
with EBUSY. The box is then open: it stays so while any process holds its
fd, and is dissolved, every file given back untouched, when the last fd
closes (fdbox's own as it exits, unless a VMM holds another). Don't run it
while a kexec may start.

--previous is for a rollback: the next kernel is one version behind this
one, and its handlers read only their previous payload versions (fdbox check
says so). Every entry of the box is written at most at its handler's
previous version (its version in fdbox caps, minus one); a handler whose
version is 1, or that can't express its file's state there (a VFIO device;
a hugetlb memfd), refuses (EOPNOTSUPP) and nothing is sealed. Sealing again
without --previous writes the current versions.";

/// Arguments of `fdbox seal`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// Write each entry at most at its handler's previous payload version,
    /// for a kernel one version behind (FDBOX_SEAL_PREVIOUS).
    #[arg(long)]
    pub previous: bool,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The seal flags of `--previous`.
pub fn flags(previous: bool) -> SealFlags {
    if previous {
        SealFlags::PREVIOUS
    } else {
        SealFlags::empty()
    }
}

/// What sealing a box in `state`, sealed with `current`, with `wanted`
/// takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// `SEAL`: the box is open (or the kernel says why not).
    Seal,
    /// Nothing: it is sealed with `wanted` already.
    AlreadySealed,
    /// `CANCEL`, then `SEAL` with `wanted`: it is sealed with other flags.
    Reseal,
}

/// The plan for a box in `state` sealed with `current`, to be sealed with
/// `wanted`.
pub fn plan(state: BoxState, current: SealFlags, wanted: SealFlags) -> Plan {
    match state {
        BoxState::Sealed if current == wanted => Plan::AlreadySealed,
        BoxState::Sealed => Plan::Reseal,
        _ => Plan::Seal,
    }
}

/// Runs `fdbox seal`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Outgoing, args.device.owner)?;
    let flags = flags(args.previous);
    let before = device::box_info(&b, name)?;
    let plan = plan(before.state, before.seal_flags, flags);
    match plan {
        Plan::AlreadySealed => {}
        Plan::Reseal => reseal(&b, name, before.seal_flags, flags)?,
        Plan::Seal => b
            .seal_with(flags)
            .map_err(|e| refused(format!("seal box {name}"), seal_request(flags), e))?,
    }
    let info = device::box_info(&b, name)?;
    if args.json {
        return view::print_json(&view::BoxReport::new(&info));
    }
    print!("{}", view::box_text(&info, None));
    let how = if args.previous {
        " at its handlers' previous payload versions"
    } else {
        ""
    };
    let done = match plan {
        Plan::AlreadySealed => "already sealed",
        Plan::Reseal => "sealed again",
        Plan::Seal => "sealed",
    };
    println!("{done}: box {name} is handed over{how} at the next kexec");
    Ok(())
}

/// The requests a re-seal makes, so that its failures can be tested
/// without a kernel.
pub trait Sealable {
    /// `FDBOX_BOX_CANCEL`.
    fn cancel(&self) -> fdbox::Result<()>;
    /// `FDBOX_BOX_SEAL` with `flags`.
    fn seal_with(&self, flags: SealFlags) -> fdbox::Result<()>;
}

impl Sealable for BoxFd {
    fn cancel(&self) -> fdbox::Result<()> {
        BoxFd::cancel(self)
    }

    fn seal_with(&self, flags: SealFlags) -> fdbox::Result<()> {
        BoxFd::seal_with(self, flags)
    }
}

/// What becomes of box `name` when fdbox leaves it open: an open box is
/// not handed over, and is dissolved only when its last fd closes.
pub fn left_open(name: &str) -> String {
    format!(
        "box {name} is open, so nothing of it is handed over; it stays open while any process \
         holds its fd, and is dissolved, every file given back untouched, when the last one \
         closes: fdbox's own as it exits, unless a VMM holds another"
    )
}

/// A seal of the box just cancelled, with `flags`, failed with `e`: why,
/// in words. `EBUSY` can then only mean that the box was sealed again by
/// someone else, or, far likelier, that a kexec or reboot has started.
pub fn reseal_error(flags: SealFlags, e: &Error) -> String {
    match e {
        Error::Busy => format!(
            "{e}: a kexec or reboot has probably started (SEAL fails with EBUSY once the \
             hand-over is final)"
        ),
        _ => explain(seal_request(flags), e),
    }
}

/// Seals the sealed box `b` again with `flags` instead of `old`: cancel,
/// then seal; if the seal fails, seals it again with `old`, as it was.
pub fn reseal(b: &impl Sealable, name: &str, old: SealFlags, flags: SealFlags) -> Result {
    b.cancel()
        .map_err(|e| refused(format!("cancel box {name}"), Request::Cancel, e))?;
    // From here on the box is open: a kexec now hands nothing of it over.
    let Err(e) = b.seal_with(flags) else {
        return Ok(());
    };
    let why = reseal_error(flags, &e);
    let outcome = match b.seal_with(old) {
        Ok(()) => format!("box {name} is sealed again as it was"),
        Err(again) => format!(
            "SEALING AGAIN FAILED ({}): {}",
            reseal_error(old, &again),
            left_open(name)
        ),
    };
    Err(Failure::new(
        Code::Io,
        format!("seal box {name}: {why}; {outcome}"),
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A box whose requests fail as scripted, recording them.
    struct Fake {
        /// What each request returns, in order.
        results: RefCell<Vec<fdbox::Result<()>>>,
        /// The requests made: `cancel`, or the flags of a seal.
        calls: RefCell<Vec<String>>,
    }

    impl Fake {
        fn new(results: Vec<fdbox::Result<()>>) -> Self {
            Fake {
                results: RefCell::new(results),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn next(&self) -> fdbox::Result<()> {
            self.results.borrow_mut().remove(0)
        }
    }

    impl Sealable for Fake {
        fn cancel(&self) -> fdbox::Result<()> {
            self.calls.borrow_mut().push("cancel".into());
            self.next()
        }

        fn seal_with(&self, flags: SealFlags) -> fdbox::Result<()> {
            self.calls
                .borrow_mut()
                .push(format!("seal {}", flags.bits()));
            self.next()
        }
    }

    #[test]
    fn sealing_to_the_flags_a_box_has_changes_nothing() {
        let (none, prev) = (SealFlags::empty(), SealFlags::PREVIOUS);
        assert_eq!(plan(BoxState::Sealed, prev, prev), Plan::AlreadySealed);
        assert_eq!(plan(BoxState::Sealed, none, none), Plan::AlreadySealed);
        assert_eq!(plan(BoxState::Sealed, none, prev), Plan::Reseal);
        assert_eq!(plan(BoxState::Sealed, prev, none), Plan::Reseal);
        assert_eq!(plan(BoxState::Open, none, prev), Plan::Seal);
        assert_eq!(plan(BoxState::Open, none, none), Plan::Seal);
        // An incoming box: the kernel refuses the seal and says why.
        assert_eq!(plan(BoxState::Incoming, none, none), Plan::Seal);
    }

    #[test]
    fn a_reseal_cancels_then_seals() {
        let b = Fake::new(vec![Ok(()), Ok(())]);
        assert!(reseal(&b, "vm0", SealFlags::empty(), SealFlags::PREVIOUS).is_ok());
        assert_eq!(*b.calls.borrow(), ["cancel", "seal 1"]);
    }

    #[test]
    fn a_refused_reseal_seals_the_box_as_it_was() {
        let b = Fake::new(vec![Ok(()), Err(Error::Unsupported), Ok(())]);
        let f = reseal(&b, "vm0", SealFlags::empty(), SealFlags::PREVIOUS).unwrap_err();
        assert_eq!(*b.calls.borrow(), ["cancel", "seal 1", "seal 0"]);
        assert_eq!(f.code, Code::Io);
        assert_eq!(
            f.message,
            "seal box vm0: no handler preserves this file type (EOPNOTSUPP): KHO is off (boot \
             with kho=on), or an entry's handler can't write its previous payload version \
             (--previous); box vm0 is sealed again as it was"
        );
    }

    #[test]
    fn a_kexec_between_cancel_and_seal_is_named() {
        let b = Fake::new(vec![Ok(()), Err(Error::Busy), Err(Error::Busy)]);
        let f = reseal(&b, "vm0", SealFlags::PREVIOUS, SealFlags::empty()).unwrap_err();
        assert_eq!(*b.calls.borrow(), ["cancel", "seal 0", "seal 1"]);
        let busy = "wrong state for this command (EBUSY): a kexec or reboot has probably \
                    started (SEAL fails with EBUSY once the hand-over is final)";
        assert_eq!(
            f.message,
            format!(
                "seal box vm0: {busy}; SEALING AGAIN FAILED ({busy}): box vm0 is open, so \
                 nothing of it is handed over; it stays open while any process holds its fd, \
                 and is dissolved, every file given back untouched, when the last one closes: \
                 fdbox's own as it exits, unless a VMM holds another"
            )
        );
    }

    #[test]
    fn a_failed_cancel_changes_nothing() {
        let b = Fake::new(vec![Err(Error::Busy)]);
        let f = reseal(&b, "vm0", SealFlags::empty(), SealFlags::PREVIOUS).unwrap_err();
        assert_eq!(*b.calls.borrow(), ["cancel"]);
        assert_eq!(
            f.message,
            "cancel box vm0: wrong state for this command (EBUSY): the box is not sealed, or a \
             kexec or reboot has started (the hand-over is final)"
        );
    }
}
