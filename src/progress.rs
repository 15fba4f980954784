//! Progress of long commands: a bar on a terminal, a plain line every few
//! seconds otherwise (logs, cron mail). Small jobs show nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    template: &'static str,
    /// Plain lines read "`what`: done of total".
    what: &'static str,
    min_total: u64,
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Progress {
    /// `template` is an indicatif template; nothing shows for totals of
    /// `min_total` or less.
    pub fn new(template: &'static str, what: &'static str, min_total: u64) -> Self {
        Self {
            template,
            what,
            min_total,
            bar: None,
            last_line: Instant::now(),
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if total <= self.min_total {
            return;
        }
        if std::io::stderr().is_terminal() {
            let template = self.template;
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_position(done);
        } else if self.last_line.elapsed() >= Duration::from_secs(5) || done == total {
            eprintln!("{}: {done} of {total}", self.what);
            self.last_line = Instant::now();
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
