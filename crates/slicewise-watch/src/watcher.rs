//! The watcher's life: load the models, open the journal, redo what a previous run left
//! claimed, then read the PACS's news, deciding for each new series which models select it
//! (journalled before it is queued), and hand the selected ones to the workers through a
//! bounded queue. With `once`, it stops when the feed is caught up and nothing is in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use slicewise::infer::Model;
use slicewise_dicomweb::{redact, DicomWeb, PacsError, SeriesInfo};
use tokio::sync::mpsc;

use crate::audit::Audit;
use crate::error::WatchError;
use crate::feed::{Feed, News, ANY_MODEL};
use crate::journal::{Entry, Journal, State};
use crate::options::{stored_format_name, WatchOptions};
use crate::select::selects;
use crate::shared::{Loaded, Shared, Summary, WorkItem};

/// How often `once` looks again while series are in flight.
const ONCE_TICK: Duration = Duration::from_millis(200);

/// Runs the watcher until `once` finds nothing more to do, or until Ctrl-C or SIGTERM.
pub fn run(opts: WatchOptions) -> Result<Summary, WatchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| WatchError::Setup(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(watch(opts));
    // Jobs still running on blocking threads are abandoned: their series stay claimed and are
    // redone at the next start.
    rt.shutdown_background();
    result
}

/// The watcher, on a running tokio runtime.
pub async fn watch(opts: WatchOptions) -> Result<Summary, WatchError> {
    let shared = Arc::new(setup(opts).await?);
    let (tx, rx) = mpsc::channel::<WorkItem>(shared.opts.queue.max(1));
    let workers = spawn_workers(&shared, rx);
    // Ctrl-C or SIGTERM stops it wherever it is (waiting for the PACS too): every journal line
    // is whole, and what was claimed but not stored is redone at the next start.
    let (result, stopped) = tokio::select! {
        r = follow(&shared, &tx) => (r, false),
        _ = stop_signal() => (Ok(()), true),
    };
    drop(tx);
    if result.is_ok() && shared.opts.once && !stopped {
        for w in workers {
            let _ = w.await;
        }
    }
    result?;
    if let Some(why) = shared.fatal.lock().ok().and_then(|f| f.clone()) {
        return Err(WatchError::Journal(why));
    }
    Ok(shared.summary())
}

/// Checks the options, opens the state folder and the PACS client, loads the models.
async fn setup(opts: WatchOptions) -> Result<Shared, WatchError> {
    if opts.models.is_empty() {
        return Err(WatchError::Setup("give at least one --model".into()));
    }
    if stored_format_name(opts.format).is_none() {
        return Err(WatchError::Setup(format!(
            "format {:?} cannot be stored in a PACS: use a DICOM format (seg)",
            opts.format
        )));
    }
    let staging = opts.state.join("tmp");
    // The URL is checked before anything is written.
    let mut pacs = DicomWeb::new(&opts.pacs, &staging, opts.max_series_bytes)
        .map_err(|e| WatchError::Setup(format!("--pacs {e}")))?;
    if let Some(t) = &opts.token {
        pacs = pacs.bearer_token(t.clone());
    }
    let journal = Journal::open(&opts.state).map_err(|e| WatchError::Setup(e.to_string()))?;
    // What a killed run was fetching or writing is of no use: its series are redone.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| WatchError::Setup(format!("{}: {e}", staging.display())))?;
    let audit = Audit::open(&opts.state)
        .map_err(|e| WatchError::Setup(format!("{}: {e}", opts.state.display())))?;
    let models = load_models(&opts).await?;
    audit.event(
        "started",
        json!({
            "pacs": redact(&opts.pacs), "orthanc": opts.orthanc,
            "models": models.iter().map(|m| &m.key).collect::<Vec<_>>(),
            "format": stored_format_name(opts.format), "state": opts.state,
        }),
    );
    Ok(Shared::new(opts, pacs, models, journal, audit, staging))
}

/// Loads every model once, keyed `name@version` from its card.
async fn load_models(opts: &WatchOptions) -> Result<Vec<Loaded>, WatchError> {
    let (paths, mopts) = (opts.models.clone(), opts.model.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| Model::open(p, &mopts).map_err(|e| format!("{}: {e}", p.display())))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| WatchError::Setup(format!("loading the models failed: {e}")))?
    .map_err(WatchError::Setup)?;
    let mut out: Vec<Loaded> = Vec::new();
    for model in loaded {
        let c = model.contract();
        let key = format!("{}@{}", c.name, c.version);
        if out.iter().any(|l| l.key == key) {
            return Err(WatchError::Setup(format!("model {key} is given twice")));
        }
        out.push(Loaded {
            model: Arc::new(model),
            key,
        });
    }
    Ok(out)
}

/// `workers` tasks taking series off the queue.
fn spawn_workers(
    shared: &Arc<Shared>,
    rx: mpsc::Receiver<WorkItem>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    (0..shared.opts.workers.max(1))
        .map(|_| {
            let (shared, rx) = (shared.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let item = rx.lock().await.recv().await;
                    let Some(item) = item else { break };
                    let uid = item.info.series_uid.clone();
                    crate::worker::process(&shared, item).await;
                    if let Ok(mut f) = shared.in_flight.lock() {
                        f.remove(&uid);
                    }
                }
            })
        })
        .collect()
}

