// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Watches the kernel log for what must fail a run even when every test said `ok`.

/// Kernel messages that fail the run, with the reason reported.
const FATAL: &[(&str, &str)] = &[
    ("Kernel panic", "kernel panic"),
    ("BUG: ", "kernel BUG"),
    ("Oops: ", "kernel oops"),
    ("WARNING: ", "kernel warning"),
    ("UBSAN: ", "undefined behaviour"),
    ("list_add corruption", "list corruption"),
    ("list_del corruption", "list corruption"),
    ("panicked at ", "Rust panic"),
    ("new suspected memory leaks", "kmemleak"),
    // Every stall report the kernel prints: RCU's (the self-detected form included, which a
    // CPU spinning with interrupts on prints instead of the other), RCU tasks', and the
    // watchdogs' (soft lockups print "BUG: ", hard ones do not).
    ("detected stalls on", "RCU stall"),
    ("self-detected stall on CPU", "RCU stall"),
    ("Watchdog detected hard LOCKUP", "hard lockup"),
    ("blocked for more than", "hung task"),
    // KHO turns itself off rather than fail the boot, and liveupdate follows it; either would
    // turn every hand-over test into a skip.
    ("KHO: Failed to reserve", "KHO is disabled"),
    ("disabling kexec handover", "KHO is disabled"),
    ("Disabling liveupdate", "liveupdate is disabled"),
];

/// Returns why `line` of the kernel log fails the run, if it does.
pub fn fatal(line: &str) -> Option<&'static str> {
    FATAL
        .iter()
        .find(|(needle, _)| line.contains(needle))
        .map(|&(_, why)| why)
}

/// Whether `line` shows that the guest kernel is alive, for the KVM probe.
pub fn is_kernel_output(line: &str) -> bool {
    line.contains("Linux version") || line.contains("Command line:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_messages_are_caught() {
        for (line, why) in [
            (
                "[    3.1] Kernel panic - not syncing: sysrq triggered crash",
                "kernel panic",
            ),
            (
                "[    1.0] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2",
                "kernel BUG",
            ),
            (
                "[    1.0] BUG: sleeping function called from invalid context",
                "kernel BUG",
            ),
            (
                "[    1.0] WARNING: possible circular locking dependency detected",
                "kernel warning",
            ),
            (
                "[    1.0] WARNING: CPU: 0 PID: 1 at mm/foo.c:1 bar+0x0/0x1",
                "kernel warning",
            ),
            (
                "[    0.0] KHO: Failed to reserve nid 0 scratch buffer",
                "KHO is disabled",
            ),
            (
                "[    0.9] liveupdate: Disabling liveupdate because KHO is disabled",
                "liveupdate is disabled",
            ),
            (
                "[    2.0] rust_kernel: panicked at fdbox/x.rs:1:1:",
                "Rust panic",
            ),
            (
                "[   60.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
                "kmemleak",
            ),
            (
                "[   90.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                "RCU stall",
            ),
            (
                "[  200.0] INFO: task insmod:51 blocked for more than 120 seconds.",
                "hung task",
            ),
            (
                "[   30.0] rcu: INFO: rcu_sched self-detected stall on CPU",
                "RCU stall",
            ),
            (
                "[   30.0] rcu: INFO: rcu_preempt self-detected stall on CPU",
                "RCU stall",
            ),
            (
                "[   30.0] INFO: rcu_tasks detected stalls on tasks:",
                "RCU stall",
            ),
            (
                "[   30.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
                "hard lockup",
            ),
            (
                "[   30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [cat:91]",
                "kernel BUG",
            ),
        ] {
            assert_eq!(fatal(line), Some(why), "{line}");
        }
    }

    #[test]
    fn ordinary_messages_pass() {
        for line in [
            "[    0.0] Linux version 7.3.4",
            "[    0.5] KHO: restored 3 folios",
            "[    1.2] fdbox_kho_test: restored 4 folios, every byte verified",
            "[    0.1] Memory: 900000K/1048576K available",
        ] {
            assert_eq!(fatal(line), None, "{line}");
        }
    }
}
