//! Progress bars for `segment`: one for the batch of jobs, one for the slices of the current
//! volume. Hidden when stderr is not a terminal (logs and reports stay clean).

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The batch and volume bars.
pub struct Bars {
    multi: MultiProgress,
    batch: ProgressBar,
    volume: ProgressBar,
}

impl Bars {
    /// Bars for `jobs` jobs; drawn only when stderr is a terminal.
    pub fn new(jobs: usize) -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let batch = multi.add(ProgressBar::new(jobs as u64));
        if let Ok(s) =
            ProgressStyle::with_template("jobs   [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
        {
            batch.set_style(s.progress_chars("=> "));
        }
        let volume = multi.add(ProgressBar::new(0));
        if let Ok(s) = ProgressStyle::with_template("slices [{bar:30}] {pos}/{len} {msg}") {
            volume.set_style(s.progress_chars("=> "));
        }
        Bars {
            multi,
            batch,
            volume,
        }
    }

    /// A job starts.
    pub fn start_job(&self, name: &str) {
        self.batch.set_message(name.to_string());
        self.volume.set_position(0);
        self.volume.set_length(0);
        self.volume.set_message(String::new());
    }

    /// Slices done in the current volume.
    pub fn slices(&self, done: usize, total: usize) {
        self.volume.set_length(total as u64);
        self.volume.set_position(done as u64);
    }

    /// A job ended.
    pub fn finish_job(&self) {
        self.batch.inc(1);
    }

    /// Prints a line above the bars (or plainly when they are hidden).
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.volume.finish_and_clear();
        self.batch.finish_and_clear();
    }
}