/// Redoes what a previous run left claimed, then follows the feed.
async fn follow(shared: &Arc<Shared>, tx: &mpsc::Sender<WorkItem>) -> Result<(), WatchError> {
    redo_claimed(shared, tx).await?;
    let mut feed = Feed::start(shared).await.map_err(|e| match e {
        crate::feed::StartError::Pacs(e) => WatchError::Pacs(e),
        crate::feed::StartError::Journal(e) => WatchError::Journal(e.to_string()),
    })?;
    loop {
        if shared.fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
            return Ok(());
        }
        let news = shared
            .patiently("reading the PACS's news", || feed.poll(shared))
            .await?;
        for info in &news.arrivals {
            arrived(shared, tx, info.clone(), Instant::now()).await?;
        }
        record_cursor(shared, &news)?;
        feed.advance(&news);
        if !news.caught_up {
            continue;
        }
        if shared.opts.once && shared.busy() == 0 && news.arrivals.is_empty() {
            return Ok(());
        }
        let pause = if shared.opts.once {
            ONCE_TICK.min(shared.opts.poll)
        } else {
            shared.opts.poll
        };
        tokio::time::sleep(pause).await;
    }
}

fn record_cursor(shared: &Shared, news: &News) -> Result<(), WatchError> {
    if let Some(c) = news.cursor {
        shared
            .record(Entry {
                cursor: Some(c),
                ..Entry::default()
            })
            .map_err(|e| WatchError::Journal(e.to_string()))?;
    }
    Ok(())
}

/// Queues again every series a previous run claimed but did not finish.
async fn redo_claimed(shared: &Arc<Shared>, tx: &mpsc::Sender<WorkItem>) -> Result<(), WatchError> {
    let claimed = shared
        .journal
        .lock()
        .map(|j| j.claimed())
        .unwrap_or_default();
    let series: BTreeMap<String, String> = claimed
        .into_iter()
        .map(|(s, study, _)| (s, study))
        .collect();
    for (uid, study) in series {
        let found = shared
            .patiently(&format!("QIDO-RS series {uid}"), || {
                shared.pacs.find_series(&uid)
            })
            .await;
        match found {
            Ok(info) => arrived(shared, tx, info, Instant::now()).await?,
            Err(e @ PacsError::NoSuchSeries { .. }) => {
                for m in &shared.models {
                    if shared
                        .journal
                        .lock()
                        .ok()
                        .and_then(|j| j.state(&uid, &m.key))
                        == Some(State::Claimed)
                    {
                        let mut entry = Entry::new(&uid, &study, &m.key, State::Failed);
                        entry.reason = Some(e.to_string());
                        shared
                            .record(entry)
                            .map_err(|e| WatchError::Journal(e.to_string()))?;
                    }
                }
            }
            Err(e) => return Err(WatchError::Pacs(e)),
        }
    }
    Ok(())
}

/// A series arrived: decide for each model (journalled), queue it for those that take it.
async fn arrived(
    shared: &Arc<Shared>,
    tx: &mpsc::Sender<WorkItem>,
    info: SeriesInfo,
    at: Instant,
) -> Result<(), WatchError> {
    let uid = info.series_uid.clone();
    let seen = |model: &str| {
        shared
            .journal
            .lock()
            .ok()
            .and_then(|j| j.state(&uid, model))
    };
    if seen(ANY_MODEL) == Some(State::Seen) {
        return Ok(());
    }
    shared.audit.event(
        "arrived",
        json!({
            "series": uid, "study": info.study_uid, "modality": info.modality,
            "description": info.description(), "instances": info.instances,
        }),
    );
    let mut todo = Vec::new();
    for (i, m) in shared.models.iter().enumerate() {
        match seen(&m.key) {
            Some(State::Claimed) => todo.push(i),
            Some(_) => {}
            None => {
                let decision = selects(&m.model, &info);
                let state = if decision.is_ok() {
                    State::Claimed
                } else {
                    State::Skipped
                };
                let mut entry = Entry::new(&uid, &info.study_uid, &m.key, state);
                entry.reason = decision.clone().err();
                shared
                    .record(entry)
                    .map_err(|e| WatchError::Journal(e.to_string()))?;
                match decision {
                    Ok(()) => {
                        shared
                            .audit
                            .event("selected", json!({"series": uid, "model": m.key}));
                        todo.push(i);
                    }
                    Err(why) => shared.audit.event(
                        "skipped",
                        json!({"series": uid, "model": m.key, "reason": why}),
                    ),
                }
            }
        }
    }
    let fresh = shared
        .in_flight
        .lock()
        .map(|mut f| f.insert(uid.clone()))
        .unwrap_or(false);
    if todo.is_empty() || !fresh {
        if fresh {
            if let Ok(mut f) = shared.in_flight.lock() {
                f.remove(&uid);
            }
        }
        return Ok(());
    }
    // Waits while the queue is full: the feed is not read further meanwhile.
    let item = WorkItem {
        info,
        models: todo,
        arrived: at,
    };
    tx.send(item)
        .await
        .map_err(|_| WatchError::Setup("the workers stopped".into()))
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
