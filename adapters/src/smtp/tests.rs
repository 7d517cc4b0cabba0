//! The listener over real sockets with a recording sink: verbs, pipelining,
//! limits, timeouts, garbage and pseudo-random byte streams. The black-box suite
//! (tests/it/inbound.rs) covers the listener wired to the engine.

use super::{serve, DeliveryVerdict, Envelope, MailSink, RcptVerdict, SmtpConfig};
use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Safety net so a broken server fails a test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

/// Accepts `@example.com` recipients and `postmaster`, records deliveries.
pub struct TestSink {
    pub delivered: Mutex<Vec<Envelope>>,
    pub verdict: Mutex<DeliveryVerdict>,
}

impl TestSink {
    pub fn delivered(&self) -> Vec<Envelope> {
        self.delivered.lock().expect("sink lock").clone()
    }

    pub fn set_verdict(&self, verdict: DeliveryVerdict) {
        *self.verdict.lock().expect("sink lock") = verdict;
    }
}

impl MailSink for TestSink {
    fn check_recipient(&self, address: &str) -> RcptVerdict {
        let lower = address.to_ascii_lowercase();
        if lower.ends_with("@example.com") || lower == "postmaster" {
            RcptVerdict::Accept
        } else {
            RcptVerdict::RejectNotOurs
        }
    }

    fn deliver(
        &self,
        envelope: Envelope,
    ) -> Pin<Box<dyn Future<Output = DeliveryVerdict> + Send + '_>> {
        Box::pin(async move {
            self.delivered.lock().expect("sink lock").push(envelope);
            self.verdict.lock().expect("sink lock").clone()
        })
    }
}

pub fn config() -> SmtpConfig {
    SmtpConfig {
        hostname: "mx.test".to_owned(),
        max_message_bytes: 1024 * 1024,
        max_line_bytes: 64 * 1024,
        max_recipients: 10,
        idle_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(10),
        max_connections: 1000,
        lmtp: false,
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub sink: Arc<TestSink>,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

pub async fn start(config: SmtpConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let sink = Arc::new(TestSink {
        delivered: Mutex::new(Vec::new()),
        verdict: Mutex::new(DeliveryVerdict::Stored),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(listener, config, sink.clone(), async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        sink,
        stop,
        handle,
    }
}

impl Server {
    /// Triggers shutdown and waits for `serve` to return.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("serve did not stop")
            .expect("serve task")
    }
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, write) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer: write,
        }
    }

    /// Connects and consumes the 220 greeting.
    pub async fn greeted(addr: SocketAddr) -> Self {
        let mut client = Self::connect(addr).await;
        client.expect("220").await;
        client
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.writer.write_all(bytes.as_ref()).await.expect("write");
    }

    pub async fn finish_writing(&mut self) {
        self.writer.shutdown().await.expect("shutdown write");
    }

    /// One complete reply, continuation lines included; `None` on EOF.
    pub async fn reply(&mut self) -> Option<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
                .await
                .expect("reply timed out")
                .expect("read reply");
            if n == 0 {
                return if all.is_empty() { None } else { Some(all) };
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(all);
            }
        }
    }

    /// Asserts the next reply starts with `prefix` and returns it.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let reply = self.reply().await.unwrap_or_default();
        assert!(
            reply.starts_with(prefix),
            "expected {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// Asserts the server closed the connection.
    pub async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, self.reader.read_to_end(&mut rest))
            .await
            .expect("close timed out");
        // A reset after our unread data also counts as closed.
        if read.is_ok() {
            assert!(
                rest.is_empty(),
                "unexpected data: {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
    }
}

