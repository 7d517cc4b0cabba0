//! `TestApp`: the real `kontor` binary on a fresh data dir and a port of its own,
//! with one helper per endpoint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// reqwest is built without a rustls provider of its own (the workspace's choice,
/// `adapters/src/tls.rs`): ring is installed before the suite builds any client.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The `kontor` binary, built once per test run with the profile of this test binary.
pub fn kontor_binary() -> &'static Path {
    install_tls_provider();
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary has a path");
        // target/<profile>/deps/it-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // The same package and target selection as `cargo test --workspace`, so the
        // features resolve alike and nothing is rebuilt: `-p kontor` alone flipped
        // lettre's and rustls's features and cost a rebuild of half a minute.
        build.args(["build", "--quiet", "--workspace", "--bins", "--tests"]);
        // What `cargo test` sets for this test binary (the package's name, version,
        // manifest dir) must not reach the inner build: build scripts that name them
        // in `rerun-if-env-changed` (ring's does) would see them change, rerun, and
        // rebuild ring and all above it, here and again at the next `cargo test`.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_by_cargo_test = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                || matches!(
                    name.as_ref(),
                    "OUT_DIR" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
                );
            if set_by_cargo_test {
                build.env_remove(name.as_ref());
            }
        }
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the kontor binary failed");
        profile_dir.join("kontor")
    })
}

/// A running server, killed when dropped.
pub struct TestApp {
    pub _dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub address: String,
    pub key: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    pub stdout_lines: Vec<String>,
    /// The SMTP listener, when the app was spawned with `smtp: true`.
    pub smtp_address: Option<std::net::SocketAddr>,
    /// The LMTP listener (an address or a socket path), when `inbound.lmtp_listen` is set.
    pub lmtp_address: Option<String>,
    data_dir: PathBuf,
}

/// What a test may change in the config before the server starts.
#[derive(Debug, Clone, Default)]
pub struct TestConfig {
    /// Top-level keys.
    pub extra_toml: String,
    /// Keys of the `[outbound]` and `[security]` sections.
    pub outbound_toml: String,
    pub security_toml: String,
    /// Defaults to the repository's `templates/`.
    pub templates_dir: Option<PathBuf>,
    pub demo: bool,
    /// Start the SMTP listener on a port of its own.
    pub smtp: bool,
    /// Lines for the `[inbound]` section, e.g. `reopen_days = 0`.
    pub inbound_toml: String,
    /// Defaults to `data/` in the test's temporary dir.
    pub data_dir: Option<PathBuf>,
}

