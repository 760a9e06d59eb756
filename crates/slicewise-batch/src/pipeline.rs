//! `slicewise segment --jobs K`: the jobs of a batch overlapped in three stages, so that the
//! model is never idle while a volume is read or a mask is compressed.
//!
//! One reader thread reads job N+1 (and decides skips) while K segment workers run jobs N, …,
//! and one writer thread writes job N−1's mask, previews and sidecar. Each worker segments with
//! one of the loaded models (`models[worker % models.len()]`). One model shared by all workers
//! serialises their `session.run` calls: ort 2.0.0-rc.15's `Session::run` takes `&mut self` on
//! purpose (its authors found ONNX Runtime's `Run` unsafe to call concurrently on one session),
//! so the engine locks the session per batch. Several models (sessions) let K runs proceed at
//! once, each with its own weights and arena.
//!
//! The stages are [`crate::batch`]'s, the very ones [`batch::run_job`] runs one after the other,
//! so the outputs are byte for byte those of a serial run and a failing or panicking job fails
//! alone. The channels between the stages hold nothing (rendezvous), so at most
//! [`volumes_in_flight`] volumes (with their masks) exist at once: one read ahead, K being
//! segmented, one being written.

use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Mutex, PoisonError};

use crate::batch::{self, InputGuard, JobSettings, Read, Segmented, Stage};
use crate::jobs::Job;
use crate::report::JobRecord;
use slicewise::infer::Model;

/// What the pipeline reports while it runs (for progress bars and console lines).
#[derive(Debug)]
pub enum Event<'a> {
    /// Worker `worker` starts segmenting `job`.
    Started {
        /// The worker (0..K).
        worker: usize,
        /// The job.
        job: &'a Job,
    },
    /// Worker `worker` has segmented `done` of the `total` slices of its volume.
    Slices {
        /// The worker (0..K).
        worker: usize,
        /// Slices done.
        done: usize,
        /// Slices of the volume.
        total: usize,
    },
    /// `job` is finished (written, skipped or failed), with its final record.
    Finished {
        /// The job.
        job: &'a Job,
        /// Its record, as the report will list it.
        record: &'a JobRecord,
    },
}

/// The most volumes (each with its mask) held at once by a pipeline of `workers` segment
/// workers: one read ahead, one per worker, one being written.
pub fn volumes_in_flight(workers: usize) -> usize {
    workers.max(1) + 2
}

/// Runs `jobs` with `workers` concurrent segment workers (at least 1) on `models` (at least one;
/// shared round-robin) and returns their records in job order. `on_event` is called from the
/// pipeline's threads.
///
/// # Panics
/// When `models` is empty.
pub fn run(
    jobs: &[Job],
    models: &[Model],
    settings: &JobSettings,
    guard: &InputGuard,
    workers: usize,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Vec<JobRecord> {
    assert!(!models.is_empty(), "the pipeline needs a model");
    let (read_tx, read_rx) = sync_channel::<(usize, Read)>(0);
    let (seg_tx, seg_rx) = sync_channel::<(usize, Segmented)>(0);
    let (done_tx, done_rx) = channel::<(usize, JobRecord)>();
    // Workers take the next read job in turn.
    let read_rx = Mutex::new(read_rx);
    let mut records: Vec<Option<JobRecord>> = vec![None; jobs.len()];
    std::thread::scope(|s| {
        let done = done_tx.clone();
        s.spawn(move || {
            for (i, job) in jobs.iter().enumerate() {
                match batch::read_stage(job, settings, guard) {
                    Stage::Next(read) => {
                        if read_tx.send((i, read)).is_err() {
                            return;
                        }
                    }
                    Stage::Done(rec) => {
                        let _ = done.send((i, *rec));
                    }
                }
            }
        });
        // No more workers than jobs: an idle one would only hold a thread.
        for worker in 0..workers.clamp(1, jobs.len().max(1)) {
            let (seg_tx, done, read_rx) = (seg_tx.clone(), done_tx.clone(), &read_rx);
            let model = &models[worker % models.len()];
            s.spawn(move || loop {
                let next = read_rx
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recv();
                let Ok((i, read)) = next else { break };
                let job = &jobs[i];
                on_event(Event::Started { worker, job });
                let mut progress = |p: slicewise::infer::Progress| {
                    on_event(Event::Slices {
                        worker,
                        done: p.done,
                        total: p.total,
                    });
                    true
                };
                match batch::segment_stage(job, read, model, settings, &mut progress) {
                    Stage::Next(seg) => {
                        if seg_tx.send((i, seg)).is_err() {
                            break;
                        }
                    }
                    Stage::Done(rec) => {
                        let _ = done.send((i, *rec));
                    }
                }
            });
        }
        drop(seg_tx);
        let done = done_tx;
        s.spawn(move || write_all(seg_rx, jobs, &models[0], settings, &done));
        for (i, mut rec) in done_rx {
            // A skipped job's record is the earlier run's; the row is this run's.
            rec.row = jobs[i].row;
            on_event(Event::Finished {
                job: &jobs[i],
                record: &rec,
            });
            records[i] = Some(rec);
        }
    });
    records
        .into_iter()
        .zip(jobs)
        .map(|(r, job)| r.unwrap_or_else(|| not_run(job)))
        .collect()
}

/// The writer thread: writes each segmented job as it arrives.
fn write_all(
    rx: Receiver<(usize, Segmented)>,
    jobs: &[Job],
    model: &Model,
    settings: &JobSettings,
    done: &std::sync::mpsc::Sender<(usize, JobRecord)>,
) {
    for (i, seg) in rx {
        let rec = batch::write_stage(&jobs[i], seg, model, settings);
        let _ = done.send((i, rec));
    }
}

/// The record of a job that no stage finished (a pipeline thread died: never expected, since
/// every stage turns its panics into the job's failure).
fn not_run(job: &Job) -> JobRecord {
    let mut r = JobRecord::new(&job.input, job.series_uid.clone());
    r.row = job.row;
    r.channels = job.channels.clone();
    r.error = Some("internal error: the job was not run".into());
    r
}
