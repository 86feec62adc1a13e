//! The compute side: one thread owns the model and its caches and runs requests in order from
//! a bounded queue, off the async runtime. burn's CPU kernels already spread one forward over
//! every core, so one thread at a time uses the machine fully; a full queue is an immediate
//! "busy" rather than an unbounded wait.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

use super::engine::Engine;
use crate::error::CliError;

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// Why a job did not run to an answer.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// The queue is full: try again later.
    Busy,
    /// The job panicked (a bug); the engine goes on with the next one.
    Failed,
}

/// The queue into the compute thread.
pub(crate) struct Pool {
    jobs: SyncSender<Job>,
}

impl Pool {
    /// Starts the compute thread, which builds its engine with `make` (loading the model) and
    /// reports back; the pool is returned once the engine is ready, or the error that stopped
    /// it. `queue` jobs may wait at once.
    pub(crate) fn start<R: Send + 'static>(
        make: impl FnOnce() -> Result<(Engine, R), CliError> + Send + 'static,
        queue: usize,
    ) -> Result<(Pool, R), CliError> {
        let (jobs, inbox) = sync_channel::<Job>(queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("featx-compute".into())
            .spawn(move || {
                let mut engine = match make() {
                    Ok((engine, ready)) => {
                        let _ = ready_tx.send(Ok(ready));
                        engine
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in inbox {
                    job(&mut engine);
                }
            })
            .map_err(|e| CliError::Device(format!("cannot start the compute thread: {e}")))?;
        let ready = ready_rx
            .recv()
            .map_err(|_| CliError::Device("the compute thread stopped while loading".into()))??;
        Ok((Pool { jobs }, ready))
    }

    /// Runs `f` on the engine and waits for its answer without blocking the runtime.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine| {
            let answer = std::panic::catch_unwind(AssertUnwindSafe(|| f(engine)));
            let _ = tx.send(answer.ok());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PoolError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Failed),
        }
        rx.await.ok().flatten().ok_or(PoolError::Failed)
    }
}
