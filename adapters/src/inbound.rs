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
    }
}
