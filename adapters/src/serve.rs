//! `kontor serve`: wires the engine to its listeners and runs until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use kontor_engine::model::Locale;
use kontor_engine::{Engine, EngineConfig};

use crate::config::Config;
use crate::http::{self, AppState};

/// The engine settings the config file carries.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        max_body_bytes: config.inbound.max_message_bytes,
        default_locale: Locale::parse(&config.default_locale).unwrap_or(Locale::De),
        mailbox: config.inbound.mailbox.clone(),
        domain: config.inbound.domain.clone(),
    }
}

/// Opens the engine on the configured data dir; a data dir held by a running server
/// is one clear error.
pub fn open_engine(config: &Config) -> anyhow::Result<Engine> {
    Engine::open(&config.data_dir, engine_config(config))
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// Runs the server until a shutdown signal, then flushes the store.
pub async fn run(config: Config, demo: bool) -> anyhow::Result<()> {
    let engine = Arc::new(open_engine(&config)?);
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
    let listener = TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let address = listener.local_addr()?;
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
        },
    );
    http::serve(listener, state, shutdown_signal()).await?;
    tokio::task::spawn_blocking(move || indexer.stop()).await?;
    tracing::info!("shutting down: flushing the store");
    let flushed = tokio::task::spawn_blocking(move || engine.flush()).await?;
    flushed.map_err(|error| anyhow::anyhow!("flushing the store at shutdown failed: {error}"))?;
    Ok(())
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
