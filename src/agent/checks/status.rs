//! Consecutive-result thresholds (`SuccessBeforePassing`, `FailuresBeforeWarning`,
//! `FailuresBeforeCritical`), as Consul's `StatusHandler` applies them.

use super::CheckStatus;

/// Decides, from a probe's raw result, which status (if any) to report.
///
/// * `passing` and `warning` results count as successes: they reset the failure streak and
///   are reported as they are once the success streak reaches `success_before_passing`.
/// * `critical` results reset the success streak; once the failure streak reaches
///   `failures_before_critical` they are reported as critical, else once it reaches
///   `failures_before_warning` they are reported as *warning* (with the probe's output);
///   below both thresholds nothing is reported.
/// * Both streaks start at their thresholds, so the very first result is reported as is.
/// * `failures_before_warning == 0` means "same as `failures_before_critical`".
#[derive(Debug, Clone)]
pub struct StatusHandler {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl StatusHandler {
    pub fn new(
        success_before_passing: u32,
        failures_before_warning: u32,
        failures_before_critical: u32,
    ) -> StatusHandler {
        let failures_before_warning = if failures_before_warning == 0 {
            failures_before_critical
        } else {
            failures_before_warning
        };
        StatusHandler {
            success_before_passing,
            failures_before_warning,
            failures_before_critical,
            successes: success_before_passing,
            failures: failures_before_critical,
        }
    }

    /// Feeds one probe result; returns what to report, or `None` while below the thresholds.
    pub fn update(&mut self, status: CheckStatus, output: String) -> Option<(CheckStatus, String)> {
        match status {
            CheckStatus::Passing | CheckStatus::Warning => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                if self.successes >= self.success_before_passing {
                    return Some((status, output));
                }
                tracing::debug!(
                    successes = self.successes,
                    threshold = self.success_before_passing,
                    "check passed but has not reached its success threshold"
                );
                None
            }
            CheckStatus::Critical => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                if self.failures >= self.failures_before_critical {
                    return Some((CheckStatus::Critical, output));
                }
                if self.failures >= self.failures_before_warning {
                    return Some((CheckStatus::Warning, output));
                }
                tracing::debug!(
                    failures = self.failures,
                    warning_threshold = self.failures_before_warning,
                    critical_threshold = self.failures_before_critical,
                    "check failed but has not reached its warning/critical threshold"
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::*;

    fn feed(h: &mut StatusHandler, s: CheckStatus) -> Option<CheckStatus> {
        h.update(s, String::from("out")).map(|(s, _)| s)
    }

    #[test]
    fn zero_thresholds_report_everything_as_is() {
        let mut h = StatusHandler::new(0, 0, 0);
        for s in [Passing, Critical, Warning, Critical, Passing] {
            assert_eq!(feed(&mut h, s), Some(s));
        }
    }

    #[test]
    fn first_result_applies_immediately() {
        let mut h = StatusHandler::new(3, 0, 3);
        assert_eq!(feed(&mut h, Critical), Some(Critical));
        let mut h = StatusHandler::new(3, 0, 3);
        assert_eq!(feed(&mut h, Passing), Some(Passing));
    }

    #[test]
    fn success_before_passing() {
        let mut h = StatusHandler::new(2, 0, 0);
        assert_eq!(feed(&mut h, Critical), Some(Critical));
        assert_eq!(feed(&mut h, Passing), None);
        assert_eq!(feed(&mut h, Passing), Some(Passing));
        assert_eq!(feed(&mut h, Passing), Some(Passing));
        // A failure resets the success streak.
        assert_eq!(feed(&mut h, Critical), Some(Critical));
        assert_eq!(feed(&mut h, Passing), None);
        // Warnings count as successes and are reported as warnings.
        assert_eq!(feed(&mut h, Warning), Some(Warning));
    }

    #[test]
    fn failures_before_critical_and_warning() {
        let mut h = StatusHandler::new(0, 1, 3);
        assert_eq!(feed(&mut h, Passing), Some(Passing));
        assert_eq!(feed(&mut h, Critical), Some(Warning));
        assert_eq!(feed(&mut h, Critical), Some(Warning));
        assert_eq!(feed(&mut h, Critical), Some(Critical));
        assert_eq!(feed(&mut h, Critical), Some(Critical));
        // A success resets the failure streak.
        assert_eq!(feed(&mut h, Passing), Some(Passing));
        assert_eq!(feed(&mut h, Critical), Some(Warning));
        // A warning result also resets it.
        assert_eq!(feed(&mut h, Warning), Some(Warning));
        assert_eq!(feed(&mut h, Critical), Some(Warning));
    }

    #[test]
    fn warning_threshold_defaults_to_critical_threshold() {
        let mut h = StatusHandler::new(0, 0, 2);
        assert_eq!(feed(&mut h, Passing), Some(Passing));
        assert_eq!(feed(&mut h, Critical), None);
        assert_eq!(feed(&mut h, Critical), Some(Critical));
    }

    #[test]
    fn output_is_kept_when_downgraded_to_warning() {
        let mut h = StatusHandler::new(0, 1, 5);
        h.update(Passing, String::new());
        assert_eq!(
            h.update(Critical, "boom".to_string()),
            Some((Warning, "boom".to_string()))
        );
    }
}
