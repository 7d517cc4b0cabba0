//! The IMAP door (`[inbound.imap]`): fetches each message of a mailbox folder, hands
//! it to the same intake as SMTP (`Engine::ingest`), and moves it to `done_folder`
//! only once the intake answered, which is after the store's flush. A message whose
//! intake failed stays in the folder for the next round; a crash between the intake
//! and the move leaves it there too, and the next round's intake calls it a
//! `duplicate` (same Message-ID or content) and moves it: no message twice.
//!
//! Waits for new mail with IDLE when the server offers it, else polls every
//! `poll_seconds`; a lost connection is retried with backoff. The client is
//! async-imap on tokio, over TLS (rustls on ring, the Mozilla roots: `crate::tls`)
//! unless `tls = false`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use kontor_engine::intake::InboundMail;
use kontor_engine::Engine;

use crate::config::Config;

/// The first and the longest wait before connecting again after a failure.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(300);
/// Servers drop an IDLE after 30 minutes (RFC 2177); renew well before.
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// The door's settings, from `[inbound.imap]`.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub user: String,
    pub password: String,
    pub folder: String,
    pub done_folder: String,
    pub poll: Duration,
}

impl ImapSettings {
    /// `None` while `host` is empty (the door is off); the password file is read now,
    /// so a missing one stops the start naming the key.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let imap = &config.inbound.imap;
        if imap.host.trim().is_empty() {
            return Ok(None);
        }
        let password = std::fs::read_to_string(&imap.password_file)
            .with_context(|| {
                format!(
                    "cannot read inbound.imap.password_file {}",
                    imap.password_file.display()
                )
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Some(ImapSettings {
            host: imap.host.trim().to_string(),
            port: imap.port,
            tls: imap.tls,
            user: imap.user.clone(),
            password,
            folder: imap.folder.clone(),
            done_folder: imap.done_folder.clone(),
            poll: Duration::from_secs(imap.poll_seconds.max(1)),
        }))
    }
}

/// Runs the door until `stop` turns true.
pub async fn run(engine: Arc<Engine>, settings: ImapSettings, mut stop: watch::Receiver<bool>) {
    let mut backoff = RECONNECT_FIRST;
    loop {
        if *stop.borrow() {
            return;
        }
        match connect_and_serve(&engine, &settings, &mut stop).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(host = %settings.host, error = format!("{error:#}"), retry_in_s = backoff.as_secs(), "imap door: connection failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

async fn connect_and_serve(
    engine: &Arc<Engine>,
    settings: &ImapSettings,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .with_context(|| format!("connecting to {}:{}", settings.host, settings.port))?;
    if settings.tls {
        let connector = tls_connector()?;
        let name = rustls_pki_types::ServerName::try_from(settings.host.clone())
            .with_context(|| format!("{} is not a host name", settings.host))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        serve_session(engine, settings, stop, stream).await
    } else {
        serve_session(engine, settings, stop, tcp).await
    }
}

/// The same rustls config as the mailgate's and the webhook sender's (`crate::tls`).
fn tls_connector() -> anyhow::Result<tokio_rustls::TlsConnector> {
    let config = crate::tls::client_config(None)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn serve_session<S>(
    engine: &Arc<Engine>,
    settings: &ImapSettings,
    stop: &mut watch::Receiver<bool>,
    stream: S,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await
        .context("reading the greeting")?
        .context("the server closed before its greeting")?;
    let mut session = client
        .login(&settings.user, &settings.password)
        .await
        .map_err(|(error, _)| error)
        .context("LOGIN")?;
    // The done folder may exist already; CREATE failing then is expected.
    if let Err(error) = session.create(&settings.done_folder).await {
        tracing::debug!(%error, folder = %settings.done_folder, "imap door: CREATE");
    }
    let capabilities = session.capabilities().await.context("CAPABILITY")?;
    let can_idle = capabilities.has_str("IDLE");
    let can_move = capabilities.has_str("MOVE");
    tracing::info!(host = %settings.host, folder = %settings.folder, idle = can_idle, "imap door: connected");
    loop {
        session
            .select(&settings.folder)
            .await
            .with_context(|| format!("SELECT {}", settings.folder))?;
        drain_folder(engine, settings, &mut session, can_move).await?;
        if *stop.borrow() {
            let _ = session.logout().await;
            return Ok(());
        }
        if can_idle {
            let mut idle = session.idle();
            idle.init().await.context("IDLE")?;
            let wait_for = settings.poll.max(Duration::from_secs(1)).min(IDLE_RENEW);
            let (wait, interrupt) = idle.wait_with_timeout(wait_for);
            let stopped = tokio::select! {
                outcome = wait => {
                    outcome.context("waiting in IDLE")?;
                    false
                }
                _ = stop.changed() => true,
            };
            drop(interrupt);
            session = idle.done().await.context("ending IDLE")?;
            if stopped {
                let _ = session.logout().await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(settings.poll) => {}
                _ = stop.changed() => {
                    let _ = session.logout().await;
                    return Ok(());
                }
            }
        }
    }
}

/// Ingests every message in the selected folder, oldest first, and moves each one
/// the intake took. A message the intake refused stays; the others go on.
async fn drain_folder<S>(
    engine: &Arc<Engine>,
    settings: &ImapSettings,
    session: &mut async_imap::Session<S>,
    can_move: bool,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mut uids: Vec<u32> = session
        .uid_search("UNDELETED")
        .await
        .context("UID SEARCH")?
        .into_iter()
        .collect();
    uids.sort_unstable();
    for uid in uids {
        let raw = {
            let fetches: Vec<async_imap::types::Fetch> = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .context("UID FETCH")?
                .try_collect()
                .await
                .context("UID FETCH")?;
            fetches
                .iter()
                .find_map(|fetch| fetch.body().map(<[u8]>::to_vec))
        };
        let Some(raw) = raw else {
            continue;
        };
        let mail = InboundMail {
            raw,
            envelope_from: None,
            envelope_to: Vec::new(),
        };
        let engine = engine.clone();
        // The ingest answers after the durable commit: only then may the message go.
        match tokio::task::spawn_blocking(move || engine.ingest(mail)).await {
            Ok(Ok(result)) => {
                tracing::info!(uid, outcome = ?result.outcome, "imap door: message taken");
            }
            Ok(Err(error)) => {
                tracing::warn!(uid, %error, "imap door: the intake refused a message; it stays for the next round");
                continue;
            }
            Err(error) => {
                tracing::error!(uid, %error, "imap door: the intake task failed");
                continue;
            }
        }
        move_to_done(session, uid, &settings.done_folder, can_move).await?;
    }
    Ok(())
}

/// MOVE when the server has it (RFC 6851); else COPY, flag `\Deleted` and expunge.
async fn move_to_done<S>(
    session: &mut async_imap::Session<S>,
    uid: u32,
    done_folder: &str,
    can_move: bool,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let set = uid.to_string();
    if can_move {
        session
            .uid_mv(&set, done_folder)
            .await
            .with_context(|| format!("UID MOVE to {done_folder}"))?;
        return Ok(());
    }
    session
        .uid_copy(&set, done_folder)
        .await
        .with_context(|| format!("UID COPY to {done_folder}"))?;
    let flagged: Vec<async_imap::types::Fetch> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Seen \\Deleted)")
        .await
        .context("UID STORE")?
        .try_collect()
        .await
        .context("UID STORE")?;
    drop(flagged);
    let expunged: Vec<u32> = session
        .expunge()
        .await
        .context("EXPUNGE")?
        .try_collect()
        .await
        .context("EXPUNGE")?;
    drop(expunged);
    Ok(())
}