/// The repository's templates.
pub fn shipped_templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestConfig::default()).await
    }

    pub async fn spawn_with(options: TestConfig) -> TestApp {
        install_tls_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("kontor.toml");
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let templates = options
            .templates_dir
            .clone()
            .unwrap_or_else(shipped_templates);
        let toml = format!(
            "data_dir = {data:?}\ntemplates_dir = {templates:?}\n{extra}\n[http]\nlisten = \"127.0.0.1:0\"\n[inbound]\nsmtp_listen = {smtp:?}\n{inbound}\n[outbound]\nfile_dir = {outbox:?}\n{outbound}\n[security]\n{security}\n",
            data = data_dir.display().to_string(),
            smtp = if options.smtp { "127.0.0.1:0" } else { "" },
            inbound = options.inbound_toml,
            templates = templates.display().to_string(),
            outbox = dir.path().join("outbox").display().to_string(),
            extra = options.extra_toml,
            outbound = options.outbound_toml,
            security = options.security_toml,
        );
        std::fs::write(&config_path, toml).expect("config written");
        let key = if options.demo {
            String::new()
        } else {
            create_key(&config_path, "test").expect("key created")
        };
        let mut app = TestApp {
            _dir: dir,
            config_path,
            address: String::new(),
            key,
            client: reqwest::Client::new(),
            child: None,
            stdout_lines: vec![],
            smtp_address: None,
            lmtp_address: None,
            data_dir,
        };
        app.start(options.demo).await.expect("server starts");
        app
    }

    /// Starts (or restarts) the server on the same data dir.
    pub async fn start(&mut self, demo: bool) -> anyhow::Result<()> {
        let mut command = Command::new(kontor_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env(
                "KONTOR_LOG",
                std::env::var("TEST_KONTOR_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if demo {
            command.arg("--demo");
        }
        let mut child = command.spawn().context("spawning kontor serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        self.stdout_lines.clear();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = receiver
                .recv_timeout(left)
                .context("the server printed no listening line")?;
            self.stdout_lines.push(line.clone());
            if let Some(address) = line.strip_prefix("kontor: smtp listening on ") {
                self.smtp_address = Some(address.trim().parse().context("smtp address")?);
            }
            if let Some(address) = line.strip_prefix("kontor: lmtp listening on ") {
                self.lmtp_address = Some(address.trim().to_string());
            }
            if let Some(address) = line.strip_prefix("kontor: http listening on ") {
                self.address = format!("http://{}", address.trim());
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while receiver.recv().is_ok() {});
        let health = self
            .client
            .get(format!("{}/healthz", self.address))
            .send()
            .await?;
        if health.status() != StatusCode::OK {
            bail!("healthz answered {}", health.status());
        }
        Ok(())
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    /// SIGTERM, then wait for the clean exit (status 0) a graceful shutdown must give.
    pub fn terminate(&mut self) {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = child.wait().expect("server exits");
        assert!(exit.success(), "SIGTERM ended the server with {exit}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send_json(self.client.post(self.url(path)), body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send_json(self.client.put(self.url(path)), body).await
    }

    async fn send_json(
        &self,
        request: reqwest::RequestBuilder,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = request
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.get_response(path).await).await
    }

    /// A GET with the key, answered with bytes (downloads).
    pub async fn get_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self.get_response(path).await;
        let status = response.status();
        (status, response.bytes().await.expect("body read").to_vec())
    }

    async fn get_response(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request sent")
    }

    /// Runs another kontor command on this app's config.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(kontor_binary())
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .env("KONTOR_LOG", "warn")
            .output()
            .expect("kontor runs")
    }

    // One helper per endpoint, each asserting success.

    pub async fn create_company(&self, name: &str, kind: &str, reseller_id: Option<&str>) -> Value {
        let mut body = json!({"name": name, "kind": kind});
        if let Some(reseller) = reseller_id {
            body["reseller_id"] = json!(reseller);
        }
        expect(
            StatusCode::CREATED,
            self.post("/api/v1/companies", &body).await,
        )
    }

    pub async fn create_contact(
        &self,
        company_id: &str,
        name: &str,
        email: &str,
        role: &str,
    ) -> Value {
        let body = json!({"company_id": company_id, "name": name, "email": email, "role": role});
        expect(
            StatusCode::CREATED,
            self.post("/api/v1/contacts", &body).await,
        )
    }

    /// The usual cast: "Café Müller" with its manager Maria Müller, and a staff member.
    pub async fn cafe_with_manager_and_staff(&self) -> (Value, Value, Value) {
        let company = self.create_company("Café Müller", "customer", None).await;
        let contact = self
            .create_contact(
                company["id"].as_str().unwrap(),
                "Maria Müller",
                "maria@mueller.example",
                "manager",
            )
            .await;
        let staff = self.create_staff("Sam Support", "sam@vendor.example").await;
        (company, contact, staff)
    }

    pub async fn create_staff(&self, name: &str, email: &str) -> Value {
        expect(
            StatusCode::CREATED,
            self.post("/api/v1/staff", &json!({"name": name, "email": email}))
                .await,
        )
    }

    pub async fn create_ticket(&self, body: &Value) -> Value {
        expect(
            StatusCode::CREATED,
            self.post("/api/v1/tickets", body).await,
        )
    }

    /// The data dir of this server (keys live in `keys/signing.json`).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    /// The outbox rows, optionally of one state.
    pub async fn outbox(&self, state: Option<&str>) -> Vec<Value> {
        let path = match state {
            Some(state) => format!("/api/v1/outbox?per_page=500&state={state}"),
            None => "/api/v1/outbox?per_page=500".to_string(),
        };
        let (status, body) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until no outbox row is pending.
    pub async fn wait_until_outbox_drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending = self.outbox(Some("pending")).await;
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox still has {} pending rows: {:?}",
                pending.len(),
                pending.first()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kontor jobs run NAME --now AT` (the server stopped): its report line.
    pub fn run_job(&self, name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
        let output = self.command(&["jobs", "run", name, "--now", &at.to_rfc3339()]);
        assert!(
            output.status.success(),
            "jobs run {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The notices of `kind` to `to` once sent, newest first, each with the message
    /// the file transport wrote (the API shows no bodies: they hold links).
    pub async fn sent_mails(
        &self,
        kind: &str,
        to: &str,
    ) -> Vec<(Value, crate::smtp_sink::Received)> {
        self.wait_until_outbox_drained().await;
        let outbox_dir = self._dir.path().join("outbox");
        self.outbox(None)
            .await
            .into_iter()
            .filter(|row| row["kind"] == kind && row["to"] == to)
            .map(|row| {
                let number: String = row["id"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                let raw =
                    std::fs::read(outbox_dir.join(format!("{number}.eml"))).unwrap_or_default();
                (row, crate::smtp_sink::Received { raw })
            })
            .collect()
    }

    pub async fn history(&self, ticket_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/v1/tickets/{ticket_id}/history?per_page=500"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Asserts the status and returns the body.
pub fn expect(status: StatusCode, (actual, body): (StatusCode, Value)) -> Value {
    assert_eq!(actual, status, "unexpected answer: {body}");
    body
}

pub fn create_key(config_path: &Path, name: &str) -> anyhow::Result<String> {
    let output = Command::new(kontor_binary())
        .args(["keys", "create", "--name", name, "--config"])
        .arg(config_path)
        .env("KONTOR_LOG", "warn")
        .output()?;
    if !output.status.success() {
        bail!(
            "keys create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

/// Asserts the contract's error shape and returns `(code, fields)`.
pub fn error_of(status: StatusCode, (actual, body): (StatusCode, Value)) -> (String, Value) {
    assert_eq!(actual, status, "unexpected answer: {body}");
    let error = &body["error"];
    assert!(error["message"].is_string(), "no message in {body}");
    let code = error["code"].as_str().unwrap_or_default().to_string();
    assert!(!code.is_empty(), "no code in {body}");
    (code, error.get("fields").cloned().unwrap_or(Value::Null))
}
