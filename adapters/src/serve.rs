//! `kontor serve`: wires the engine to its listeners and runs until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use kontor_engine::model::Locale;
use kontor_engine::notify::{EmailTemplates, NotifySettings};
use kontor_engine::{Engine, EngineConfig};

use crate::config::Config;
use crate::http::{self, AppState};
use crate::inbound::{smtp_config, EngineSink};

/// The engine settings the config file carries.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        max_body_bytes: config.inbound.max_message_bytes,
        default_locale: Locale::parse(&config.default_locale).unwrap_or(Locale::De),
        mailbox: config.inbound.mailbox.clone(),
        domain: config.inbound.domain.clone(),
        notify: NotifySettings {
            public_url: config.public_url_for(None),
            view_link_days: config.security.view_link_days,
            sign_link_days: config.security.sign_link_days,
            login_link_minutes: config.security.login_link_minutes,
            session_hours: config.security.session_hours,
            max_auto_per_address_per_hour: config.outbound.max_auto_per_address_per_hour,
            reopen_days: config.inbound.reopen_days,
        },
        reopen_days: config.inbound.reopen_days,
        max_per_sender_per_hour: config.inbound.max_per_sender_per_hour,
        min_free_bytes: config.store.min_free_mb.saturating_mul(1024 * 1024),
        cache_capacity_bytes: config.store.cache_capacity_mb.saturating_mul(1024 * 1024),
        compression: config.store.compression,
        webhooks: crate::outbound::webhooks::subscriptions(config),
    }
}