/// Opens a session up to the 354 for `rcpts`.
pub async fn open_data(addr: SocketAddr, rcpts: &[&str]) -> Client {
    let mut client = Client::greeted(addr).await;
    let mut cmds = String::from("EHLO client.test\r\nMAIL FROM:<sender@remote.test>\r\n");
    for rcpt in rcpts {
        cmds.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
    }
    cmds.push_str("DATA\r\n");
    client.send(cmds).await;
    client.expect("250").await;
    client.expect("250").await;
    for _ in rcpts {
        client.expect("250").await;
    }
    client.expect("354").await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_multi_recipient_exact_bytes() {
    let server = start(config()).await;
    let email = Message::builder()
        .from("Alice <alice@sender.test>".parse().expect("from"))
        .to("bob@example.com".parse().expect("to"))
        .to("carol@example.com".parse().expect("to"))
        .cc("dave@example.com".parse().expect("cc"))
        .subject("Printer on fire")
        .header(ContentType::TEXT_PLAIN)
        .body(String::from(
            "Hello,\r\n.this line starts with a dot\r\n..and this with two\r\nbye\r\n",
        ))
        .expect("message");
    let expected = email.formatted();
    let port = server.addr.port();
    tokio::task::spawn_blocking(move || {
        SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .build()
            .send(&email)
    })
    .await
    .expect("join")
    .expect("lettre send");

    let delivered = server.sink.delivered();
    assert_eq!(delivered.len(), 1);
    let envelope = &delivered[0];
    assert_eq!(envelope.mail_from, "alice@sender.test");
    assert_eq!(
        envelope.rcpt_to,
        ["bob@example.com", "carol@example.com", "dave@example.com"]
    );
    // lettre appends "\r\n.\r\n"; the CRLF before the dot is kept as the
    // last line's terminator.
    let mut want = expected;
    want.extend_from_slice(b"\r\n");
    assert_eq!(envelope.data, want);
    assert!(envelope.peer.ip().is_loopback());
    server.shutdown().await.expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batch_in_one_write_is_answered_in_order() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send(
            "EHLO client.test\r\n\
             MAIL FROM:<a@sender.test> BODY=8BITMIME\r\n\
             RCPT TO:<x@example.com>\r\n\
             RCPT TO:<y@elsewhere.test>\r\n\
             rcpt to: < z@example.com >\r\n\
             DATA\r\n\
             Subject: one\r\n\r\nfirst\r\n.\r\n\
             MAIL FROM:<>\r\n\
             RCPT TO:<postmaster>\r\n\
             DATA\r\n\
             Subject: two\r\n\r\nsecond\r\n.\r\n\
             NOOP\r\n\
             QUIT\r\n",
        )
        .await;
    let ehlo = client.expect("250-mx.test\r\n").await;
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SIZE 1048576",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing in {ehlo:?}");
    }
    client.expect("250 2.1.0").await;
    client.expect("250 2.1.5").await;
    client.expect("550 5.1.1").await;
    client.expect("250 2.1.5").await;
    client.expect("354").await;
    client.expect("250 2.0.0").await;
    client.expect("250 2.1.0").await;
    client.expect("250 2.1.5").await;
    client.expect("354").await;
    client.expect("250 2.0.0").await;
    client.expect("250 2.0.0").await;
    client.expect("221").await;
    client.expect_eof().await;

    let delivered = server.sink.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].rcpt_to, ["x@example.com", "z@example.com"]);
    assert_eq!(delivered[0].data, b"Subject: one\r\n\r\nfirst\r\n");
    assert_eq!(delivered[1].mail_from, "");
    assert_eq!(delivered[1].rcpt_to, ["postmaster"]);
    assert_eq!(delivered[1].data, b"Subject: two\r\n\r\nsecond\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_unstuffing() {
    let server = start(config()).await;
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    client
        .send("..one\r\n...two\r\n.three\r\nfour.\r\n..\r\n\r\n.\r\n")
        .await;
    client.expect("250 2.0.0").await;
    let delivered = server.sink.delivered();
    assert_eq!(
        delivered[0].data,
        b".one\r\n..two\r\nthree\r\nfour.\r\n.\r\n\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_crlf_dot_crlf_ends_data() {
    // Bare-LF variants must not end the message (SMTP smuggling).
    let server = start(config()).await;
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    client
        .send("x\r\n.\nMAIL FROM:<evil@x.test>\r\n\n.\r\nstill\r\n.\r\nNOOP\r\n")
        .await;
    client.expect("250 2.0.0").await;
    client.expect("250 2.0.0").await;
    let delivered = server.sink.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].data,
        b"x\r\n\nMAIL FROM:<evil@x.test>\r\n\n\r\nstill\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_recipient_gets_550_and_data_needs_a_recipient() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send("EHLO c\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<someone@gmail.test>\r\nDATA\r\n")
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("550 5.1.1").await;
    client.expect("554 5.5.1").await;
    client
        .send("RCPT TO:<Someone@EXAMPLE.com>\r\nDATA\r\n")
        .await;
    client.expect("250 2.1.5").await;
    client.expect("354").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_parameter_over_limit_is_refused_at_mail_from() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send(
            "EHLO c\r\n\
             MAIL FROM:<a@sender.test> SIZE=1048577\r\n\
             MAIL FROM:<a@sender.test> SIZE=99999999999999999999999999\r\n\
             MAIL FROM:<a@sender.test> SIZE=abc\r\n\
             MAIL FROM:<a@sender.test> FOO=BAR\r\n\
             MAIL FROM:<a@sender.test> SIZE=1048576 SMTPUTF8\r\n",
        )
        .await;
    client.expect("250").await;
    client.expect("552 5.3.4").await;
    client.expect("552 5.3.4").await;
    client.expect("501 5.5.4").await;
    client.expect("555 5.5.4").await;
    client.expect("250 2.1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_recipients_get_452() {
    let server = start(SmtpConfig {
        max_recipients: 2,
        ..config()
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send(
            "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<1@example.com>\r\n\
             RCPT TO:<2@example.com>\r\nRCPT TO:<3@example.com>\r\n",
        )
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("250 2.1.5").await;
    client.expect("250 2.1.5").await;
    client.expect("452 4.5.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_of_100kb_is_refused_and_closed() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    let mut line = b"NOOP ".to_vec();
    line.resize(100_000, b'a');
    line.extend_from_slice(b"\r\n");
    client.send(line).await;
    client.expect("500 5.5.2").await;
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_message_lines_follow_the_line_limit() {
    let server = start(config()).await;

    // Far beyond RFC 5321's 998 but within 64 KiB: accepted unchanged.
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    let mut body = vec![b'x'; 60_000];
    body.extend_from_slice(b"\r\n.\r\n");
    client.send(&body).await;
    client.expect("250 2.0.0").await;
    let delivered = server.sink.delivered();
    assert_eq!(delivered[0].data.len(), 60_002);

    // 70 000 bytes exceed the 64 KiB line limit: refused, closed, not delivered.
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    let mut body = b"Subject: x\r\n\r\n".to_vec();
    body.resize(body.len() + 70_000, b'y');
    body.extend_from_slice(b"\r\n.\r\n");
    client.send(&body).await;
    client.expect("500 5.5.2").await;
    client.expect_eof().await;
    assert_eq!(server.sink.delivered().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_commands_get_errors_then_421() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send(&b"FOO bar\r\n\0\0\0\r\n\xff\xfeEHLO\r\n"[..])
        .await;
    client.expect("500 5.5.1").await;
    client.expect("500 5.5.2").await;
    client.expect("500 5.5.2").await;
    client
        .send(
            "MAIL FROM:<a@s.test>\r\nehlo c\r\nRCPT TO:<a@example.com>\r\nDATA\r\n\
             mail from:<a@s.test>\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<>\r\n\
             VRFY x\r\nHELP\r\nNOOP\r\nRSET\r\nEXPN list\r\n",
        )
        .await;
    client.expect("503 5.5.1").await;
    client.expect("250-mx.test").await;
    client.expect("503 5.5.1").await;
    client.expect("503 5.5.1").await;
    client.expect("250 2.1.0").await;
    client.expect("503 5.5.1").await;
    client.expect("501 5.1.3").await;
    client.expect("252 2.5.0").await;
    client.expect("214").await;
    client.expect("250 2.0.0").await;
    client.expect("250 2.0.0").await;
    client.expect("502 5.5.1").await;
    // That was the ninth error; the tenth ends the session.
    client.send("\t\r\n").await;
    client.expect("500 5.5.1").await;
    client.expect("421 4.7.0").await;
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_line_then_eof_is_dropped_quietly() {
    let server = start(config()).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .send("EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<a@example.com>\r\nDATA\r\npart")
        .await;
    client.finish_writing().await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("354").await;
    client.expect_eof().await;
    assert!(server.sink.delivered().is_empty());
    // The server is still fine.
    let mut client = Client::greeted(server.addr).await;
    client.send("EHLO again\r\n").await;
    client.expect("250").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_session_is_closed_with_421() {
    let server = start(SmtpConfig {
        idle_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    client.expect("421 4.4.2").await;
    client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_never_ends_is_cut_after_data_timeout() {
    let server = start(SmtpConfig {
        idle_timeout: Duration::from_secs(30),
        data_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    let started = Instant::now();
    client.send("Subject: endless\r\n\r\nand it goes on").await;
    client.expect("421 4.4.2").await;
    client.expect_eof().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(server.sink.delivered().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_connections_are_greeted() {
    let server = start(config()).await;
    let mut clients = Vec::with_capacity(500);
    for _ in 0..500 {
        clients.push(Client::connect(server.addr).await);
    }
    for client in &mut clients {
        client.expect("220 mx.test").await;
    }
    for client in &mut clients {
        client.send("QUIT\r\n").await;
    }
    for client in &mut clients {
        client.expect("221").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_421() {
    let server = start(SmtpConfig {
        max_connections: 2,
        ..config()
    })
    .await;
    let _first = Client::greeted(server.addr).await;
    let _second = Client::greeted(server.addr).await;
    let mut third = Client::connect(server.addr).await;
    third.expect("421 4.7.0").await;
    third.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_verdicts_map_to_451_and_554() {
    let server = start(config()).await;
    server
        .sink
        .set_verdict(DeliveryVerdict::TempFail("disk full\r\n250 forged".into()));
    let mut client = open_data(server.addr, &["a@example.com"]).await;
    client.send("hi\r\n.\r\n").await;
    let reply = client.expect("451 4.3.0 disk full").await;
    assert_eq!(
        reply.lines().count(),
        1,
        "reply text must stay one line: {reply:?}"
    );

    server
        .sink
        .set_verdict(DeliveryVerdict::Rejected("spam".into()));
    client
        .send("MAIL FROM:<a@s.test>\r\nRCPT TO:<a@example.com>\r\nDATA\r\nhi\r\n.\r\n")
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("354").await;
    client.expect("554 5.6.0 spam").await;
    assert_eq!(server.sink.delivered().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_serve_and_idle_sessions() {
    let server = start(config()).await;
    let addr = server.addr;
    let mut client = Client::greeted(addr).await;
    client.send("EHLO c\r\n").await;
    client.expect("250").await;
    let serving = tokio::spawn(server.shutdown());
    client.expect("421 4.3.2").await;
    client.expect_eof().await;
    serving.await.expect("join").expect("serve result");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fragments that steer the session into every state, mixed with noise.
const TOKENS: &[&[u8]] = &[
    b"EHLO fuzz\r\n",
    b"HELO fuzz\r\n",
    b"MAIL FROM:<a@fuzz.test>\r\n",
    b"MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8\r\n",
    b"MAIL FROM:<\"q\\\"x\"@[1.2.3.4]> SIZE=\r\n",
    b"RCPT TO:<a@example.com>\r\n",
    b"RCPT TO:<@r:b@example.com>\r\n",
    b"RCPT TO:<x@y>\r\n",
    b"DATA\r\n",
    b".\r\n",
    b"..\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY\r\n",
    b"HELP\r\n",
    b"\0",
    b"\xff\xfe\xc3",
    b"<>:@\"\\[]",
    b"MAIL FROM:<\xe2\x82\xac@\xe2\x82\xac>\r\n",
];

fn stream(rng: &mut XorShift) -> Vec<u8> {
    let mut out = Vec::new();
    let pieces = 1 + rng.below(60);
    for _ in 0..pieces {
        match rng.below(4) {
            0 => {
                let len = rng.below(200);
                out.extend((0..len).map(|_| rng.next() as u8));
            }
            1 if rng.below(20) == 0 => {
                // Occasionally a line long enough to hit the limit.
                let len = 1000 + rng.below(3000);
                out.extend((0..len).map(|_| b'a' + (rng.next() % 26) as u8));
            }
            _ => out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]),
        }
    }
    out
}

async fn blast(addr: std::net::SocketAddr, bytes: Vec<u8>) {
    let Ok(socket) = TcpStream::connect(addr).await else {
        return;
    };
    let (mut read, mut write) = socket.into_split();
    // Read concurrently so a chatty server never blocks on a full socket.
    let reader = tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while let Ok(n) = read.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    });
    // The server may close first (too many errors); that is fine.
    let _ = write.write_all(&bytes).await;
    let _ = write.shutdown().await;
    let _ = tokio::time::timeout(WAIT, reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_streams_do_not_break_the_server() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let server = start(SmtpConfig {
        max_line_bytes: 2048,
        max_message_bytes: 4096,
        idle_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        ..config()
    })
    .await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _round in 0..40 {
        let batch: Vec<_> = (0..10)
            .map(|_| tokio::spawn(blast(server.addr, stream(&mut rng))))
            .collect();
        for task in batch {
            task.await.expect("fuzz client");
        }
    }

    let mut client = Client::greeted(server.addr).await;
    client.send("EHLO after.fuzz\r\n").await;
    client.expect("250-mx.test").await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a session panicked");
    server.shutdown().await.expect("serve");
}

fn lmtp_config() -> SmtpConfig {
    SmtpConfig {
        lmtp: true,
        ..config()
    }
}

#[tokio::test]
async fn lmtp_answers_each_recipient_after_data_and_only_knows_lhlo() {
    let server = start(lmtp_config()).await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.expect("220").await.contains("LMTP"));
    client.send("EHLO client.test\r\n").await;
    client.expect("500").await;
    client.send("LHLO client.test\r\n").await;
    client.expect("250").await;
    client
        .send("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<nobody@elsewhere.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        .await;
    client.expect("250").await;
    client.expect("250").await;
    client.expect("550").await;
    client.expect("250").await;
    client.expect("354").await;
    client.send("Subject: hi\r\n\r\nbody\r\n.\r\n").await;
    // One reply per accepted recipient, in RCPT order, each naming its address.
    assert!(client.expect("250").await.contains("<a@example.com>"));
    assert!(client.expect("250").await.contains("<b@example.com>"));
    assert_eq!(server.sink.delivered().len(), 1);

    server
        .sink
        .set_verdict(DeliveryVerdict::TempFail("disk busy".into()));
    client
        .send("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        client.expect("250").await;
    }
    client.expect("354").await;
    client.send("Subject: again\r\n\r\nbody\r\n.\r\n").await;
    client.expect("451").await;
    client.expect("451").await;
    client
        .send("MAIL FROM:<sender@remote.test>\r\nDATA\r\nQUIT\r\n")
        .await;
    client.expect("250").await;
    // No accepted recipient: LMTP refuses DATA with 503 (RFC 2033 4.2).
    client.expect("503").await;
    client.expect("221").await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn lmtp_serves_a_unix_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lmtp.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    let sink = Arc::new(TestSink {
        delivered: Mutex::new(Vec::new()),
        verdict: Mutex::new(DeliveryVerdict::Stored),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(listener, lmtp_config(), sink.clone(), async {
        let _ = stopped.await;
    }));
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(b"LHLO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        .await
        .expect("write");
    let mut replies = String::new();
    while !replies.contains("354") {
        let mut line = String::new();
        let read = tokio::time::timeout(WAIT, stream.read_line(&mut line))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(read > 0, "closed early: {replies}");
        replies.push_str(&line);
    }
    stream
        .get_mut()
        .write_all(b"Subject: local\r\n\r\nvia the socket\r\n.\r\n")
        .await
        .expect("write");
    let mut line = String::new();
    tokio::time::timeout(WAIT, stream.read_line(&mut line))
        .await
        .expect("reply in time")
        .expect("read");
    assert!(
        line.starts_with("250 ") && line.contains("<a@example.com>"),
        "{line}"
    );
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(String::from_utf8_lossy(&delivered[0].data).contains("via the socket"));
    let _ = stop.send(());
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("serve stops")
        .expect("serve task")
        .expect("clean shutdown");
}
