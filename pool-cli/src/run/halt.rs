//! `--halt`: when to stop the run early, GNU parallel's way.
//!
//! `never` (default); `now,fail=N`, `soon,fail=N`, `now,fail=P%`, `soon,fail=P%`, and the same
//! with `success=` or `done=`. `now` kills the running jobs; `soon` lets them finish. In both
//! cases no new job starts. GNU's short forms: `0` = never, `1` = `soon,fail=1`,
//! `2` = `now,fail=1`, `-1` = `soon,success=1`, `-2` = `now,success=1`, `P%` = `soon,fail=P%`.
//! A percentage is of all jobs (the inputs are then read up front to count them).
//!
//! The exit status, as GNU parallel's: when `fail=` or `done=` triggers, the number of failed
//! jobs (at most 101), or under `=1` the exit code of the job that triggered it (128 + its
//! signal), or under `%` the percentage of all jobs that failed (rounded up); when `success=`
//! triggers, 0. When nothing triggered: the number of failed jobs, or under `%` their
//! percentage of the jobs started.

use anyhow::bail;

/// What stopping does to running jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Never,
    Now,
    Soon,
}

/// Which jobs count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Fail,
    Success,
    Done,
}

/// How many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Threshold {
    Count(u64),
    Percent(f64),
}

/// A `--halt` policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HaltPolicy {
    pub(crate) when: When,
    pub(crate) counted: Counted,
    pub(crate) threshold: Threshold,
}

/// Jobs finished so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
}

impl HaltPolicy {
    /// Parses a policy (clap value parser).
    pub(crate) fn parse(s: &str) -> anyhow::Result<HaltPolicy> {
        let policy = |when, counted, threshold| HaltPolicy {
            when,
            counted,
            threshold,
        };
        match s {
            "0" | "never" => return Ok(policy(When::Never, Counted::Fail, Threshold::Count(0))),
            "1" => return Ok(policy(When::Soon, Counted::Fail, Threshold::Count(1))),
            "2" => return Ok(policy(When::Now, Counted::Fail, Threshold::Count(1))),
            "-1" => return Ok(policy(When::Soon, Counted::Success, Threshold::Count(1))),
            "-2" => return Ok(policy(When::Now, Counted::Success, Threshold::Count(1))),
            _ => {}
        }
        if let Some(p) = s.strip_suffix('%')
            && !s.contains(',')
        {
            return HaltPolicy::parse(&format!("soon,fail={p}%"));
        }
        let usage = "expected never, now,fail=N, soon,fail=N%, now,success=N, soon,done=N ...";
        let Some((when, cond)) = s.split_once(',') else {
            bail!("invalid --halt `{s}`: {usage}");
        };
        let when = match when {
            "now" => When::Now,
            "soon" => When::Soon,
            _ => bail!("invalid --halt `{s}`: `{when}` should be now or soon ({usage})"),
        };
        let Some((counted, n)) = cond.split_once('=') else {
            bail!("invalid --halt `{s}`: {usage}");
        };
        let counted = match counted {
            "fail" => Counted::Fail,
            "success" => Counted::Success,
            "done" => Counted::Done,
            _ => bail!("invalid --halt `{s}`: `{counted}` should be fail, success or done"),
        };
        let threshold = match n.strip_suffix('%') {
            Some(p) => match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Threshold::Percent(p),
                _ => bail!("invalid --halt `{s}`: the percentage should be in (0, 100]"),
            },
            None => match n.parse::<u64>() {
                Ok(n) if n >= 1 => Threshold::Count(n),
                _ => bail!("invalid --halt `{s}`: the count should be a whole number >= 1"),
            },
        };
        Ok(policy(when, counted, threshold))
    }

    /// The policy, unless it is `never`.
    pub(crate) fn active(self) -> Option<Self> {
        (self.when != When::Never).then_some(self)
    }

    /// Whether the inputs must be counted first.
    pub(crate) fn needs_total(&self) -> bool {
        matches!(self.threshold, Threshold::Percent(_))
    }

    /// Whether the run should stop now.
    pub(crate) fn triggered(&self, t: &Tally, total: Option<usize>) -> bool {
        let n = match self.counted {
            Counted::Fail => t.failed,
            Counted::Success => t.succeeded,
            Counted::Done => t.failed + t.succeeded,
        };
        match self.threshold {
            Threshold::Count(c) => n >= c,
            Threshold::Percent(p) => {
                let total = total.map_or(t.failed + t.succeeded, |x| x as u64);
                n > 0 && (n as f64) * 100.0 >= p * total as f64
            }
        }
    }

    /// The exit status when the policy triggers on a job that ended with `job_status` (its exit
    /// code, or 128 + its signal).
    pub(crate) fn status_on_trigger(
        &self,
        t: &Tally,
        total: Option<usize>,
        job_status: i32,
    ) -> i32 {
        if self.counted == Counted::Success {
            return 0;
        }
        match self.threshold {
            Threshold::Count(1) => job_status,
            Threshold::Count(_) => t.failed.min(101) as i32,
            Threshold::Percent(_) => {
                let total = total.map_or(t.failed + t.succeeded, |x| x as u64).max(1);
                (t.failed * 100).div_ceil(total) as i32
            }
        }
    }

    /// The exit status when the run ended without the policy triggering.
    pub(crate) fn status_at_end(&self, t: &Tally) -> i32 {
        match self.threshold {
            Threshold::Count(_) => t.failed.min(101) as i32,
            Threshold::Percent(_) => {
                (t.failed * 100).div_ceil((t.failed + t.succeeded).max(1)) as i32
            }
        }
    }

    /// How the policy is shown in messages.
    pub(crate) fn describe(&self) -> String {
        let when = match self.when {
            When::Now => "now",
            When::Soon => "soon",
            When::Never => "never",
        };
        let counted = match self.counted {
            Counted::Fail => "fail",
            Counted::Success => "success",
            Counted::Done => "done",
        };
        match self.threshold {
            Threshold::Count(c) => format!("{when},{counted}={c}"),
            Threshold::Percent(p) => format!("{when},{counted}={p}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_trigger() {
        let p = HaltPolicy::parse("now,fail=1").unwrap();
        assert!(p.triggered(
            &Tally {
                succeeded: 3,
                failed: 1
            },
            None
        ));
        let p = HaltPolicy::parse("soon,fail=10%").unwrap();
        assert!(p.needs_total());
        assert!(!p.triggered(
            &Tally {
                succeeded: 3,
                failed: 1
            },
            Some(20)
        ));
        assert!(p.triggered(
            &Tally {
                succeeded: 3,
                failed: 2
            },
            Some(20)
        ));
        assert!(HaltPolicy::parse("never").unwrap().active().is_none());
        assert_eq!(
            HaltPolicy::parse("-2").unwrap(),
            HaltPolicy::parse("now,success=1").unwrap()
        );
        assert_eq!(
            HaltPolicy::parse("10%").unwrap(),
            HaltPolicy::parse("soon,fail=10%").unwrap()
        );
        assert!(HaltPolicy::parse("later,fail=1").is_err());
        assert!(HaltPolicy::parse("now,fail=0").is_err());
        assert!(HaltPolicy::parse("now,oops=1").is_err());
    }
}
