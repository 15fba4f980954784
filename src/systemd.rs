//! systemd's notify protocol: READY once the daemon can work, watchdog
//! pings from the main loop, STOPPING and RELOADING around those events.
//! Outside systemd (no NOTIFY_SOCKET) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn ready() {
    notify(&[NotifyState::Ready]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

pub fn reloading() {
    notify(&[NotifyState::Reloading]);
}

pub fn reloaded() {
    notify(&[NotifyState::Ready]);
}

pub fn status(text: &str) {
    notify(&[NotifyState::Status(text)]);
}

/// How often to ping the watchdog: half the configured timeout, or `None`
/// when systemd does not watch this process.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!(error = %e, "could not notify systemd");
    }
}
