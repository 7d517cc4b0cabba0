//! TLS counterparts: a self-signed certificate made here (rcgen), and a
//! TLS-terminating front (tokio-rustls) that forwards each connection to a plain
//! listener, as the reverse proxy of a deployment does before Kontor's intake or a
//! back office before its webhook receiver. `kontor mailgate` over https through
//! such a front: trusted by `--ca-file`, and refused with a tempfail (75) when the
//! certificate is not trusted, so that the MTA keeps the message.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use crate::inbound::{mail, mailgate_with, tickets, SUPPORT};
use crate::support::TestApp;

/// A self-signed certificate for `127.0.0.1` and `localhost`, its PEM in a file.
pub struct SelfSigned {
    pub certificate: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    /// The certificate as PEM: what a CA file setting names.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SelfSigned {
    pub fn for_localhost() -> SelfSigned {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, certified.cert.pem()).expect("CA file written");
        SelfSigned {
            certificate: certified.cert.der().clone(),
            key_pkcs8: certified.signing_key.serialize_der(),
            ca_file,
            _dir: dir,
        }
    }

    pub fn ca_file_text(&self) -> String {
        self.ca_file.display().to_string()
    }
}

/// Terminates TLS with a certificate and forwards the plain bytes to `upstream`;
/// stopped when dropped.
pub struct TlsFront {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsFront {
    pub async fn start(certificate: &SelfSigned, upstream: SocketAddr) -> TlsFront {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificate.key_pkcs8.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate.certificate.clone()], key)
        .expect("the certificate and its key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the front binds");
        let address = listener.local_addr().expect("front address");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust us ends the handshake; nothing to forward.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront { address, task }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }
}

/// The plain address of a server, for a front to forward to.
pub fn socket_of(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}

// Two workers: the front's tasks run while the test thread waits for the mailgate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailgate_delivers_over_https_with_its_ca_file_and_tempfails_on_an_untrusted_certificate() {
    let app = TestApp::spawn().await;
    let certificate = SelfSigned::for_localhost();
    let front = TlsFront::start(&certificate, socket_of(&app)).await;
    let raw = mail(
        "tls@kunde.example",
        SUPPORT,
        "Über HTTPS",
        "Message-ID: <tls-1@kunde.example>\r\n",
        "Der Drucker in Filiale 3 druckt nicht.",
    );

    let (code, stdout, stderr) = mailgate_with(
        &app,
        &front.url(),
        &["--ca-file", &certificate.ca_file_text()],
        raw.as_bytes(),
    );
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(stdout.trim()).expect("mailgate prints the answer");
    assert_eq!(answer["outcome"], "created");
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["subject"], "Über HTTPS");
    assert_eq!(list[0]["id"], answer["ticket_id"]);

    // Another certificate's CA, and the Mozilla roots alone: neither trusts the
    // front. The MTA must keep the message (75) and the line must say why.
    let stranger = SelfSigned::for_localhost();
    let other = mail(
        "tls@kunde.example",
        SUPPORT,
        "Nicht vertraut",
        "Message-ID: <tls-2@kunde.example>\r\n",
        "Darf nicht ankommen.",
    );
    for args in [
        vec!["--ca-file".to_string(), stranger.ca_file_text()],
        Vec::new(),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = mailgate_with(&app, &front.url(), &args, other.as_bytes());
        assert_eq!(code, 75, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("kontor: mailgate:") && stderr.contains("not trusted"),
            "{stderr}"
        );
    }
    // A CA file that holds no certificate is a setting to fix, not a bounce.
    let key_only = certificate.ca_file.with_file_name("not-a-ca.pem");
    std::fs::write(&key_only, "-----BEGIN NOTHING-----\n").expect("written");
    let (code, _, stderr) = mailgate_with(
        &app,
        &front.url(),
        &["--ca-file", &key_only.display().to_string()],
        other.as_bytes(),
    );
    assert_eq!(code, 75, "{stderr}");
    assert!(stderr.contains("not-a-ca.pem"), "{stderr}");
    assert_eq!(
        tickets(&app).await.len(),
        1,
        "nothing stored over an untrusted link"
    );
}
