// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Turns the guest's results port (the `# fdbox:` markers of `/init` around each program's
//! KTAP output) into test cases.

use std::fmt;

/// How one test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// One reported test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub outcome: Outcome,
}

impl Case {
    /// Why the case failed or was skipped; empty for a pass.
    pub fn outcome_reason(&self) -> &str {
        match &self.outcome {
            Outcome::Pass => "",
            Outcome::Fail(why) | Outcome::Skip(why) => why,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass => write!(f, "ok    {}", self.name),
            Outcome::Fail(why) if why.is_empty() => write!(f, "FAIL  {}", self.name),
            Outcome::Fail(why) => write!(f, "FAIL  {}: {}", self.name, why),
            Outcome::Skip(why) => write!(f, "skip  {}: {}", self.name, why),
        }
    }
}

/// A marker from `/init`, in the order the guest prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    StageBegin(u32),
    Kexec,
    Done,
}

/// The program currently running in the guest.
struct Program {
    name: String,
    plan: Option<usize>,
    cases: usize,
    failed: usize,
}

/// Incremental parser of the results port.
#[derive(Default)]
pub struct Results {
    stage: u32,
    program: Option<Program>,
    cases: Vec<Case>,
    milestones: Vec<Milestone>,
    kexec_failure: Option<String>,
}

/// `KSFT_SKIP`: a program that skips as a whole exits with it.
const EXIT_SKIP: i32 = 4;

impl Results {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line; returns the cases it completed, for live reporting.
    pub fn feed(&mut self, line: &str) -> Vec<Case> {
        let before = self.cases.len();
        if let Some(marker) = line.strip_prefix("# fdbox: ") {
            self.marker(marker.trim());
        } else if let Some(program) = &mut self.program {
            if let Some(case) = parse_case(line) {
                program.cases += 1;
                if matches!(case.1, Outcome::Fail(_)) {
                    program.failed += 1;
                }
                let name = format!("s{}/{}/{}", self.stage, program.name, case.0);
                self.cases.push(Case {
                    name,
                    outcome: case.1,
                });
            } else if let Some(plan) = line.strip_prefix("1..") {
                program.plan = plan.trim().parse().ok();
            }
        }
        self.cases[before..].to_vec()
    }

