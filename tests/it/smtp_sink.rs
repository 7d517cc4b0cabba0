//! A real SMTP server for the suite: `tests/support/smtp_sink.py` on aiosmtpd (Python),
//! code that is not Kontor's. It writes every accepted message to a file; the helpers
//! here read them back and wait for them with deadlines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MimeHeaders;

/// One running sink, killed when dropped.
pub struct SmtpSink {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// A message the sink accepted, parsed.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let message = mail_parser::MessageParser::default().parse(&self.raw)?;
        message
            .header_raw(name)
            .map(|value| value.trim().to_string())
    }

    pub fn envelope_to(&self) -> String {
        self.header("X-Envelope-To").unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.subject().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_text(0).map(|t| t.to_string()))
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_html(0).map(|t| t.to_string()))
            .unwrap_or_default()
    }

    pub fn content_type(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| {
                m.content_type()
                    .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
            })
            .unwrap_or_default()
    }

    /// The first `<public_url>/l/<token>` in the text part.
    pub fn link(&self) -> Option<String> {
        let text = self.text();
        let start = text.find("http://")?;
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        link.contains("/l/").then_some(link)
    }
}

impl SmtpSink {
    /// Starts a sink on a free port; a clear message when python3 or aiosmtpd is missing.
    pub fn start() -> SmtpSink {
        ensure_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir");
        let (child, port) = spawn(dir.path(), 0);
        SmtpSink {
            dir,
            port,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The `[outbound]` keys that send to this sink, retrying every second.
    pub fn outbound_toml(&self) -> String {
        format!(
            "transport = \"smtp\"\nsmtp_url = \"{}\"\nretry_base_seconds = 1\nretry_max_seconds = 1\nmax_attempts = 1000\n",
            self.url()
        )
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port, keeping what was received.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match try_spawn(self.dir.path(), self.port) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return;
                }
                Err(error) if Instant::now() < deadline => {
                    // The port may linger for a moment after the kill.
                    let _ = error;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => panic!("the SMTP sink did not restart: {error}"),
            }
        }
    }

    /// Every message accepted so far, in the order the sink numbered them.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| {
                        let path = entry.path();
                        let number = path
                            .file_name()?
                            .to_str()?
                            .strip_suffix(".eml")?
                            .parse()
                            .ok()?;
                        Some((number, path))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| {
                let raw = std::fs::read(&path).ok()?;
                Some(Received { raw })
            })
            .collect()
    }

    /// Waits until `condition` holds for the messages received, or panics at the deadline.
    pub async fn wait_for(
        &self,
        what: &str,
        condition: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let messages = self.messages();
            if condition(&messages) {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received {} messages",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a message to `address` and returns the last one.
    pub async fn wait_for_mail_to(&self, address: &str, count: usize) -> Received {
        let messages = self
            .wait_for(&format!("{count} message(s) to {address}"), |messages| {
                messages
                    .iter()
                    .filter(|m| m.envelope_to() == address)
                    .count()
                    >= count
            })
            .await;
        messages
            .into_iter()
            .filter(|m| m.envelope_to() == address)
            .nth(count - 1)
            .expect("the message is there")
    }

    /// Addresses the sink refused (`bounce*` and `tempfail*`), one per attempt.
    pub fn refused(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("refused.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp_sink.py")
}

fn spawn(dir: &Path, port: u16) -> (Child, u16) {
    match try_spawn(dir, port) {
        Ok(started) => started,
        Err(error) => panic!("{error}"),
    }
}

fn ensure_aiosmtpd() {
    // A failure shows up as the clear error of `try_spawn`.
    let _ = crate::tools::ensure(&crate::tools::AIOSMTPD);
}

fn try_spawn(dir: &Path, port: u16) -> Result<(Child, u16), String> {
    let mut child = Command::new("python3")
        .arg(script())
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            format!("cannot run python3 for the SMTP sink ({error}); install Python 3 and `pip install aiosmtpd`")
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|error| error.to_string())?;
    match line.trim().strip_prefix("listening on ") {
        Some(port) => Ok((child, port.parse().map_err(|_| "bad port line")?)),
        None => {
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            if stderr.contains("No module named 'aiosmtpd'") {
                Err("the SMTP sink needs aiosmtpd: run `pip install aiosmtpd`".to_string())
            } else {
                Err(format!("the SMTP sink did not start: {}", stderr.trim()))
            }
        }
    }
}
