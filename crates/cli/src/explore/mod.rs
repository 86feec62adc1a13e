//! `featx explore`: a local web page to look inside a model. The server ([`routes`]) answers
//! the page's requests; a guard ([`guard`]) keeps out whoever should not get in; one compute
//! thread ([`pool`]) owns the model ([`engine`]) and the kept outputs ([`cache`]); the images
//! live under opaque ids ([`images`]). The page itself (`assets/`) is embedded in the binary.

mod cache;
mod engine;
mod guard;
mod images;
mod pool;
mod routes;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::commands::explore::ExploreArgs;
use crate::error::CliError;
use engine::Engine;
use guard::Guard;
use images::Images;
use pool::Pool;
use routes::AppState;

const MIB: u64 = 1 << 20;

/// Loads the model, binds, prints the URL line and serves until Ctrl-C or SIGTERM.
pub(crate) fn serve(args: &ExploreArgs) -> Result<(), CliError> {
    let paths = if args.images.is_empty() {
        Vec::new()
    } else {
        featx_dataset::list_images(&args.images)?
    };
    let loopback = args.bind.is_loopback();
    let token = match (&args.token, args.no_token) {
        (Some(t), _) if t.is_empty() => {
            return Err(CliError::Usage("--token must not be empty".into()));
        }
        (Some(t), _) => Some(t.clone()),
        (None, true) => {
            if !loopback {
                eprintln!(
                    "warning: serving {} without a token: anyone who can reach this address \
                     can use the model and read its images",
                    args.bind
                );
            }
            None
        }
        (None, false) if loopback => None,
        (None, false) => Some(
            guard::random_token()
                .map_err(|e| CliError::Device(format!("cannot make a token: {e}")))?,
        ),
    };
    let to_bytes = |mib: u64| usize::try_from(mib.saturating_mul(MIB)).unwrap_or(usize::MAX);
    let images = Arc::new(
        Images::new(paths, to_bytes(args.max_upload_mb), args.max_pixels).map_err(|e| {
            CliError::Output {
                path: std::env::temp_dir(),
                reason: format!("cannot make the upload folder: {e}"),
            }
        })?,
    );
    // The upload folder goes when the server does, however it stops.
    let _cleanup = Cleanup(images.clone());
    let cache_used = Arc::new(AtomicUsize::new(0));
    let (pool, ready) = {
        let (owned, images, used) = (args.clone(), images.clone(), cache_used.clone());
        Pool::start(move || Engine::new(&owned, images, used), args.queue)?
    };
    let state = AppState {
        pool: Arc::new(pool),
        images,
        nodes_json: Arc::new(ready.nodes_json + "\n"),
        diagram: Arc::new(ready.diagram),
        info: Arc::new(ready.info),
        cache_used,
        cache_limit: to_bytes(args.cache_mb),
    };
    let router = routes::router(
        state,
        Guard {
            token: token.clone(),
            loopback,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Device(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .map_err(|e| {
                CliError::Usage(format!("cannot listen on {}:{}: {e}", args.bind, args.port))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Device(e.to_string()))?;
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        println!(
            "featx explore: serving http://{host}:{}/{query}",
            addr.port()
        );
        let _ = std::io::stdout().flush();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| CliError::Device(format!("the server stopped: {e}")))
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("featx explore: shutting down");
}

/// Removes the upload folder when dropped.
struct Cleanup(Arc<Images>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.close();
    }
}
