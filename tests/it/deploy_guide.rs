//! The README's deployment guide, followed by `deploy/check-guide` on this machine
//! under a temporary prefix, with the binary this suite built (no second build):
//! the config from `deploy/kontor.toml`, a DKIM key, the systemd unit's ExecStart,
//! an API key, mail by the Postfix pipe line, LMTP and SMTP, the tickets through the
//! API, a backup while running, and its restore verified.

use std::path::Path;
use std::process::Command;

use crate::support::kontor_binary;

#[test]
fn the_deployment_guide_works_when_followed_step_by_step() {
    for tool in ["bash", "curl", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success());
        assert!(
            found,
            "deploy/check-guide needs {tool}: apt-get install -y {tool}"
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/check-guide");
    let output = Command::new("bash")
        .arg(&script)
        .env("KONTOR_BIN", kontor_binary())
        .output()
        .expect("deploy/check-guide runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("check-guide: the deployment guide works"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}