    fn marker(&mut self, marker: &str) {
        let mut words = marker.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("stage"), Some(n), Some("begin"), None) => {
                self.stage = n.parse().unwrap_or(0);
                self.milestones.push(Milestone::StageBegin(self.stage));
            }
            (Some("run"), Some(name), None, None) => {
                self.close_program("started another program before exiting");
                self.program = Some(Program {
                    name: name.to_string(),
                    plan: None,
                    cases: 0,
                    failed: 0,
                });
            }
            (Some("exit"), Some(name), Some(rc), None) => {
                let rc = rc.parse::<i32>().unwrap_or(-1);
                if let Some(program) = self.program.take() {
                    if program.name == name {
                        self.exited(program, rc);
                    } else {
                        self.program = Some(program);
                    }
                }
            }
            (Some("kexec"), None, None, None) => self.milestones.push(Milestone::Kexec),
            (Some("kexec"), Some("failed:"), ..) => {
                self.kexec_failure = Some(marker.to_string());
            }
            (Some("done"), None, None, None) => self.milestones.push(Milestone::Done),
            _ => {}
        }
    }

    fn exited(&mut self, program: Program, rc: i32) {
        let name = format!("s{}/{}", self.stage, program.name);
        let mut fail = |why: String| {
            self.cases.push(Case {
                name: name.clone(),
                outcome: Outcome::Fail(why),
            })
        };
        if let Some(plan) = program.plan {
            if plan != program.cases {
                fail(format!("planned {plan} cases, reported {}", program.cases));
            }
        }
        match (program.cases, rc) {
            (0, 0) => self.cases.push(Case {
                name,
                outcome: Outcome::Pass,
            }),
            (0, EXIT_SKIP) => self.cases.push(Case {
                name,
                outcome: Outcome::Skip("exit status 4 (KSFT_SKIP)".into()),
            }),
            (_, 0) => {}
            // A failing exit status must be explained by a failing case.
            _ if program.failed == 0 => fail(format!("exit status {rc}")),
            _ => {}
        }
    }

    fn close_program(&mut self, why: &str) {
        if let Some(program) = self.program.take() {
            self.cases.push(Case {
                name: format!("s{}/{}", self.stage, program.name),
                outcome: Outcome::Fail(format!("did not finish: {why}")),
            });
        }
    }

    /// Ends the run: `ended` says how the VM stopped when it was not a clean finish, and
    /// `stages` is how many stages the guest had to reach. Returns the cases this adds.
    pub fn finish(&mut self, ended: Option<&str>, stages: u32) -> Vec<Case> {
        let before = self.cases.len();
        self.close_program(ended.unwrap_or("the guest stopped"));
        if let Some(failure) = self.kexec_failure.take() {
            self.fail("harness/kexec", failure);
        }
        for stage in 1..=stages {
            if !self.milestones.contains(&Milestone::StageBegin(stage)) {
                let why = if stage > 1 && !self.milestones.contains(&Milestone::Kexec) {
                    "the guest never reached the kexec".to_string()
                } else {
                    "never started".to_string()
                };
                self.fail(&format!("harness/stage{stage}"), why);
            }
        }
        if !self.milestones.contains(&Milestone::Done) {
            let why = ended.unwrap_or("the guest stopped without finishing");
            self.fail("harness/guest", why.to_string());
        }
        self.cases[before..].to_vec()
    }

    pub fn fail(&mut self, name: &str, why: String) {
        self.cases.push(Case {
            name: name.to_string(),
            outcome: Outcome::Fail(why),
        });
    }

    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    pub fn milestones(&self) -> &[Milestone] {
        &self.milestones
    }
}

