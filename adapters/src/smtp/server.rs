//! Accept loop, connection limit and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::io::Stream;
use super::limits::{ACCEPT_ERROR_BACKOFF, FINAL_WRITE_TIMEOUT, SHUTDOWN_GRACE};
use super::session;
use super::{MailSink, SmtpConfig};

/// Where sessions come from: a TCP port, or a unix socket (LMTP from a local MTA).
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Listener::Unix(listener)
    }
}

impl Listener {
    /// The next connection. A unix socket's peer has no IP address; it shows as
    /// `0.0.0.0:0` (the socket's permissions already say who may connect).
    async fn accept(&self) -> io::Result<(Box<dyn Stream>, SocketAddr)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                // Mail arrives in small writes; Nagle would delay replies.
                let _ = stream.set_nodelay(true);
                Ok((Box::new(stream), peer))
            }
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok((Box::new(stream), SocketAddr::from(([0, 0, 0, 0], 0))))
            }
        }
    }
}

/// Serves SMTP on `listener` until `shutdown` resolves.
///
/// Each connection runs on its own task. When `shutdown` completes the
/// listener is closed, sessions waiting for a command get `421 4.3.2`, and
/// sessions inside a transaction get a short grace period (a few seconds)
/// before they are aborted. Returns an error only if the listener itself
/// becomes unusable; per-connection failures are logged and skipped.
pub async fn serve(
    listener: impl Into<Listener>,
    config: SmtpConfig,
    sink: Arc<dyn MailSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.into();
    let config = Arc::new(config);
    // Semaphore::new panics above MAX_PERMITS; no real limit gets near it.
    let slots = Arc::new(Semaphore::new(
        config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);

    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(err) = joined {
                    if err.is_panic() {
                        warn!(%err, "smtp session panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let cfg = config.clone();
                            let sink = sink.clone();
                            let stop = stop_rx.clone();
                            tasks.spawn(async move {
                                session::run(stream, peer, cfg, sink, stop).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            debug!(%peer, "smtp connection limit reached");
                            tasks.spawn(refuse(stream, config.hostname.clone()));
                        }
                    }
                }
                Err(err) if is_fatal(&err) => break Err(err),
                Err(err) => {
                    // Usually EMFILE or a connection reset before accept.
                    warn!(%err, "smtp accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    };

    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            remaining = tasks.len(),
            "smtp shutdown grace expired, aborting sessions"
        );
        tasks.shutdown().await;
    }
    result
}

/// Tells an over-limit client to come back later, as RFC 5321 3.8 suggests,
/// instead of leaving it to time out.
async fn refuse(mut stream: Box<dyn Stream>, hostname: String) {
    let line = format!("421 4.7.0 {hostname} too many connections, try again later\r\n");
    let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Errors meaning the listening socket itself is broken; retrying is futile.
fn is_fatal(err: &io::Error) -> bool {
    const EBADF: i32 = 9;
    const ENOTSOCK: i32 = 88;
    err.kind() == io::ErrorKind::InvalidInput
        || (cfg!(target_os = "linux") && matches!(err.raw_os_error(), Some(EBADF | ENOTSOCK)))
}
