//! DKIM: `kontor dkim generate` (a key file and the DNS TXT record to publish) and
//! the signer the outbox sender applies to every message when `[outbound]
//! dkim_selector` and `dkim_private_key_file` are set.
//!
//! Signing is lettre's own `dkim` feature: the transport we already use, pure Rust
//! (the RustCrypto `rsa` and `ed25519-dalek` crates, no OpenSSL or aws-lc), both
//! algorithms. Key files are the usual PEM: PKCS#8 for Ed25519 (what `openssl
//! genpkey -algorithm ed25519` writes), PKCS#1 or PKCS#8 for RSA.

use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};

/// The signing algorithms of `kontor dkim generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DkimAlgorithm {
    /// RFC 8463: short keys and records; not every receiver verifies it yet, so
    /// many senders sign with both.
    Ed25519,
    /// RSA 2048, understood by every receiver.
    Rsa,
}

/// RSA keys are made with this many bits (RFC 8301 asks at least 1024, 2048 is usual).
const RSA_BITS: usize = 2048;

/// The headers signed, when present in lettre's header map (a listed header that
/// is absent is signed as absent, so it cannot be added on the way).
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
];
// Not MIME-Version and Content-Type: lettre writes them for a multipart body while
// formatting, after signing, so a signature over them would never verify (dkimpy
// showed it: body hash good, header signature bad).

/// Makes a key, writes it to `path` (mode 0600, never over an existing file) and
/// returns the TXT record's value.
pub fn generate(path: &Path, selector: &str, algorithm: DkimAlgorithm) -> anyhow::Result<String> {
    check_selector(selector)?;
    let (pem, record) = match algorithm {
        DkimAlgorithm::Ed25519 => {
            use rand::RngCore;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|error| anyhow::anyhow!("cannot encode the Ed25519 key: {error}"))?;
            let public = BASE64.encode(key.verifying_key().as_bytes());
            (pem.to_string(), format!("v=DKIM1; k=ed25519; p={public}"))
        }
        DkimAlgorithm::Rsa => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                .context("cannot make an RSA key")?;
            let pem = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|error| anyhow::anyhow!("cannot encode the RSA key: {error}"))?;
            let public = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|error| anyhow::anyhow!("cannot encode the RSA public key: {error}"))?;
            (
                pem.to_string(),
                format!("v=DKIM1; k=rsa; p={}", BASE64.encode(public.as_bytes())),
            )
        }
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create the key file {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(record)
}

/// Signs outbound messages for one domain with one key.
pub struct DkimSigner {
    config: DkimConfig,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DkimSigner")
    }
}

impl DkimSigner {
    /// Reads the key file; `domain` is the d= of the signatures (our From domain).
    pub fn load(selector: &str, key_file: &Path, domain: &str) -> anyhow::Result<DkimSigner> {
        check_selector(selector)?;
        let text = std::fs::read_to_string(key_file).with_context(|| {
            format!(
                "outbound.dkim_private_key_file: cannot read {}",
                key_file.display()
            )
        })?;
        let key = signing_key(&text).with_context(|| {
            format!(
                "outbound.dkim_private_key_file: {} holds no Ed25519 or RSA private key in PEM",
                key_file.display()
            )
        })?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect();
        Ok(DkimSigner {
            config: DkimConfig::new(
                selector.to_string(),
                domain.to_string(),
                key,
                headers,
                // Relaxed both ways: survives the re-folding and trailing-space
                // changes relays make.
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        })
    }

    /// Adds the `DKIM-Signature` header; the message must not change afterwards.
    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// Reads a PEM key into lettre's form (PKCS#1 PEM for RSA, the raw seed for Ed25519).
fn signing_key(pem: &str) -> anyhow::Result<DkimSigningKey> {
    let pem = pem.trim();
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        let seed = BASE64.encode(key.to_bytes());
        return DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
            .map_err(|error| anyhow::anyhow!("{error}"));
    }
    let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let pkcs1 = rsa
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// A selector is one or more DNS labels.
fn check_selector(selector: &str) -> anyhow::Result<()> {
    let valid = !selector.is_empty()
        && selector.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    if valid {
        Ok(())
    } else {
        anyhow::bail!("the DKIM selector {selector:?} is not a DNS label (letters, digits, -)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        for algorithm in [DkimAlgorithm::Ed25519, DkimAlgorithm::Rsa] {
            let path = dir.path().join(format!("{algorithm:?}.key"));
            let record = generate(&path, "k1", algorithm).unwrap();
            assert!(record.starts_with("v=DKIM1; k="), "{record}");
            assert!(
                generate(&path, "k1", algorithm).is_err(),
                "never overwrites"
            );
            let signer = DkimSigner::load("k1", &path, "support.example.com").unwrap();
            let mut message = Message::builder()
                .from("Support <support@support.example.com>".parse().unwrap())
                .to("maria@example.org".parse().unwrap())
                .subject("Hallo")
                .body("Text".to_string())
                .unwrap();
            signer.sign(&mut message);
            let text = String::from_utf8(message.formatted()).unwrap();
            assert!(text.contains("DKIM-Signature: v=1;"), "{text}");
            assert!(text.contains("d=support.example.com; s=k1;"), "{text}");
        }
        assert!(generate(
            &dir.path().join("x"),
            "bad selector",
            DkimAlgorithm::Ed25519
        )
        .is_err());
    }
}
