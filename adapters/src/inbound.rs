//! The SMTP listener wired to the engine: [`EngineSink`] answers RCPT from the
//! configured domain and mailbox and hands each message to `Engine::ingest`, so
//! that `250` follows only the durable commit of the raw message and its outcome.
//! The listener itself (`crate::smtp`) knows nothing of the engine.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kontor_engine::error::Unavailable;
use kontor_engine::intake::InboundMail;
use kontor_engine::{Engine, EngineError};

use crate::config::Config;
use crate::smtp::{DeliveryVerdict, Envelope, MailSink, RcptVerdict, SmtpConfig};

/// Delivers accepted mail into the engine.
pub struct EngineSink {
    pub engine: Arc<Engine>,
}

impl MailSink for EngineSink {
    fn check_recipient(&self, address: &str) -> RcptVerdict {
        if self.engine.accepts_recipient(address) {
            RcptVerdict::Accept
        } else {
            RcptVerdict::RejectNotOurs
        }
    }

    fn deliver(
        &self,
        envelope: Envelope,
    ) -> Pin<Box<dyn Future<Output = DeliveryVerdict> + Send + '_>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            let mail = InboundMail {
                raw: envelope.data,
                envelope_from: Some(envelope.mail_from),
                envelope_to: envelope.rcpt_to,
            };
            // The ingest waits for the group-committed flush: off the async workers.
            match tokio::task::spawn_blocking(move || engine.ingest(mail)).await {
                Ok(Ok(_result)) => DeliveryVerdict::Stored,
                Ok(Err(error)) if error.unavailable() == Some(Unavailable::DiskFull) => {
                    log_failure(&error);
                    DeliveryVerdict::InsufficientStorage
                }
                Ok(Err(error)) => {
                    log_failure(&error);
                    DeliveryVerdict::TempFail(
                        "cannot store the message now, try again later".into(),
                    )
                }
                Err(error) => {
                    tracing::error!(%error, "smtp intake task failed");
                    DeliveryVerdict::TempFail(
                        "cannot store the message now, try again later".into(),
                    )
                }
            }
        })
    }
}

fn log_failure(error: &EngineError) {
    tracing::error!(%error, "storing inbound mail failed; answered 4xx");
}

/// The listener's settings from `[inbound]`.
pub fn smtp_config(config: &Config) -> SmtpConfig {
    SmtpConfig {
        hostname: config.inbound.domain.clone(),
        max_message_bytes: config.inbound.max_message_bytes,
        max_line_bytes: 64 * 1024,
        max_recipients: 100,
        idle_timeout: Duration::from_secs(config.inbound.smtp_idle_timeout_seconds.max(1)),
        data_timeout: Duration::from_secs(config.inbound.smtp_data_timeout_seconds.max(1)),
        max_connections: config.inbound.smtp_max_connections.max(1),
        lmtp: false,
    }
}

/// Whether `lmtp_listen` names a unix socket rather than an address.
fn is_socket_path(listen: &str) -> bool {
    listen.starts_with('/') || listen.starts_with('.')
}

/// Binds `inbound.lmtp_listen` (an address, or a unix socket path) and serves LMTP
/// into the engine until `shutdown`; `None` when it is off. Prints its listening line
/// as the other listeners do.
pub async fn start_lmtp(
    config: &Config,
    engine: &Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
    use anyhow::Context;
    let listen = config.inbound.lmtp_listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let listener: crate::smtp::Listener = if is_socket_path(listen) {
        let path = std::path::Path::new(listen);
        // A socket left by a server that did not shut down cleanly would make the
        // bind fail; anything else at that path is not ours to remove.
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if metadata.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {listen} (inbound.lmtp_listen)"))?;
        println!("kontor: lmtp listening on {listen}");
        listener.into()
    } else {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (inbound.lmtp_listen)"))?;
        println!("kontor: lmtp listening on {}", listener.local_addr()?);
        listener.into()
    };
    let sink = Arc::new(EngineSink {
        engine: engine.clone(),
    });
    let lmtp_config = SmtpConfig {
        lmtp: true,
        ..smtp_config(config)
    };
    Ok(Some(tokio::spawn(crate::smtp::serve(
        listener,
        lmtp_config,
        sink,
        shutdown,
    ))))
}