/// Parses a top-level KTAP result line: `ok 3 name # SKIP why` or `not ok 3 name`.
fn parse_case(line: &str) -> Option<(String, Outcome)> {
    let (ok, rest) = if let Some(rest) = line.strip_prefix("ok ") {
        (true, rest)
    } else if let Some(rest) = line.strip_prefix("not ok ") {
        (false, rest)
    } else {
        return None;
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (desc, directive) = match rest.split_once('#') {
        Some((desc, directive)) => (desc.trim(), directive.trim()),
        None => (rest.trim(), ""),
    };
    let desc = if desc.is_empty() {
        format!("case{number}")
    } else {
        desc.replace(' ', "_")
    };
    // Only the word SKIP is a directive; "# skipped pages" is a reason.
    let (word, reason) = directive.split_once(' ').unwrap_or((directive, ""));
    let outcome = if word.eq_ignore_ascii_case("skip") {
        Outcome::Skip(reason.trim().to_string())
    } else if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(directive.to_string())
    };
    Some((desc, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str]) -> Results {
        let mut results = Results::new();
        for line in lines {
            results.feed(line);
        }
        results
    }

    fn summary(results: &Results) -> Vec<String> {
        results.cases().iter().map(|c| c.to_string()).collect()
    }

    const CLEAN_TWO_STAGE: &[&str] = &[
        "# fdbox: stage 1 begin",
        "# fdbox: run kho",
        "TAP version 13",
        "1..1",
        "ok 1 preserve",
        "# fdbox: exit kho 0",
        "# fdbox: stage 1 end",
        "# fdbox: kexec",
        "# fdbox: stage 2 begin",
        "# fdbox: run kho",
        "1..2",
        "ok 1 restore",
        "ok 2 verify bytes # SKIP no folios",
        "# fdbox: exit kho 0",
        "# fdbox: done",
    ];

    #[test]
    fn clean_two_stage_run() {
        let mut results = run(CLEAN_TWO_STAGE);
        assert!(results.finish(None, 2).is_empty());
        assert_eq!(
            summary(&results),
            [
                "ok    s1/kho/preserve",
                "ok    s2/kho/restore",
                "skip  s2/kho/verify_bytes: no folios",
            ]
        );
    }

    #[test]
    fn failing_case_reports_its_reason() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: run t",
            "not ok 1 thing # expected 3, got 4",
            "# fdbox: exit t 1",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(summary(&results), ["FAIL  s1/t/thing: expected 3, got 4"]);
    }

    #[test]
    fn nonzero_exit_without_failing_case_fails() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: run t",
            "ok 1 a",
            "# fdbox: exit t 139",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(
            summary(&results),
            ["ok    s1/t/a", "FAIL  s1/t: exit status 139"]
        );
    }

    #[test]
    fn short_plan_fails() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: run t",
            "1..3",
            "ok 1 a",
            "# fdbox: exit t 0",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(
            summary(&results),
            ["ok    s1/t/a", "FAIL  s1/t: planned 3 cases, reported 1"]
        );
    }

    #[test]
    fn program_without_ktap_counts_by_exit_status() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: run quiet",
            "# fdbox: exit quiet 0",
            "# fdbox: run skipper",
            "# fdbox: exit skipper 4",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(
            summary(&results),
            [
                "ok    s1/quiet",
                "skip  s1/skipper: exit status 4 (KSFT_SKIP)"
            ]
        );
    }

    #[test]
    fn guest_dying_mid_program_fails_it_and_the_run() {
        let mut results = run(&CLEAN_TWO_STAGE[..4]);
        let added = results.finish(Some("timed out after 60 s"), 2);
        assert_eq!(
            added.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            [
                "FAIL  s1/kho: did not finish: timed out after 60 s",
                "FAIL  harness/stage2: the guest never reached the kexec",
                "FAIL  harness/guest: timed out after 60 s",
            ]
        );
    }

    #[test]
    fn missing_second_stage_fails() {
        let mut results = run(&CLEAN_TWO_STAGE[..8]);
        let added = results.finish(Some("QEMU exited with status 0"), 2);
        assert_eq!(
            added.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            [
                "FAIL  harness/stage2: never started",
                "FAIL  harness/guest: QEMU exited with status 0",
            ]
        );
    }

    #[test]
    fn kexec_failure_is_reported() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: kexec",
            "# fdbox: kexec failed: exit 1",
        ]);
        let added = results.finish(Some("QEMU exited with status 0"), 2);
        assert_eq!(
            added[0].to_string(),
            "FAIL  harness/kexec: kexec failed: exit 1"
        );
    }

    #[test]
    fn only_the_word_skip_skips() {
        let mut results = run(&[
            "# fdbox: stage 1 begin",
            "# fdbox: run t",
            "not ok 1 pages # skipped_pages wrong",
            "ok 2 plain # SKIP no device",
            "# fdbox: exit t 0",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(
            summary(&results),
            [
                "FAIL  s1/t/pages: skipped_pages wrong",
                "skip  s1/t/plain: no device"
            ]
        );
    }

    #[test]
    fn lines_outside_programs_and_nested_results_are_ignored() {
        let mut results = run(&[
            "ok 1 stray",
            "# fdbox: stage 1 begin",
            "# fdbox: run t",
            "    ok 1 nested subtest",
            "okay 1 not a result",
            "ok x not a number",
            "ok 1 real",
            "# fdbox: exit t 0",
            "# fdbox: done",
        ]);
        results.finish(None, 1);
        assert_eq!(summary(&results), ["ok    s1/t/real"]);
    }

    #[test]
    fn milestones_are_recorded_in_order() {
        let results = run(CLEAN_TWO_STAGE);
        assert_eq!(
            results.milestones(),
            [
                Milestone::StageBegin(1),
                Milestone::Kexec,
                Milestone::StageBegin(2),
                Milestone::Done
            ]
        );
    }
}
