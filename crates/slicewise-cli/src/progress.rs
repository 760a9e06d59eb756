//! Progress bars for `segment`: one for the batch of jobs (done / total, ETA), one for the slices
//! of the current volume. Drawn only when stderr is a terminal, so logs, pipes and CI output stay
//! plain; lines printed meanwhile go through [`Bars::println`], above the bars, so they never
//! garble them.

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
        // A batch bar over one job says nothing the slice bar does not.
        let batch = if jobs > 1 {
            multi.add(ProgressBar::new(jobs as u64))
        } else {
            ProgressBar::hidden()
        };
        style(
            &batch,
            "jobs   [{bar:30}] {pos}/{len} {elapsed_precise}, ETA {eta}",
        );
        // Drawn from the start, not only once the first job is done.
        batch.tick();
        let volume = multi.add(ProgressBar::new(0));
        style(&volume, "slices [{bar:30}] {pos}/{len} {wide_msg}");
        Bars {
            multi,
            batch,
            volume,
        }
    }

    /// A job starts: its name goes on the slice bar, the one shown for every batch size.
    pub fn start_job(&self, name: &str) {
        self.volume.set_position(0);
        self.volume.set_length(0);
        self.volume.set_message(name.to_string());
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

/// Applies `template` (a fixed string: a bad one would leave indicatif's default style).
fn style(bar: &ProgressBar, template: &str) {
    if let Ok(s) = ProgressStyle::with_template(template) {
        bar.set_style(s.progress_chars("=> "));
    }
}
