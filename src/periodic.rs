//! What every periodic task (the monitor's poll, the plugin's requests,
//! the look for new formats) does with its failures: the first one is
//! logged, repeats are not (a database down for an hour is one line, not
//! a thousand), and the recovery is logged once with how long it lasted.
//! The task's name comes from the span its task runs in
//! (`daemon::task::Task`), not from the message.

use std::fmt::Display;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Failures {
    since: Option<Instant>,
}

impl Failures {
    /// Logs `error` as a warning unless this task is already failing.
    /// `what` says what failed and what happens next.
    pub fn failed(&mut self, error: &dyn Display, what: &str) {
        if self.since.is_none() {
            tracing::warn!(error = %error, "{what}");
            self.since = Some(Instant::now());
        }
    }

    /// A round that worked: ends a failure, saying so.
    pub fn succeeded(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(down_for = ?since.elapsed(), "working again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_success() {
        let mut f = Failures::default();
        assert!(f.since.is_none());
        f.failed(&"refused", "poll failed");
        let first = f.since;
        f.failed(&"refused again", "poll failed");
        assert!(
            first.is_some() && f.since == first,
            "the first failure is the one kept"
        );
        f.succeeded();
        assert!(f.since.is_none());
        f.succeeded();
        assert!(f.since.is_none());
    }
}
