//! Progress bars for `segment`: one for the batch of jobs (done / total, ETA), one per segment
//! worker for the slices of its current volume. Drawn only when stderr is a terminal, so logs, pipes and CI output stay
//! plain; lines printed meanwhile go through [`Bars::println`], above the bars, so they never
//! garble them.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The batch and volume bars.
pub struct Bars {
    multi: MultiProgress,
    batch: ProgressBar,
    volumes: Vec<ProgressBar>,
}

impl Bars {
    /// Bars for `jobs` jobs segmented by `workers` workers; drawn only when stderr is a terminal.
    pub fn new(jobs: usize, workers: usize) -> Bars {
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
        // No more slice bars than jobs: a worker without a job would show an empty bar.
        let volumes = (0..workers.clamp(1, jobs.max(1)))
            .map(|_| {
                let volume = multi.add(ProgressBar::new(0));
                style(&volume, "slices [{bar:30}] {pos}/{len} {wide_msg}");
                volume
            })
            .collect();
        Bars {
            multi,
            batch,
            volumes,
        }
    }

    /// The slice bar of `worker`.
    fn volume(&self, worker: usize) -> &ProgressBar {
        &self.volumes[worker % self.volumes.len()]
    }

    /// Worker `worker` starts a job: its name goes on the worker's slice bar, the one shown for
    /// every batch size.
    pub fn start_job(&self, worker: usize, name: &str) {
        let volume = self.volume(worker);
        volume.set_position(0);
        volume.set_length(0);
        volume.set_message(name.to_string());
    }

    /// Slices done in worker `worker`'s current volume.
    pub fn slices(&self, worker: usize, done: usize, total: usize) {
        let volume = self.volume(worker);
        volume.set_length(total as u64);
        volume.set_position(done as u64);
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
        for volume in &self.volumes {
            volume.finish_and_clear();
        }
        self.batch.finish_and_clear();
    }
}

/// Applies `template` (a fixed string: a bad one would leave indicatif's default style).
fn style(bar: &ProgressBar, template: &str) {
    if let Ok(s) = ProgressStyle::with_template(template) {
        bar.set_style(s.progress_chars("=> "));
    }
}