/// Opens the engine on the configured data dir; a data dir held by a running server
/// is one clear error.
pub fn open_engine(config: &Config) -> anyhow::Result<Engine> {
    Engine::open(&config.data_dir, engine_config(config))
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// The templates this build ships, for installs that have no `templates/` beside them.
static SHIPPED_TEMPLATES: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// The templates to load: `templates_dir` when it exists; when it is the default and
/// missing (a packaged binary started outside the source tree), the shipped set,
/// written once to `<data_dir>/templates-shipped` so operators can read them.
fn templates_dir(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    let configured = &config.templates_dir;
    if configured.exists()
        || configured != std::path::Path::new(crate::config::DEFAULT_TEMPLATES_DIR)
    {
        return Ok(configured.clone());
    }
    let shipped = config.data_dir.join("templates-shipped");
    std::fs::create_dir_all(&shipped)
        .and_then(|()| SHIPPED_TEMPLATES.extract(&shipped))
        .with_context(|| {
            format!(
                "cannot write the shipped templates to {}",
                shipped.display()
            )
        })?;
    tracing::info!(dir = %shipped.display(), "no templates/ here: using the templates this build ships");
    Ok(shipped)
}

/// `kontor jobs run`: runs one job at `now` on an engine that queues notices like
/// the server's, and returns its report line.
pub fn run_job_now(
    config: &Config,
    job: kontor_engine::ops::jobs::Job,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let email_templates = EmailTemplates::load(&templates_dir(config)?)?;
    let mut engine = open_engine(config)?;
    engine.set_clock(Arc::new(kontor_engine::clock::FixedClock::new(now)));
    engine.enable_notifications(email_templates);
    let report = engine
        .run_job(job, crate::scheduler::job_settings(config))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(report.to_string())
}

/// Runs the server until a shutdown signal, then flushes the store.
pub async fn run(mut config: Config, demo: bool) -> anyhow::Result<()> {
    // Templates first: a broken one stops the start with its file's name.
    let templates = templates_dir(&config)?;
    let email_templates = EmailTemplates::load(&templates)?;
    let pages = Arc::new(crate::http::pages::Pages::load(&templates)?);
    let sender_settings = crate::outbound::SenderSettings::from_config(&config)?;
    let webhook_settings = crate::outbound::webhooks::WebhookSenderSettings::from_config(&config)?;
    let imap_settings = crate::imap::ImapSettings::from_config(&config)?;
    let jobs = crate::scheduler::schedule(&config).map_err(|error| anyhow::anyhow!(error))?;
    // Bound before the engine opens, so that links carry the port the listener
    // really got (port 0 included) when public_url is unset.
    let listener = TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let address = listener.local_addr()?;
    config.public_url = config.public_url_for(Some(address));
    let mut engine = open_engine(&config)?;
    engine.enable_notifications(email_templates);
    let engine = Arc::new(engine);
    if demo {
        let seeded = {
            let engine = engine.clone();
            let config = config.clone();
            tokio::task::spawn_blocking(move || crate::demo::seed(&engine, &config)).await??
        };
        match seeded {
            Some(report) => println!("{report}"),
            None => println!("kontor: the data dir is not empty, so --demo seeded nothing"),
        }
    }
    // One shutdown signal for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let smtp = if config.inbound.smtp_listen.trim().is_empty() {
        None
    } else {
        let smtp_listener = TcpListener::bind(config.inbound.smtp_listen.trim())
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (inbound.smtp_listen)",
                    config.inbound.smtp_listen
                )
            })?;
        println!("kontor: smtp listening on {}", smtp_listener.local_addr()?);
        let sink = Arc::new(EngineSink {
            engine: engine.clone(),
        });
        Some(tokio::spawn(crate::smtp::serve(
            smtp_listener,
            smtp_config(&config),
            sink,
            wait_for(stopped.clone()),
        )))
    };
    let admin = crate::admin::AdminFile::publish(&config.data_dir, address)?;
    let lmtp = crate::inbound::start_lmtp(&config, &engine, wait_for(stopped.clone())).await?;
    println!("kontor: http listening on {address}");
    tracing::info!(%address, data_dir = %config.data_dir.display(), "kontor is up");
    let indexer = crate::indexer::Indexer::start(
        engine.clone(),
        std::time::Duration::from_millis(config.search.index_interval_ms.max(1)),
    );
    let state = AppState::new(
        engine.clone(),
        http::HttpSettings {
            public_url: config.public_url.clone(),
            onretail: http::webhooks::OnRetailSettings::new(
                &config.security.onretail_secret,
                &config.security.onretail_previous_secret,
                config.security.onretail_rate_per_minute,
            ),
            portal: http::portal::PortalSettings::new(
                &config.portal.vendor_name,
                &config.portal.logo_url,
                &config.portal.imprint_url,
                &config.portal.privacy_url,
                &config.portal.display_timezone,
                &config.public_url,
            ),
            admin_secret: admin.secret().to_string(),
        },
        pages,
    );
    let sender = tokio::spawn(crate::outbound::run(
        engine.clone(),
        sender_settings,
        stopped.clone(),
    ));
    let webhook_sender = tokio::spawn(crate::outbound::webhooks::run(
        engine.clone(),
        webhook_settings,
        stopped.clone(),
    ));
    let imap_door = imap_settings
        .map(|settings| tokio::spawn(crate::imap::run(engine.clone(), settings, stopped.clone())));
    let scheduler = tokio::spawn(crate::scheduler::run(
        engine.clone(),
        jobs,
        crate::scheduler::job_settings(&config),
        stopped.clone(),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    http::serve(listener, state, wait_for(stopped)).await?;
    if let Some(smtp) = smtp {
        match smtp.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the smtp listener failed"),
            Err(error) => tracing::error!(%error, "the smtp listener task failed"),
        }
    }
    if let Some(lmtp) = lmtp {
        match lmtp.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the lmtp listener failed"),
            Err(error) => tracing::error!(%error, "the lmtp listener task failed"),
        }
    }
    if let Err(error) = sender.await {
        tracing::error!(%error, "the outbox sender stopped abnormally");
    }
    if let Err(error) = webhook_sender.await {
        tracing::error!(%error, "the webhook sender stopped abnormally");
    }
    if let Some(Err(error)) = match imap_door {
        Some(door) => Some(door.await),
        None => None,
    } {
        tracing::error!(%error, "the imap door stopped abnormally");
    }
    if let Err(error) = scheduler.await {
        tracing::error!(%error, "the scheduler stopped abnormally");
    }
    tokio::task::spawn_blocking(move || indexer.stop()).await?;
    admin.withdraw();
    tracing::info!("shutting down: flushing the store");
    let flushed = tokio::task::spawn_blocking(move || engine.flush()).await?;
    flushed.map_err(|error| anyhow::anyhow!("flushing the store at shutdown failed: {error}"))?;
    Ok(())
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn wait_for(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
