//! A real Dovecot IMAP server for the IMAP door's tests: Debian's `dovecot-imapd`,
//! run in the foreground with a config of the test's own in a temporary dir (plain
//! auth from a passwd-file, Maildir storage, its own port on 127.0.0.1, no TLS).
//! Installed with apt-get when missing, once per run. Mail is put in and looked at
//! with Python's imaplib, a client independent of the one under test.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "support";
pub const PASSWORD: &str = "geheim-imap";

/// A running Dovecot, stopped when dropped.
pub struct Dovecot {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot_binary() -> PathBuf {
    PathBuf::from("/usr/sbin/dovecot")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

impl Dovecot {
    pub async fn start() -> Dovecot {
        if let Err(missing) = crate::tools::ensure(&crate::tools::DOVECOT) {
            panic!("{missing}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        // Mail belongs to `nobody` (Dovecot refuses root), who must reach it.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        std::fs::set_permissions(root.join("mail"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        std::fs::write(
            root.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .expect("passwd written");
        let port = free_port();
        let root_text = root.display();
        let config = format!(
            r#"base_dir = {root_text}/run
state_dir = {root_text}/state
log_path = {root_text}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root_text}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root_text}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root_text}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#
        );
        let config_path = root.join("dovecot.conf");
        std::fs::write(&config_path, config).expect("config written");
        let child = Command::new(dovecot_binary())
            .arg("-F")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dovecot starts");
        let root = root.to_path_buf();
        let dovecot = Dovecot { port, dir, child };
        dovecot.wait_until_it_greets(&root);
        dovecot
    }

    fn wait_until_it_greets(&self, root: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut line = String::new();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not come up; its log: {}",
                std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a Python imaplib script logged in as the user (`m` is the connection);
    /// returns what it prints.
    pub fn imaplib(&self, body: &str) -> String {
        let script = format!(
            "import imaplib, json\nm = imaplib.IMAP4('127.0.0.1', {port})\nm.login('{USER}', '{PASSWORD}')\n{body}\nm.logout()\n",
            port = self.port
        );
        let output = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "imaplib failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Appends a raw message to `folder`.
    pub fn append(&self, folder: &str, raw: &str) {
        self.imaplib(&format!(
            "typ, _ = m.append('{folder}', None, None, {raw:?}.encode())\nassert typ == 'OK'"
        ));
    }

    /// How many messages `folder` holds (0 when it does not exist).
    pub fn count(&self, folder: &str) -> usize {
        self.imaplib(&format!(
            "typ, data = m.select('{folder}', readonly=True)\nprint(int(data[0]) if typ == 'OK' else 0)"
        ))
        .parse()
        .unwrap_or(0)
    }
}
