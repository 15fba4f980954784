//! How many uploads run at once when `upload.workers = "auto"`: pure
//! logic, fed one measurement window at a time by `daemon::slots`.
//!
//! Throughput is what the uploads' connections take from the files as
//! they go (`s3::Sent`), not bytes of finished uploads: those come in
//! lumps at each upload's end, and on a slow link a window of a few
//! seconds holds too few of them to tell one figure from another (over
//! 100 ms at 50 Mbit/s, full at 8 uploads at once, a doubling to 16 and
//! then to 32 seemed to pay).
//!
//! The first window is the baseline, and the figure doubles from its
//! start while each doubling pays (throughput up by at least
//! [`DOUBLING_PAYS`]; a doubling whose first window falls short is judged
//! again on that window and the next together), and once one does not it
//! goes back to the figure that paid, holds there for [`HOLD_WINDOWS`]
//! windows, then probes one small step up again (paying at [`STEP_PAYS`]
//! of its proportion). The window right after a step up is not judged,
//! backlog or not: the new connections start slowly (a TCP handshake and
//! slow start, several round trips on a long link) and would make every
//! step look as if it did not pay. Server push-back (503 SlowDown, 429)
//! halves it at once. Only windows with a backlog (photos waiting for a
//! slot at three looks in four) are judged: a quiet queue says nothing
//! about the link. The figure never leaves `min..=max`.
//!
//! How long a window lasts is the controller's call too
//! ([`Controller::shortest_window`]): the baseline after a start and a
//! window that is not judged end as soon as every slot has finished an
//! upload, and until a step has failed to pay the judged ones are short.
//! With bytes counted as they go, the first window of a burst measures
//! the link well enough to be the baseline; a second one, once needed
//! while finished uploads were counted, kept a burst over 100 ms at 8
//! uploads at once for a second. A burst of a few hundred photos on a
//! long, fast link is over in seconds; one-second windows, two a step,
//! left it at 8 to 16 uploads at once for most of its run.

use std::time::Duration;

/// A doubling pays when throughput grows by at least this share: far
/// above nothing, which is what a full link gains from more
/// connections, and far below proportional, which a busy machine never
/// shows (the uploads share the CPU with hashing, MariaDB and often the
/// server). At +50%, 8 to 16 uploads bringing +46% over 100 ms on a
/// 2-core machine was undone, and the figure stayed at 8. At +20%, over
/// 100 ms at 1 Gbit/s, where 8 carry 80% of the link and 16 fill it, the
/// first doubling showed less in two runs of three and the figure stayed
/// at 8; at +15% it paid in every run, and on a full 50 Mbit/s link the
/// figure moved as it did at +20%.
const DOUBLING_PAYS: f64 = 0.15;

/// A small step (an eighth more, once a doubling has failed) pays when
/// throughput grows by at least this share of the step's proportion
/// (+6.25%): its gain is small beside a window's noise, and a lower bar
/// would let noise push the figure up on a full link.
const STEP_PAYS: f64 = 0.5;

/// Windows spent at a figure after a step back or a halving before the
/// next probe up.
const HOLD_WINDOWS: u32 = 6;

/// The shortest judged window once a step has failed to pay, or after
/// push-back: steps are small then, and the gain they bring is small
/// beside the noise of a short window.
const STEADY_WINDOW: Duration = Duration::from_secs(1);

/// The shortest judged window while the figure is still doubling: a
/// doubling that pays brings +50% or more, well above a half-second
/// window's noise.
const RAMP_WINDOW: Duration = Duration::from_millis(500);

/// One measurement window, as the feeding task saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Window {
    /// Bytes the uploads' connections took in the window.
    pub bytes: u64,
    /// The window's length.
    pub seconds: f64,
    /// Answers in the window that asked us to slow down.
    pub pushed_back: u64,
    /// Photos waited for a slot at every look during the window.
    pub backlog: bool,
}

/// A figure and the throughput measured at it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    slots: usize,
    rate: f64,
}

