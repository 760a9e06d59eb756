//! Segmentation jobs: admission to a bounded queue, a fixed number of workers, progress that
//! `GET /jobs/` shows, and cancellation through the engine's [`CancelToken`] when the request
//! that started a job goes away (client disconnect, request timeout).
//!
//! A job is admitted only while fewer than `workers + queue` jobs are admitted; otherwise the
//! request gets 503 with `Retry-After`. An admitted job waits for a worker slot, then runs on a
//! blocking thread, holding its slot until the engine has actually stopped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use slicewise::infer::{CancelToken, Progress};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Finished jobs kept for `GET /jobs/`.
const KEEP_FINISHED: usize = 64;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Admitted, waiting for a worker.
    Queued,
    /// Running in the engine.
    Running,
    /// Its request went away; the engine stops at its next check.
    Cancelling,
    /// Finished with a result.
    Done,
    /// Finished with an error.
    Failed,
    /// Stopped because its request went away.
    Cancelled,
}

/// What `GET /jobs/` shows of one job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job id (also in the infer answer's params, `slicewise.job`).
    pub id: String,
    /// Model name.
    pub model: String,
    /// Image id, session or uploaded file name.
    pub image: String,
    /// Where it is.
    pub state: Phase,
    /// Slices finished.
    pub done: usize,
    /// Slices in the volume (0 until known).
    pub total: usize,
    /// Admission time, Unix seconds.
    pub created: f64,
    /// Seconds spent running (so far, or in all).
    pub elapsed_s: f64,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
}

struct Job {
    status: Mutex<JobStatus>,
    started: Mutex<Option<Instant>>,
}

impl Job {
    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    fn snapshot(&self) -> JobStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if matches!(s.state, Phase::Running | Phase::Cancelling) {
            if let Some(t) = *self.started.lock().unwrap_or_else(|p| p.into_inner()) {
                s.elapsed_s = t.elapsed().as_secs_f64();
            }
        }
        s
    }

    fn finish(&self, state: Phase, error: Option<String>) {
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.update(|s| {
            // A cancellation recorded by the request's guard keeps its reason.
            match s.state {
                // Cancelled by the request's guard: keep its reason.
                Phase::Cancelling => s.state = Phase::Cancelled,
                Phase::Cancelled => {}
                _ => {
                    s.state = state;
                    s.error = error;
                }
            }
            s.elapsed_s = elapsed;
        });
    }
}

struct Shared {
    slots: Arc<Semaphore>,
    admitted: AtomicUsize,
    capacity: usize,
    retry_after: u64,
    recent: Mutex<VecDeque<Arc<Job>>>,
}

/// The job queue and registry, shared by all requests.
#[derive(Clone)]
pub struct Jobs(Arc<Shared>);

/// An admitted job; its queue place is given back when dropped.
pub struct Ticket {
    shared: Arc<Shared>,
    job: Arc<Job>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.shared.admitted.fetch_sub(1, Ordering::SeqCst);
        // Dropped before it ran (its request went away while the image was being fetched):
        // `/jobs/` must not show it queued forever.
        self.job.update(|s| {
            if s.state == Phase::Queued {
                s.state = Phase::Cancelled;
                s.error = Some("the request ended before the job ran".into());
            }
        });
    }
}

impl Ticket {
    /// The job's id.
    pub fn id(&self) -> String {
        self.job.snapshot().id
    }

    /// Marks a job that cannot run (its image could not be fetched) as failed, recording why.
    pub fn fail(&self, error: &ApiError) {
        self.job.update(|s| {
            s.state = Phase::Failed;
            s.error = Some(error.detail.clone());
        });
    }
}

/// Cancels a job whose request is dropped before the job ends.
struct CancelOnDrop {
    token: CancelToken,
    job: Arc<Job>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.token.cancel();
            self.job.update(|s| {
                // A job that never started is over; a running one until the engine stops.
                let next = match s.state {
                    Phase::Queued => Phase::Cancelled,
                    Phase::Running => Phase::Cancelling,
                    _ => return,
                };
                s.state = next;
                s.error = Some(
                    "the request ended before the result was sent (client disconnected or request timed out)"
                        .into(),
                );
            });
        }
    }
}

impl Jobs {
    /// `workers` jobs run at once, `queue` more may wait; a 503 says to retry after
    /// `retry_after` seconds.
    pub fn new(workers: usize, queue: usize, retry_after: u64) -> Jobs {
        let workers = workers.max(1);
        Jobs(Arc::new(Shared {
            slots: Arc::new(Semaphore::new(workers)),
            admitted: AtomicUsize::new(0),
            capacity: workers + queue,
            retry_after,
            recent: Mutex::new(VecDeque::new()),
        }))
    }

