// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The subcommands that drive `/dev/fdbox`, end to end without FDBox: a
//! missing device, a device that isn't FDBox (`/dev/null`), bad sources and
//! bad names. Each failure is one line on stderr and a documented exit code.

use std::process::{
    Command,
    Output, //
};

/// Runs `fdbox` with `args`.
fn fdbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fdbox"))
        .args(args)
        .output()
        .unwrap()
}

/// Asserts a failure: exit `code`, one `fdbox: error:` line holding
/// `needle`, nothing on stdout.
fn one_line(args: &[&str], code: i32, needle: &str) {
    let out = fdbox(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("fdbox: error: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
}

#[test]
fn a_missing_device_says_so() {
    for cmd in [
        &["ls"][..],
        &["ls", "vm0", "--json"],
        &["caps"],
        &["create", "vm0"],
        &["seal", "vm0"],
        &["cancel", "vm0"],
        &["discard", "vm0"],
        &["add", "vm0", "null=/dev/null"],
        &["retrieve", "vm0", "ram", "--", "true"],
        &["check", "--modules", "/"],
    ] {
        let mut args = cmd.to_vec();
        args.splice(1..1, ["--device", "/nonexistent/fdbox"]);
        one_line(
            &args,
            1,
            "cannot open /nonexistent/fdbox: not found (ENOENT): is fdbox_core loaded?",
        );
    }
}

#[test]
fn another_device_is_not_fdbox() {
    let enotty = "(ENOTTY): is --device FDBox's device";
    one_line(
        &["caps", "--device", "/dev/null"],
        1,
        &format!(
            "get capabilities: not an FDBox fd, or a command this kernel doesn't know {enotty}"
        ),
    );
    one_line(&["ls", "--device", "/dev/null"], 1, "list boxes: ");
    one_line(
        &["create", "vm0", "--device", "/dev/null"],
        1,
        &format!("create box vm0: not an FDBox fd, or a command this kernel doesn't know {enotty}"),
    );
    for (cmd, side) in [
        ("seal", "outgoing"),
        ("cancel", "outgoing"),
        ("discard", "incoming"),
    ] {
        one_line(
            &[cmd, "--device", "/dev/null", "vm0"],
            1,
            &format!("open {side} box vm0: "),
        );
    }
    one_line(
        &["add", "--device", "/dev/null", "vm0", "null=/dev/null"],
        1,
        "open outgoing box vm0: ",
    );
    one_line(
        &[
            "retrieve",
            "--device",
            "/dev/null",
            "vm0",
            "ram",
            "--",
            "true",
        ],
        1,
        "open incoming box vm0: ",
    );
}

#[test]
fn check_reads_the_module_directory_first() {
    one_line(
        &[
            "check",
            "--device",
            "/dev/null",
            "--modules",
            "/nonexistent/modules",
        ],
        1,
        "cannot read /nonexistent/modules: No such file or directory",
    );
    one_line(
        &["check", "--device", "/dev/null", "--modules", "/"],
        1,
        "get capabilities: not an FDBox fd",
    );
}

#[test]
fn sources_open_before_anything_else() {
    // The device is /dev/null: were the box created first, that would fail.
    one_line(
        &[
            "create",
            "vm0",
            "--device",
            "/dev/null",
            "--add",
            "ram=/nonexistent/ram",
        ],
        1,
        "ram=/nonexistent/ram: cannot open /nonexistent/ram: No such file or directory",
    );
    one_line(
        &[
            "add",
            "--device",
            "/dev/null",
            "vm0",
            "x=/proc/self/fd/9999",
        ],
        1,
        "x=/proc/self/fd/9999: cannot take /proc/self/fd/9999: Bad file descriptor",
    );
}

#[test]
fn usage_errors_exit_2() {
    let long = "x".repeat(64);
    for args in [
        &["create", ""][..],
        &["create", &long],
        &["create", "vm0", "--add", "ram"],
        &["add", "vm0"],
        &["ls", "vm0", "--in", "--out"],
        &["retrieve", "vm0", "ram"],
        &["retrieve", "vm0", "a=b", "--", "true"],
        &["discard"],
    ] {
        assert_eq!(fdbox(args).status.code(), Some(2), "{args:?}");
    }
    one_line(
        &["add", "vm0", "a=/dev/null", "a=/dev/zero"],
        2,
        "entry a is named twice",
    );
    one_line(
        &["retrieve", "vm0", "ram", "ram", "--", "true"],
        2,
        "entry ram is named twice",
    );
}

#[test]
fn help_documents_the_semantics() {
    let help = |args: &[&str]| {
        let out = fdbox(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    for cmd in [
        "ls", "create", "add", "seal", "cancel", "retrieve", "discard", "caps", "inspect", "check",
    ] {
        assert!(
            top.contains(&format!("  {cmd} ")),
            "{cmd} missing in:\n{top}"
        );
    }
    let create = help(&["create", "--help"]);
    assert!(create.contains("this is a dry run"), "{create}");
    assert!(create.contains("/proc/PID/fd/N"), "{create}");
    assert!(create.contains("2  usage error"), "{create}");
    let cancel = help(&["cancel", "--help"]);
    assert!(cancel.contains("cancel\ndissolves the box"), "{cancel}");
    let add = help(&["add", "--help"]);
    assert!(add.contains("ends as it was"), "{add}");
    assert!(
        add.contains("Don't run it\nwhile a kexec may start"),
        "{add}"
    );
    let check = help(&["check", "--help"]);
    for needle in [
        "no-handler  no module of the target",
        "not-sealed  its box is open",
        "format      the target has no fdbox_core",
        "if every handler can write its previous version",
        "can't\nbe predicted",
        "12  some entries won't restore",
        "13  nothing will restore",
    ] {
        assert!(check.contains(needle), "{needle:?} not in {check}");
    }
    let seal = help(&["seal", "--help"]);
    for needle in [
        "--previous is for a rollback",
        "Sealing a sealed box again is not atomic",
        "both seals fail\nwith EBUSY",
        "Don't run it\nwhile a kexec may start",
        "sealed with the flags asked for already, nothing changes",
    ] {
        assert!(seal.contains(needle), "{needle:?} not in {seal}");
    }
    assert!(top.contains("12-13  fdbox check only"), "{top}");
    let retrieve = help(&["retrieve", "--help"]);
    assert!(retrieve.contains("FDBOX_FDS=NAME=FD,NAME=FD"), "{retrieve}");
}
