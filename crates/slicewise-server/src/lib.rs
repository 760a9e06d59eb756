//! # slicewise-server
//!
//! `slicewise serve`: a segmentation server that speaks the subset of MONAI Label's REST API
//! that OHIF's monai-label mode and 3D Slicer's MONAILabel extension use, on the slicewise
//! engine — the same `slicewise::infer::segment` the CLI and the C ABI run.
//!
//! ```no_run
//! use slicewise_server::{run, ServeOptions};
//! let opts = ServeOptions::default()
//!     .models_dir("models")
//!     .token("s3cret")
//!     .on_listening(|addr| println!("listening on http://{addr}"));
//! run(opts)?;
//! # Ok::<(), slicewise_server::ServeError>(())
//! ```
//!
//! Endpoints: `GET /info/`, `GET /auth/`, `POST /auth/token`, `GET /auth/token/valid`,
//! `GET|PUT|DELETE /datastore/` and `/datastore/image`, `POST /infer/{model}`,
//! `PUT /session/`, `GET|DELETE /session/{id}`, `GET /jobs/` and `/jobs/{id}`; with a PACS
//! (`--dicomweb`) `GET|POST /proxy/dicom/*`, with a viewer (`--ohif`) `GET /ohif/*`.
//!
//! Modules: [`options`] (what the server is told), [`models`] (loaded once, shared),
//! [`datastore`] and [`sessions`] (uploaded images on disk), [`dicomweb`] (a PACS: QIDO, WADO,
//! STOW, and the viewer's proxy), [`jobs`] (bounded queue, progress, cancellation), [`infer`]
//! (one request on the engine), [`upload`] and [`respond`] (multipart in and out), [`error`]
//! (every failure as a JSON answer), `routes` (the thin HTTP layer).

#![warn(missing_docs)]

pub mod app;
pub mod datastore;
pub mod dicomweb;
pub mod error;
pub mod infer;
pub mod jobs;
pub mod models;
pub mod options;
pub mod respond;
mod routes;
pub mod sessions;
pub mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use error::{ApiError, ServeError};
pub use options::{default_datastore, ServeOptions};

use app::App;
use datastore::Datastore;
use dicomweb::DicomWeb;
use jobs::Jobs;
use models::Models;
use sessions::Sessions;

/// Seconds a 503 (queue full) asks the client to wait.
const RETRY_AFTER_S: u64 = 5;

/// A server that is bound and has its models loaded, not yet answering.
pub struct Server {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl Server {
    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests until Ctrl-C or SIGTERM, then finishes the requests in flight.
    pub async fn run(self) -> Result<(), ServeError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(ServeError::Runtime)
    }
}

/// Loads the models, opens the datastore and binds the listen address.
pub async fn bind(opts: ServeOptions) -> Result<Server, ServeError> {
    // A panic anywhere (a decoder on a corrupt upload) becomes its request's error with its
    // place, not a Rust report on the server's stderr.
    slicewise::error::quiet_panics();
    if opts.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ServeError::Options("the token is empty".into()));
    }
    // Options are checked before the models load (seconds), so that a typo fails fast.
    let root = opts.datastore.clone().unwrap_or_else(default_datastore);
    let datastore = Datastore::open(&root)?;
    let dicomweb = match &opts.dicomweb {
        Some(url) => Some(
            DicomWeb::new(url, datastore.staging(), opts.max_upload_bytes)?
                .with_cache(root.join("dicomweb"))?,
        ),
        None => None,
    };
    let dir = opts.models_dir.clone();
    let model_options = opts.model.clone();
    let models = tokio::task::spawn_blocking(move || Models::load(&dir, &model_options))
        .await
        .map_err(|e| ServeError::Options(format!("loading the models failed: {e}")))??;
    let app = Arc::new(App {
        models,
        datastore,
        dicomweb,
        sessions: Sessions::open(&root, opts.session_expiry)?,
        jobs: Jobs::new(opts.workers, opts.queue, RETRY_AFTER_S),
        token: opts.token.clone(),
        batch_size: opts.batch_size.max(1),
    });
    let names: Vec<&str> = app.models.names().collect();
    log::info!("models: {}; datastore {}", names.join(", "), root.display());
    if let Some(d) = &app.dicomweb {
        log::info!("PACS (DICOMweb): {}", d.url());
    }
    let router = routes::router(app, &opts)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    Ok(Server {
        listener,
        router,
        addr,
    })
}

/// Binds, tells `opts.on_listening` the address, and serves until Ctrl-C or SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let on_listening = opts.on_listening.clone();
    let server = bind(opts).await?;
    if let Some(f) = on_listening {
        f(server.local_addr());
    }
    server.run().await
}

/// [`serve`] on a new multi-threaded tokio runtime, blocking until the server stops.
pub fn run(opts: ServeOptions) -> Result<(), ServeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(opts))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    log::info!("shutting down: finishing the requests in flight");
}
