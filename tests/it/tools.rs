//! The tools the suite runs beside Kontor (an SMTP sink, a DKIM verifier, PDF
//! readers, a browser, an IMAP server), installed once per run when missing, each
//! saying so in one line, so that `cargo test --workspace` is the whole test
//! command on a fresh machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// A tool: how to tell it is there, and how to get it.
pub struct Tool {
    pub name: &'static str,
    /// A command that succeeds when the tool is there.
    pub check: &'static [&'static str],
    /// A shell command that installs it.
    pub install: &'static str,
}

pub const AIOSMTPD: Tool = Tool {
    name: "aiosmtpd (pip), the SMTP sink outbound mail is sent to",
    check: &["python3", "-c", "import aiosmtpd"],
    install: "python3 -m pip install --quiet aiosmtpd",
};

pub const POPPLER: Tool = Tool {
    name: "poppler-utils (apt-get), which reads the portal's PDFs back",
    check: &["sh", "-c", "command -v pdfinfo && command -v pdfdetach"],
    install: "(apt-get install -y -q poppler-utils || (apt-get update -q && apt-get install -y -q poppler-utils)) >/dev/null",
};

pub const DKIMPY: Tool = Tool {
    name: "dkimpy and pynacl (pip), the independent DKIM verifier",
    check: &["python3", "-c", "import dkim, nacl"],
    install: "python3 -m pip install --quiet dkimpy pynacl",
};

pub const DOVECOT: Tool = Tool {
    name: "dovecot-imapd (apt-get), the IMAP server the IMAP door fetches from",
    check: &["test", "-x", "/usr/sbin/dovecot"],
    install: "(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd)) >/dev/null",
};

pub const CHROMIUM: Tool = Tool {
    name: "chromium and chromium-driver (apt-get), the browser the portal tests drive",
    check: &["sh", "-c", "test -x /usr/bin/chromium && test -x /usr/bin/chromedriver"],
    install: "(apt-get install -y -q chromium chromium-driver || (apt-get update -q && apt-get install -y -q chromium chromium-driver)) >/dev/null",
};

/// Makes sure `tool` is there, installing it once per run; the error says what
/// is missing and how to get it by hand.
pub fn ensure(tool: &Tool) -> Result<(), String> {
    static DONE: OnceLock<Mutex<BTreeMap<&'static str, Result<(), String>>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    done.entry(tool.name)
        .or_insert_with(|| {
            if succeeds(tool.check) {
                return Ok(());
            }
            // Straight to stderr: the harness captures `eprintln!` of passing tests,
            // and a newcomer waiting on an install should see why.
            let _ = writeln!(std::io::stderr(), "test tools: installing {}", tool.name);
            let installed = Command::new("sh")
                .args(["-c", tool.install])
                .status()
                .is_ok_and(|status| status.success());
            if installed && succeeds(tool.check) {
                Ok(())
            } else {
                Err(format!(
                    "{} is missing and could not be installed: {}",
                    tool.name, tool.install
                ))
            }
        })
        .clone()
}

fn succeeds(command: &[&str]) -> bool {
    let Some((program, args)) = command.split_first() else {
        return false;
    };
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