/// Why the figure changed, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The last step up paid; trying the next.
    Growing,
    /// The last step up did not pay: back to the figure that did.
    NoGain,
    /// The server asked us to slow down.
    PushedBack,
}

impl Why {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Growing => "throughput grew with the last step; trying more",
            Self::NoGain => "the last step did not raise throughput; back to the figure that did",
            Self::PushedBack => "S3 asked to slow down (503 SlowDown or 429); halved",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Controller {
    min: usize,
    max: usize,
    current: usize,
    /// Throughput at the figure before the current one, or at the current
    /// one while holding; `None` right after a change with nothing to
    /// compare with.
    last: Option<Sample>,
    /// A step up has failed to pay once: later steps are small.
    found_ceiling: bool,
    /// Windows left before the next probe up.
    hold: u32,
    /// The figure just went up: the next window is the new connections'
    /// ramp-up, and is not judged.
    settling: bool,
    /// The first judged window of a doubling, which fell short: the
    /// doubling is judged again on it and the next window together. One
    /// half-second window varies by about 10% at a steady figure on a
    /// busy 2-core machine (over 100 ms with no rate cap, 113 to 137 MB/s
    /// at 8), as much as a doubling that pays brings there: judged on one
    /// window, such doublings were undone, and the figure stayed at 8 for
    /// the rest of the burst. On a full link this costs one more window
    /// at the doubled figure.
    first_look: Option<Window>,
}

impl Controller {
    /// Starts at `start`, kept within `min..=max`.
    pub(super) fn new(min: usize, max: usize, start: usize) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            current: start.clamp(min, max),
            last: None,
            found_ceiling: false,
            hold: 0,
            settling: false,
            first_look: None,
        }
    }

    pub(super) fn current(&self) -> usize {
        self.current
    }

    /// How long the next window must last at least (it also lasts until
    /// as many uploads finished as there are slots). The ramp-up of new
    /// connections, which is not judged, and the baseline after a start
    /// or a quiet spell have no shortest length.
    pub(super) fn shortest_window(&self) -> Duration {
        if self.settling || self.last.is_none() {
            Duration::ZERO
        } else if self.found_ceiling {
            STEADY_WINDOW
        } else {
            RAMP_WINDOW
        }
    }

    /// Judges one window; the new figure and why, when it changes.
    pub(super) fn window(&mut self, w: Window) -> Option<(usize, Why)> {
        if w.pushed_back > 0 {
            self.settling = false;
            self.first_look = None;
            self.last = None;
            self.found_ceiling = true;
            self.hold = HOLD_WINDOWS;
            return self.set((self.current / 2).max(self.min), Why::PushedBack);
        }
        // The new connections' ramp-up, whatever the queue showed: right
        // after a step up the pipeline is still claiming its new room, so
        // photos seldom wait for a slot then. Taken for a quiet queue, it
        // made every step cost a fresh baseline window as well.
        if std::mem::take(&mut self.settling) {
            return None;
        }
        if !w.backlog || w.seconds <= 0.0 {
            // Nothing to learn, and what was learnt may no longer hold.
            self.first_look = None;
            self.last = None;
            return None;
        }
        let rate = w.bytes as f64 / w.seconds;
        let here = Sample {
            slots: self.current,
            rate,
        };
        match self.last {
            Some(before) if before.slots < self.current => {
                let step = (self.current - before.slots) as f64 / before.slots as f64;
                let pays = match self.found_ceiling {
                    false => DOUBLING_PAYS,
                    true => STEP_PAYS * step,
                };
                let first = self.first_look.take();
                let judged = match first {
                    Some(f) => Sample {
                        rate: (f.bytes + w.bytes) as f64 / (f.seconds + w.seconds),
                        ..here
                    },
                    None => here,
                };
                if judged.rate >= before.rate * (1.0 + pays) {
                    self.last = Some(judged);
                    self.grow()
                } else if first.is_none() && !self.found_ceiling {
                    self.first_look = Some(w);
                    None
                } else {
                    self.found_ceiling = true;
                    self.hold = HOLD_WINDOWS;
                    self.last = Some(before);
                    self.set(before.slots, Why::NoGain)
                }
            }
            // The figure stays, or the first window after a start, a quiet
            // spell or a halving: a baseline, then the next step up after
            // the hold, if any.
            _ => {
                self.last = Some(here);
                if self.hold > 0 {
                    self.hold -= 1;
                    None
                } else {
                    self.grow()
                }
            }
        }
    }

    fn grow(&mut self) -> Option<(usize, Why)> {
        let step = if self.found_ceiling {
            (self.current / 8).max(1)
        } else {
            self.current
        };
        let grown = self.set((self.current + step).min(self.max), Why::Growing);
        self.settling = grown.is_some();
        grown
    }

    fn set(&mut self, to: usize, why: Why) -> Option<(usize, Why)> {
        if to == self.current {
            return None;
        }
        self.current = to;
        Some((to, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy window at `mb_per_s` over one second.
    fn busy(mb_per_s: f64) -> Window {
        Window {
            bytes: (mb_per_s * 1e6) as u64,
            seconds: 1.0,
            pushed_back: 0,
            backlog: true,
        }
    }

    /// Throughput of a link that carries `per_slot` MB/s per connection up
    /// to `limit` MB/s.
    fn link(slots: usize, per_slot: f64, limit: f64) -> f64 {
        (slots as f64 * per_slot).min(limit)
    }

    #[test]
    fn grows_while_throughput_grows() {
        let mut c = Controller::new(4, 64, 8);
        let mut seen = vec![c.current()];
        for _ in 0..8 {
            c.window(busy(link(c.current(), 1.0, 1000.0)));
            seen.push(c.current());
        }
        // The first window is the baseline of the first doubling; each
        // step up is followed by one window that is not judged.
        assert_eq!(seen, [8, 16, 16, 32, 32, 64, 64, 64, 64]);
    }

    #[test]
    fn steps_back_and_holds_when_more_does_not_pay() {
        // The link is full at 20 MB/s: 16 slots pay over 8, 32 do not.
        let mut c = Controller::new(4, 64, 8);
        let mut seen = vec![];
        for _ in 0..7 {
            c.window(busy(link(c.current(), 1.25, 20.0)));
            seen.push(c.current());
        }
        // 32 is judged on two windows before it is undone.
        assert_eq!(seen, [16, 16, 32, 32, 32, 16, 16]);
        // After the hold, a small probe; it does not pay either.
        let mut later = vec![];
        for _ in 0..(HOLD_WINDOWS + 3) {
            c.window(busy(link(c.current(), 1.25, 20.0)));
            later.push(c.current());
        }
        assert!(later.contains(&18), "{later:?}");
        assert_eq!(c.current(), 16, "{later:?}");
    }

    #[test]
    fn a_flat_link_stays_at_the_start() {
        let mut c = Controller::new(4, 64, 8);
        assert_eq!(c.window(busy(10.0)), Some((16, Why::Growing)));
        // The new connections' ramp-up.
        assert_eq!(c.window(busy(3.0)), None);
        // Judged on one window, then on two.
        assert_eq!(c.window(busy(10.0)), None);
        assert_eq!(c.window(busy(10.0)), Some((8, Why::NoGain)));
        for _ in 0..HOLD_WINDOWS {
            assert_eq!(c.window(busy(10.0)), None);
        }
    }

    #[test]
    fn a_doubling_pays_well_short_of_proportional() {
        // Doubling brought +30%: far from +100%, far above noise. The
        // doubling goes on, and stops at the first that brings less than
        // +15%, back to the figure before it.
        let mut c = Controller::new(4, 64, 8);
        c.window(busy(10.0));
        c.window(busy(10.0));
        assert_eq!(c.window(busy(13.0)), Some((32, Why::Growing)));
        c.window(busy(13.0));
        assert_eq!(c.window(busy(14.5)), None);
        assert_eq!(c.window(busy(14.5)), Some((16, Why::NoGain)));
        assert_eq!(c.shortest_window(), STEADY_WINDOW);
        for _ in 0..HOLD_WINDOWS {
            assert_eq!(c.window(busy(13.0)), None);
        }
        assert_eq!(c.window(busy(13.0)), Some((18, Why::Growing)));
        // A small step's bar is half its proportion: +2% of an eighth
        // more is noise, and back it goes.
        c.window(busy(13.0));
        assert_eq!(c.window(busy(13.3)), Some((16, Why::NoGain)));
    }

    #[test]
    fn a_gain_far_below_the_step_does_not_pay() {
        // Doubling brought +10%: the link is nearly full, the extra
        // connections would mostly queue.
        let mut c = Controller::new(4, 64, 8);
        c.window(busy(10.0));
        c.window(busy(10.0));
        c.window(busy(11.0));
        assert_eq!(c.window(busy(11.0)), Some((8, Why::NoGain)));
        // An eighth more that brings +8% pays.
        for _ in 0..HOLD_WINDOWS {
            c.window(busy(10.0));
        }
        assert_eq!(c.window(busy(10.0)), Some((9, Why::Growing)));
        c.window(busy(10.0));
        assert_eq!(c.window(busy(10.8)), Some((10, Why::Growing)));
    }

    /// One noisy window hides what a doubling brings: judged on it and the
    /// next together, the doubling pays, and the doubling goes on. The
    /// small steps after the doubling are judged on one window each.
    #[test]
    fn a_doubling_is_judged_again_on_two_windows() {
        let mut c = Controller::new(4, 64, 8);
        assert_eq!(c.window(busy(124.0)), Some((16, Why::Growing)));
        c.window(busy(180.0));
        // 16 carry about 150 MB/s; this window read 136, +10%.
        assert_eq!(c.window(busy(136.0)), None);
        assert_eq!(c.current(), 16);
        // (136 + 160) / 2 = 148: +19%.
        assert_eq!(c.window(busy(160.0)), Some((32, Why::Growing)));
        // Against the two windows' 148, 32 bring +2% over two windows.
        c.window(busy(150.0));
        assert_eq!(c.window(busy(150.0)), None);
        assert_eq!(c.window(busy(152.0)), Some((16, Why::NoGain)));
        for _ in 0..HOLD_WINDOWS {
            c.window(busy(148.0));
        }
        assert_eq!(c.window(busy(148.0)), Some((18, Why::Growing)));
        c.window(busy(148.0));
        assert_eq!(c.window(busy(150.0)), Some((16, Why::NoGain)));
    }

    /// On a long link the window after a step up is mostly new
    /// connections in slow start: judged, it would undo every step.
    #[test]
    fn the_window_after_a_step_up_is_not_judged() {
        let mut c = Controller::new(4, 64, 8);
        assert_eq!(c.window(busy(10.0)), Some((16, Why::Growing)));
        // Ramp-up: no more taken than before.
        assert_eq!(c.window(busy(10.0)), None);
        assert_eq!(c.current(), 16);
        // Warm: twice the throughput, so doubling paid.
        assert_eq!(c.window(busy(20.0)), Some((32, Why::Growing)));
    }

    /// Right after a step up photos seldom wait for a slot: the pipeline
    /// is claiming its new room. That window is the new connections'
    /// ramp-up, not a quiet queue, and the step is still judged against
    /// the figure before it.
    #[test]
    fn the_ramp_up_window_needs_no_backlog() {
        let mut c = Controller::new(4, 64, 8);
        assert_eq!(c.window(busy(10.0)), Some((16, Why::Growing)));
        let filling = Window {
            backlog: false,
            ..busy(5.0)
        };
        assert_eq!(c.window(filling), None);
        assert_eq!(c.shortest_window(), RAMP_WINDOW);
        assert_eq!(c.window(busy(20.0)), Some((32, Why::Growing)));
        // A quiet window after that is a quiet queue again.
        c.window(filling);
        assert_eq!(c.window(filling), None);
        assert_eq!(c.shortest_window(), Duration::ZERO);
    }

    /// Windows nobody judges end as soon as the slots had their say;
    /// judged ones are short while doubling, longer once steps are small.
    #[test]
    fn windows_are_short_until_a_step_fails_to_pay() {
        let mut c = Controller::new(4, 64, 8);
        // The first window after the start is the baseline, taken as soon
        // as every slot has had its say.
        assert_eq!(c.shortest_window(), Duration::ZERO);
        c.window(busy(10.0));
        assert_eq!(c.current(), 16);
        assert_eq!(c.shortest_window(), Duration::ZERO);
        c.window(busy(10.0));
        assert_eq!(c.shortest_window(), RAMP_WINDOW);
        // The step did not pay in one window, nor in two: back to 8, and
        // steady windows from now on.
        c.window(busy(10.0));
        assert_eq!(c.shortest_window(), RAMP_WINDOW);
        c.window(busy(10.0));
        assert_eq!(c.current(), 8);
        assert_eq!(c.shortest_window(), STEADY_WINDOW);
        // Push-back forgets the last figure: a baseline first.
        c.window(Window {
            pushed_back: 1,
            ..busy(10.0)
        });
        assert_eq!(c.shortest_window(), Duration::ZERO);
        c.window(busy(10.0));
        assert_eq!(c.shortest_window(), STEADY_WINDOW);
    }

    #[test]
    fn halves_on_push_back_and_not_below_the_minimum() {
        let mut c = Controller::new(4, 64, 32);
        let slow_down = Window {
            pushed_back: 3,
            ..busy(50.0)
        };
        assert_eq!(c.window(slow_down), Some((16, Why::PushedBack)));
        assert_eq!(c.window(slow_down), Some((8, Why::PushedBack)));
        assert_eq!(c.window(slow_down), Some((4, Why::PushedBack)));
        assert_eq!(c.window(slow_down), None);
        assert_eq!(c.current(), 4);
    }

    #[test]
    fn push_back_counts_even_without_a_backlog() {
        let mut c = Controller::new(2, 64, 8);
        let w = Window {
            pushed_back: 1,
            backlog: false,
            ..busy(1.0)
        };
        assert_eq!(c.window(w), Some((4, Why::PushedBack)));
    }

    #[test]
    fn never_above_the_cap() {
        let mut c = Controller::new(4, 12, 8);
        for _ in 0..10 {
            c.window(busy(link(c.current(), 1.0, 1000.0)));
            assert!(c.current() <= 12);
        }
        assert_eq!(c.current(), 12);
    }

    #[test]
    fn the_start_is_kept_within_bounds() {
        assert_eq!(Controller::new(4, 64, 2).current(), 4);
        assert_eq!(Controller::new(4, 6, 8).current(), 6);
        // A cap below the minimum: the minimum wins, never zero slots.
        assert_eq!(Controller::new(4, 2, 8).current(), 4);
    }

    #[test]
    fn quiet_windows_teach_nothing() {
        let mut c = Controller::new(4, 64, 8);
        let quiet = Window {
            backlog: false,
            ..busy(1.0)
        };
        for _ in 0..5 {
            assert_eq!(c.window(quiet), None);
        }
        assert_eq!(c.current(), 8);
        // A backlog after a quiet spell is measured afresh: its first
        // window is the baseline the next step is judged against.
        assert_eq!(c.window(busy(5.0)), Some((16, Why::Growing)));
        c.window(busy(5.0));
        assert_eq!(c.window(busy(5.5)), None);
        assert_eq!(c.window(busy(5.5)), Some((8, Why::NoGain)));
    }

    #[test]
    fn after_push_back_it_holds_then_probes_in_small_steps() {
        let mut c = Controller::new(4, 64, 32);
        c.window(Window {
            pushed_back: 1,
            ..busy(10.0)
        });
        assert_eq!(c.current(), 16);
        for _ in 0..HOLD_WINDOWS {
            assert_eq!(c.window(busy(10.0)), None);
        }
        assert_eq!(c.window(busy(10.0)), Some((18, Why::Growing)));
    }
}
