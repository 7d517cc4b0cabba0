//! Administration without downtime. `serve` publishes `<data_dir>/admin.json` (its
//! URL and a fresh admin secret, readable by its own user only) and answers
//! `/admin/…` with that secret (`http::admin`). The CLI's `export`, `keys` and
//! `reindex` open the data dir themselves when no server holds it, and otherwise
//! reach the server that does through this file (or `--url`), so the same command
//! works whether or not a server runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use kontor_engine::store::StoreError;
use kontor_engine::EngineError;

use crate::http::admin::{AdminKeyJson, EXPORT_LINES_HEADER};

/// The file's name inside the data dir.
pub const ADMIN_FILE: &str = "admin.json";

#[derive(Debug, Serialize, Deserialize)]
struct AdminFileJson {
    /// Where the CLI reaches the server (loopback when it listens on all addresses).
    url: String,
    secret: String,
    pid: u32,
}

/// The published file, removed again at a clean shutdown.
#[derive(Debug)]
pub struct AdminFile {
    path: PathBuf,
    secret: String,
}

impl AdminFile {
    /// Writes `<data_dir>/admin.json` with a new secret, mode 0600, atomically.
    pub fn publish(data_dir: &Path, bound: std::net::SocketAddr) -> anyhow::Result<AdminFile> {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        let mut reachable = bound;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(match bound {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let json = serde_json::to_vec_pretty(&AdminFileJson {
            url: format!("http://{reachable}"),
            secret: secret.clone(),
            pid: std::process::id(),
        })?;
        let path = data_dir.join(ADMIN_FILE);
        let temporary = data_dir.join(format!("{ADMIN_FILE}.tmp"));
        let mut options = std::fs::File::options();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&temporary).and_then(|mut file| {
            file.write_all(&json)?;
            file.sync_all()
        });
        written
            .and_then(|()| std::fs::rename(&temporary, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(AdminFile { path, secret })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Removes the file (a clean shutdown); a stale one after a crash is harmless,
    /// as the CLI uses it only while the data dir is locked.
    pub fn withdraw(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when opening the engine failed because a server holds the data dir.
pub fn is_held_by_server(error: &EngineError) -> bool {
    matches!(error, EngineError::Store(StoreError::Locked { .. }))
}

/// A client of a running server's `/admin/…` routes.
pub struct AdminClient {
    url: String,
    secret: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl AdminClient {
    /// Reads `<data_dir>/admin.json`; `url` replaces the URL it names.
    pub fn from_data_dir(data_dir: &Path, url: Option<&str>) -> anyhow::Result<AdminClient> {
        let path = data_dir.join(ADMIN_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "a server holds the data dir, but its admin file {} cannot be read",
                path.display()
            )
        })?;
        let file: AdminFileJson = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an admin file", path.display()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(AdminClient {
            url: url.unwrap_or(&file.url).trim_end_matches('/').to_string(),
            secret: file.secret,
            // Our own rustls config, so that this works without a process provider.
            http: crate::tls::http_client(&crate::tls::ClientSettings::default())?,
            runtime,
        })
    }

    fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = self
            .runtime
            .block_on(request.bearer_auth(&self.secret).send())
            .with_context(|| format!("cannot reach the server at {}", self.url))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = self.runtime.block_on(response.text()).unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|body| body["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        anyhow::bail!("the server answered {status}: {message}")
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = self.send(request)?;
        Ok(self.runtime.block_on(response.json())?)
    }

    /// Creates a key; returns its secret.
    pub fn create_key(&self, name: &str) -> anyhow::Result<String> {
        let key: AdminKeyJson = self.json(
            self.http
                .post(format!("{}/admin/keys", self.url))
                .json(&serde_json::json!({ "name": name })),
        )?;
        key.secret
            .context("the server made the key but sent no secret")
    }

    pub fn list_keys(&self) -> anyhow::Result<Vec<AdminKeyJson>> {
        #[derive(Deserialize)]
        struct Keys {
            items: Vec<AdminKeyJson>,
        }
        let keys: Keys = self.json(self.http.get(format!("{}/admin/keys", self.url)))?;
        Ok(keys.items)
    }

    pub fn revoke_keys(&self, name: &str) -> anyhow::Result<u64> {
        let answer: serde_json::Value = self.json(
            self.http
                .post(format!("{}/admin/keys/revoke", self.url))
                .json(&serde_json::json!({ "name": name })),
        )?;
        Ok(answer["revoked"].as_u64().unwrap_or(0))
    }

    pub fn reindex(&self) -> anyhow::Result<u64> {
        let answer: serde_json::Value =
            self.json(self.http.post(format!("{}/admin/reindex", self.url)))?;
        Ok(answer["records"].as_u64().unwrap_or(0))
    }

    /// Streams the server's export into `out`; returns its line count.
    pub fn export(&self, without_secrets: bool, out: &mut dyn Write) -> anyhow::Result<u64> {
        let mut response = self.send(
            self.http
                .get(format!("{}/admin/export", self.url))
                .query(&[("without_secrets", without_secrets)]),
        )?;
        let lines = response
            .headers()
            .get(EXPORT_LINES_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        while let Some(chunk) = self.runtime.block_on(response.chunk())? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(lines)
    }
}