    /// Admits a job for `model` on `image`, or answers 503 when the queue is full.
    pub fn admit(&self, model: &str, image: &str) -> Result<Ticket, ApiError> {
        let s = &self.0;
        let admitted = s
            .admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < s.capacity).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(ApiError::busy(s.retry_after));
        }
        let job = Arc::new(Job {
            status: Mutex::new(JobStatus {
                id: uuid::Uuid::new_v4().to_string(),
                model: model.to_string(),
                image: image.to_string(),
                state: Phase::Queued,
                done: 0,
                total: 0,
                created: unix_now(),
                elapsed_s: 0.0,
                error: None,
            }),
            started: Mutex::new(None),
        });
        self.remember(job.clone());
        Ok(Ticket {
            shared: s.clone(),
            job,
        })
    }

    /// Runs `work` for an admitted job once a worker is free, on a blocking thread. `work` gets
    /// the job's cancel token and a progress callback to hand to the engine. If this future is
    /// dropped (the request went away), the token is cancelled and the job stops at the engine's
    /// next check; it keeps its worker until then.
    pub async fn run<T, F>(&self, ticket: Ticket, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&CancelToken, &mut dyn FnMut(Progress) -> bool) -> Result<T, ApiError>
            + Send
            + 'static,
    {
        let token = CancelToken::new();
        let mut guard = CancelOnDrop {
            token: token.clone(),
            job: ticket.job.clone(),
            armed: true,
        };
        let permit = self
            .0
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the job queue is closed"))?;
        let handle = tokio::task::spawn_blocking(move || {
            let job = ticket.job.clone();
            *job.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            job.update(|s| {
                if s.state == Phase::Queued {
                    s.state = Phase::Running;
                }
            });
            let mut progress = |p: Progress| {
                job.update(|s| (s.done, s.total) = (p.done, p.total));
                !token.is_cancelled()
            };
            // A panicking job fails alone, saying what panicked and where.
            let result = slicewise::error::catch_panic(|| work(&token, &mut progress))
                .unwrap_or_else(|e| Err(ApiError::internal(e.to_string())));
            // Free the worker and the queue place before the job reads as over.
            drop((permit, ticket));
            match &result {
                Ok(_) => job.finish(Phase::Done, None),
                Err(e) if e.code == "cancelled" => {
                    job.finish(Phase::Cancelled, Some(e.detail.clone()))
                }
                Err(e) => job.finish(Phase::Failed, Some(e.detail.clone())),
            }
            result
        });
        let joined = handle.await;
        guard.armed = false;
        joined.unwrap_or_else(|e| Err(ApiError::internal(format!("segmentation job failed: {e}"))))
    }

    /// Every running and queued job, then the most recent finished ones, newest first.
    pub fn list(&self) -> Vec<JobStatus> {
        let recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().map(|j| j.snapshot()).collect()
    }

    /// The job `id`.
    pub fn get(&self, id: &str) -> Option<JobStatus> {
        self.list().into_iter().find(|j| j.id == id)
    }

    /// Running and waiting jobs.
    pub fn active(&self) -> usize {
        self.0.admitted.load(Ordering::SeqCst)
    }

    fn remember(&self, job: Arc<Job>) {
        let mut recent = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(job);
        let finished = |j: &Arc<Job>| {
            !matches!(
                j.status.lock().unwrap_or_else(|p| p.into_inner()).state,
                Phase::Queued | Phase::Running | Phase::Cancelling
            )
        };
        while recent.iter().filter(|j| finished(j)).count() > KEEP_FINISHED {
            match recent.iter().position(finished) {
                Some(i) => {
                    recent.remove(i);
                }
                None => break,
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_answers_busy_and_places_come_back() {
        let jobs = Jobs::new(1, 1, 3);
        let a = jobs.admit("m", "a").unwrap();
        let _b = jobs.admit("m", "b").unwrap();
        let busy = jobs.admit("m", "c").err().unwrap();
        assert_eq!((busy.status.as_u16(), busy.retry_after), (503, Some(3)));
        let out = jobs
            .run(a, |_, progress| {
                progress(Progress { done: 1, total: 1 });
                Ok(7)
            })
            .await
            .unwrap();
        assert_eq!(out, 7);
        assert_eq!(jobs.active(), 1);
        assert!(jobs.admit("m", "c").is_ok());
        let listed = jobs.list();
        assert_eq!(listed.len(), 3);
        assert!(listed
            .iter()
            .any(|j| j.image == "a" && j.state == Phase::Done && j.done == 1));
    }

    #[test]
    fn a_job_that_never_runs_ends_failed_or_cancelled() {
        let jobs = Jobs::new(1, 1, 1);
        jobs.admit("m", "a")
            .unwrap()
            .fail(&ApiError::internal("no image"));
        // (The ticket is dropped at the end of that statement: still failed, not cancelled.)
        drop(jobs.admit("m", "b").unwrap());
        let states: Vec<_> = jobs
            .list()
            .iter()
            .map(|j| (j.state, j.error.clone()))
            .collect();
        assert_eq!(states[0].0, Phase::Cancelled);
        assert_eq!(states[1], (Phase::Failed, Some("no image".into())));
        assert_eq!(jobs.active(), 0);
    }

    #[tokio::test]
    async fn dropping_the_request_cancels_the_job() {
        let jobs = Jobs::new(1, 0, 1);
        let t = jobs.admit("m", "slow").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = jobs.run(t, move |token, _| {
            while !token.is_cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            tx.send(()).ok();
            Err::<(), _>(slicewise::Error::Cancelled.into())
        });
        // Give the job time to start, then drop its request.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), fut).await;
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("job saw the cancellation");
        let mut j = jobs.list()[0].clone();
        for _ in 0..500 {
            if j.state == Phase::Cancelled {
                break;
            }
            assert_eq!(j.state, Phase::Cancelling, "until the engine stops");
            std::thread::sleep(std::time::Duration::from_millis(2));
            j = jobs.list()[0].clone();
        }
        assert_eq!(j.state, Phase::Cancelled);
        assert_eq!(jobs.active(), 0, "the worker is free again");
        assert!(j.error.as_deref().unwrap_or("").contains("disconnected"));
    }
}
