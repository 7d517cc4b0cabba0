//! What real mail costs the server, end to end: the real `kontor serve` binary on a
//! fresh data dir with notices going out (file transport), every message of a corpus
//! pushed through its SMTP listener by 4 clients, until every notice is written and
//! the search index has caught up.
//!
//! Reported: the server's CPU per message (utime + stime from `/proc/<pid>/stat`,
//! before and after), messages per second (SMTP until the last 250, and until
//! notices and the index are done too), VmRSS idle before, right after the corpus
//! and after a pause, and the data dir's size against the raw mail's.
//!
//! The corpus (`KONTOR_REALMAIL_CORPUS`):
//! - `spamassassin` (default): the SpamAssassin public corpus (ham, hard ham, spam;
//!   about 6,000 messages of about 5.5 KiB), fetched at run time with `curl` and
//!   cached under `target/realmail/`. Without network the bench says so in one line
//!   and exits 2.
//! - `generated`: 6,046 messages made here from a fixed seed, shaped like that corpus
//!   (plain, multipart/alternative, HTML only, attachments, quoted replies that
//!   thread into their tickets, German and English; about 5.5 KiB mean).
//!
//! `cargo bench -p kontor --bench realmail`; `KONTOR_REALMAIL_MESSAGES` caps the
//! count, `KONTOR_REALMAIL_ID_TAG` goes into the generated corpus's Message-IDs (a
//! store that took the corpus before takes it again as new mail), `KONTOR_REALMAIL_KEEP=1` keeps the data dir under `target/realmail/run`,
//! `KONTOR_REALMAIL_DATA_DIR` runs the server on a store made beforehand (memory with
//! 1,000,000 messages: `SEARCH_BENCH_STORE_DIR` of `cargo bench -p kontor-engine
//! --bench search` makes one), which the corpus then goes into,
//! and `KONTOR_REALMAIL_PERF=1` (or `=dwarf`, with call stacks) samples the server
//! with `perf record` while the corpus goes through (into
//! `target/realmail/perf.data`; `perf report --sort comm` splits it by thread).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The black-box suite's SMTP client, for its dot-stuffing: one copy of the rule.
#[path = "../../tests/it/smtp_client.rs"]
#[allow(dead_code)]
mod smtp_client;

const CLIENTS: usize = 4;
const SUPPORT: &str = "support@support.example.com";
const CORPUS_URL: &str = "https://spamassassin.apache.org/old/publiccorpus/";
const ARCHIVES: [&str; 5] = [
    "20030228_easy_ham.tar.bz2",
    "20030228_easy_ham_2.tar.bz2",
    "20030228_hard_ham.tar.bz2",
    "20030228_spam.tar.bz2",
    "20050311_spam_2.tar.bz2",
];
/// The size of the SpamAssassin corpus the generated one stands in for.
const GENERATED_MESSAGES: usize = 6_046;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/realmail");
    let which = std::env::var("KONTOR_REALMAIL_CORPUS").unwrap_or_else(|_| "spamassassin".into());
    let mut corpus = match which.as_str() {
        "generated" => generated_corpus(GENERATED_MESSAGES),
        "spamassassin" => match spamassassin_corpus(&root.join("spamassassin")) {
            Ok(corpus) => corpus,
            Err(reason) => {
                println!("realmail: the SpamAssassin corpus cannot be fetched ({reason}); KONTOR_REALMAIL_CORPUS=generated runs the generated one");
                return ExitCode::from(2);
            }
        },
        other => {
            println!(
                "realmail: KONTOR_REALMAIL_CORPUS is spamassassin or generated, not {other:?}"
            );
            return ExitCode::from(2);
        }
    };
    if let Some(limit) = std::env::var("KONTOR_REALMAIL_MESSAGES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        corpus.truncate(limit);
    }
    match run(&root, &which, &corpus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("realmail: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One message and the client stream it goes by: a thread stays on one stream, so a
/// reply never overtakes what it answers.
struct Mail {
    stream: usize,
    raw: Vec<u8>,
}

fn run(root: &Path, which: &str, corpus: &[Mail]) -> Result<(), String> {
    let raw_bytes: usize = corpus.iter().map(|mail| mail.raw.len()).sum();
    println!(
        "realmail: corpus {which}, {} messages, {:.1} MiB, mean {:.1} KiB; {CLIENTS} SMTP clients; notices to .eml files",
        corpus.len(),
        raw_bytes as f64 / MIB,
        raw_bytes as f64 / corpus.len().max(1) as f64 / 1024.0
    );
    let run_dir = root.join("run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    }
    // A store made beforehand (`SEARCH_BENCH_STORE_DIR` of the search bench holds
    // 1,000,000 messages): the corpus goes on top of it, for memory at that size.
    let given_store = std::env::var_os("KONTOR_REALMAIL_DATA_DIR").map(PathBuf::from);
    let data_dir = given_store.clone().unwrap_or_else(|| run_dir.join("data"));
    let outbox_dir = run_dir.join("outbox");
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let config = run_dir.join("kontor.toml");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ntemplates_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[inbound]\nsmtp_listen = \"127.0.0.1:0\"\n\
             # Every message makes its ticket and its notice, as if each sender were new.\n\
             max_per_sender_per_hour = 1000000\n[outbound]\ntransport = \"file\"\nfile_dir = {:?}\nmax_auto_per_address_per_hour = 1000000\n\
             [store]\nmin_free_mb = 0\ncompression = {}\n",
            data_dir.display().to_string(),
            templates.display().to_string(),
            outbox_dir.display().to_string(),
            std::env::var("KONTOR_REALMAIL_COMPRESSION").is_ok_and(|value| value == "1"),
        ),
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;

    let mut server = Server::start(&config)?;
    let pid = server.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = vm_rss_kib(pid)?;
    let allocator_idle = allocator_mib(&server.metrics()?);
    // Sampling costs the server a little CPU too; compare figures without it.
    let mut perf = match std::env::var("KONTOR_REALMAIL_PERF") {
        // Release builds keep no frame pointers: call stacks need "dwarf".
        Ok(how) => Some(
            Command::new("perf")
                .args(["record", "-F", "499"])
                .args(if how == "dwarf" {
                    &["--call-graph", "dwarf,16384"][..]
                } else {
                    &[][..]
                })
                .arg("-o")
                .arg(root.join("perf.data"))
                .args(["-p", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("perf record: {e}"))?,
        ),
        Err(_) => None,
    };
    let cpu_before = cpu_seconds(pid)?;
    let machine_before = machine_busy_seconds()?;
    let started = Instant::now();
    let mut streams: Vec<Vec<&[u8]>> = vec![Vec::new(); CLIENTS];
    for mail in corpus {
        streams[mail.stream % CLIENTS].push(&mail.raw);
    }
    let replies = std::thread::scope(|scope| {
        let clients: Vec<_> = streams
            .iter()
            .map(|stream| scope.spawn(|| smtp_client(server.smtp, stream)))
            .collect();
        let mut replies: std::collections::BTreeMap<String, usize> = Default::default();
        for client in clients {
            let codes = client
                .join()
                .map_err(|_| "an SMTP client panicked".to_string())??;
            for code in codes {
                *replies.entry(code).or_default() += 1;
            }
        }
        Ok::<_, String>(replies)
    })?;
    let smtp_elapsed = started.elapsed().as_secs_f64();
    let cpu_smtp = cpu_seconds(pid)? - cpu_before;
    // End to end: every notice written and the index caught up.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let metrics = server.metrics()?;
        let pending = metric(&metrics, "kontor_notices{state=\"pending\"}");
        let lag = metric(&metrics, "kontor_search_index_lag");
        if pending == Some(0.0) && lag == Some(0.0) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "notices pending {pending:?}, index lag {lag:?} after 10 minutes"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let total_elapsed = started.elapsed().as_secs_f64();
    let cpu_total = cpu_seconds(pid)? - cpu_before;
    if let Some(mut perf) = perf.take() {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(perf.id().to_string())
            .status();
        let _ = perf.wait();
        println!(
            "realmail: profile in {} (perf report -i …)",
            root.join("perf.data").display()
        );
    }
    let machine_busy = machine_busy_seconds()? - machine_before;
    let rss_after = vm_rss_kib(pid)?;
    let metrics = server.metrics()?;
    let allocator_after = allocator_mib(&metrics);
    std::thread::sleep(Duration::from_secs(10));
    let rss_rested = vm_rss_kib(pid)?;
    let allocator_rested = allocator_mib(&server.metrics()?);
    let cpu_idle = cpu_seconds(pid)? - cpu_before - cpu_total;
    server.stop()?;
    let accepted = replies.get("250").copied().unwrap_or(0);
    let notices = count_files(&outbox_dir, "eml");
    let per_message_ms = |cpu: f64| cpu * 1000.0 / accepted.max(1) as f64;
    println!(
        "realmail: SMTP replies after DATA: {}",
        replies
            .iter()
            .map(|(code, n)| format!("{code} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for outcome in [
        "created",
        "appended",
        "reopened",
        "duplicate",
        "auto_reply",
        "bounce",
        "list",
        "loop",
        "rejected",
    ] {
        if let Some(n) = metric(
            &metrics,
            &format!("kontor_mail_in_total{{outcome=\"{outcome}\"}}"),
        ) {
            println!("realmail:   mail in {outcome}: {n}");
        }
    }
    println!("realmail: notices written: {notices}");
    println!(
        "realmail: server CPU per message: {:.2} ms until the last 250, {:.2} ms end to end (notices written, index caught up)",
        per_message_ms(cpu_smtp),
        per_message_ms(cpu_total)
    );
    println!(
        "realmail: the whole machine was busy {machine_busy:.1} CPU-s meanwhile (the server {cpu_total:.1}, these clients and anything else the rest)"
    );
    println!(
        "realmail: messages/s: {:.0} until the last 250 ({smtp_elapsed:.1} s), {:.0} end to end ({total_elapsed:.1} s)",
        accepted as f64 / smtp_elapsed,
        accepted as f64 / total_elapsed
    );
    println!(
        "realmail: VmRSS: {rss_idle} idle before; {rss_after} after the corpus; {rss_rested} 10 s later (CPU meanwhile {cpu_idle:.2} s)"
    );
    if let (Some(idle), Some(after), Some(rested)) =
        (allocator_idle, allocator_after, allocator_rested)
    {
        println!("realmail: allocator: {idle} idle before; {after} after the corpus; {rested} 10 s later");
    }
    if given_store.is_some() {
        println!(
            "realmail: data dir {:.1} MiB, a store made beforehand with the corpus on top",
            dir_bytes(&data_dir) as f64 / MIB
        );
        if std::env::var("KONTOR_REALMAIL_KEEP").is_err() {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        return Ok(());
    }
    let store = dir_bytes(&data_dir.join("store"));
    let blobs = dir_bytes(&data_dir.join("blobs"));
    let search = dir_bytes(&data_dir.join("search"));
    let data = dir_bytes(&data_dir);
    println!(
        "realmail: data dir {:.1} MiB ({:.2}x the raw mail): store {:.1} MiB, blobs {:.1} MiB, search {:.1} MiB; notices {:.1} MiB",
        data as f64 / MIB,
        data as f64 / raw_bytes.max(1) as f64,
        store as f64 / MIB,
        blobs as f64 / MIB,
        search as f64 / MIB,
        dir_bytes(&outbox_dir) as f64 / MIB
    );
    if std::env::var("KONTOR_REALMAIL_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

struct Server {
    child: Child,
    smtp: SocketAddr,
    http: SocketAddr,
}

impl Server {
    fn start(config: &Path) -> Result<Server, String> {
        // Another build's binary, to compare two builds on one corpus.
        let binary = std::env::var("KONTOR_REALMAIL_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_kontor").to_string());
        let mut command = Command::new(binary);
        // The server refuses KONTOR_ variables that name no setting: these are ours.
        for (name, _) in std::env::vars() {
            if name.starts_with("KONTOR_REALMAIL_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env(
                "KONTOR_LOG",
                std::env::var("KONTOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .map_err(|e| format!("cannot start kontor serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut smtp, mut http) = (None, None);
        while http.is_none() {
            let line = lines
                .next()
                .ok_or("kontor serve ended before it listened")?
                .map_err(|e| e.to_string())?;
            let address = |prefix: &str| -> Option<SocketAddr> {
                line.strip_prefix(prefix)?.trim().parse().ok()
            };
            smtp = smtp.or(address("kontor: smtp listening on "));
            http = address("kontor: http listening on ");
        }
        // Drained, so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server {
            child,
            smtp: smtp.ok_or("kontor serve printed no SMTP address")?,
            http: http.ok_or("kontor serve printed no HTTP address")?,
        })
    }

    fn metrics(&self) -> Result<String, String> {
        let mut socket = TcpStream::connect(self.http).map_err(|e| format!("metrics: {e}"))?;
        socket
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
            .map_err(|e| format!("metrics: {e}"))?;
        let mut text = String::new();
        socket
            .read_to_string(&mut text)
            .map_err(|e| format!("metrics: {e}"))?;
        Ok(text)
    }

    fn stop(&mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// jemalloc's counters from `/metrics` (absent when the server's allocator is not
/// jemalloc, e.g. an older build given as `KONTOR_REALMAIL_BINARY`).
fn allocator_mib(metrics: &str) -> Option<String> {
    let mib = |kind: &str| {
        metric(
            metrics,
            &format!("kontor_allocator_bytes{{kind=\"{kind}\"}}"),
        )
        .map(|bytes| bytes / MIB)
    };
    Some(format!(
        "allocated {:.0} MiB, active {:.0}, resident {:.0}, metadata {:.0}, retained {:.0}",
        mib("allocated")?,
        mib("active")?,
        mib("resident")?,
        mib("metadata")?,
        mib("retained")?
    ))
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The command name may hold spaces; the fields after its ")" are fixed.
    let after = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (utime, stime) = (ticks(11).ok_or("utime")?, ticks(12).ok_or("stime")?);
    Ok((utime + stime) / clock_ticks())
}

/// CPU time the whole machine spent busy (all but idle and iowait), in seconds:
/// work the server hands to kernel threads (writeback) shows here, not in its own.
fn machine_busy_seconds() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| e.to_string())?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        // guest and guest_nice are counted in user already.
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(busy / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// VmRSS, and of it the anonymous memory and the mapped files (the index's mmaps).
#[derive(Debug, Clone, Copy)]
struct Resident {
    total_kib: u64,
    anon_kib: u64,
    file_kib: u64,
}

impl std::fmt::Display for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} MiB (anon {:.0}, files {:.0})",
            self.total_kib as f64 / 1024.0,
            self.anon_kib as f64 / 1024.0,
            self.file_kib as f64 / 1024.0
        )
    }
}

fn vm_rss_kib(pid: u32) -> Result<Resident, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Resident {
        total_kib: field("VmRSS:")?,
        anon_kib: field("RssAnon:")?,
        file_kib: field("RssFile:")?,
    })
}

/// Bytes on disk (allocated blocks), so sparse or preallocated files count as
/// what they take.
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn count_files(dir: &Path, extension: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == extension))
                .count()
        })
        .unwrap_or(0)
}

/// Sends every message of one stream on one connection, pipelining each envelope;
/// returns the reply code after each DATA.
fn smtp_client(address: SocketAddr, stream: &[&[u8]]) -> Result<Vec<String>, String> {
    let socket = TcpStream::connect(address).map_err(|e| format!("smtp connect: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = socket.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(socket);
    let io = |e: std::io::Error| format!("smtp: {e}");
    expect(&mut reader, "220")?;
    writer.write_all(b"EHLO bench.example\r\n").map_err(io)?;
    expect(&mut reader, "250")?;
    let mut codes = Vec::with_capacity(stream.len());
    for raw in stream {
        writer
            .write_all(
                format!("MAIL FROM:<bench@bench.example> BODY=8BITMIME\r\nRCPT TO:<{SUPPORT}>\r\nDATA\r\n")
                    .as_bytes(),
            )
            .map_err(io)?;
        expect(&mut reader, "250")?;
        expect(&mut reader, "250")?;
        expect(&mut reader, "354")?;
        writer.write_all(&smtp_client::dot_stuff(raw)).map_err(io)?;
        codes.push(reply(&mut reader)?);
    }
    writer.write_all(b"QUIT\r\n").map_err(io)?;
    expect(&mut reader, "221")?;
    Ok(codes)
}

fn reply(reader: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("smtp: {e}"))?;
        if n == 0 {
            return Err("the SMTP server closed the connection".into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.get(..3).unwrap_or_default().to_string());
        }
    }
}

fn expect(reader: &mut BufReader<TcpStream>, code: &str) -> Result<(), String> {
    let got = reply(reader)?;
    if got == code {
        Ok(())
    } else {
        Err(format!("expected {code}, got {got}"))
    }
}

/// Fetches (once) and reads the SpamAssassin corpus; every file is one message.
fn spamassassin_corpus(cache: &Path) -> Result<Vec<Mail>, String> {
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    for archive in ARCHIVES {
        let unpacked = cache.join(format!("{archive}.unpacked"));
        if unpacked.exists() {
            continue;
        }
        let file = cache.join(archive);
        if !file.exists() {
            let partial = cache.join(format!("{archive}.part"));
            let status = Command::new("curl")
                .args(["-sSfL", "--connect-timeout", "10", "-o"])
                .arg(&partial)
                .arg(format!("{CORPUS_URL}{archive}"))
                .status()
                .map_err(|e| format!("curl: {e}"))?;
            if !status.success() {
                return Err(format!("curl {CORPUS_URL}{archive} failed: {status}"));
            }
            std::fs::rename(&partial, &file).map_err(|e| e.to_string())?;
        }
        let status = Command::new("tar")
            .arg("-xjf")
            .arg(&file)
            .arg("-C")
            .arg(cache)
            .status()
            .map_err(|e| format!("tar: {e}"))?;
        if !status.success() {
            return Err(format!("tar -xjf {} failed", file.display()));
        }
        std::fs::write(&unpacked, b"").map_err(|e| e.to_string())?;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for folder in ["easy_ham", "easy_ham_2", "hard_ham", "spam", "spam_2"] {
        if let Ok(entries) = std::fs::read_dir(cache.join(folder)) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    // Each folder holds a `cmds` file besides the messages.
                    .filter(|p| p.file_name().is_some_and(|n| n != "cmds")),
            );
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no messages under {}", cache.display()));
    }
    files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let mut raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            // An mbox "From " line opens some files; it is no header.
            if raw.starts_with(b"From ") {
                let end = raw
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(raw.len(), |p| p + 1);
                raw.drain(..end);
            }
            Ok(Mail { stream: i, raw })
        })
        .collect()
}

/// A small deterministic generator (xorshift64*), so every run sends the same mail.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS_EN: [&str; 48] = [
    "the",
    "printer",
    "receipt",
    "register",
    "update",
    "since",
    "yesterday",
    "error",
    "again",
    "please",
    "could",
    "you",
    "check",
    "invoice",
    "customer",
    "account",
    "login",
    "password",
    "report",
    "monthly",
    "export",
    "fails",
    "with",
    "message",
    "after",
    "restart",
    "network",
    "server",
    "backup",
    "license",
    "renewal",
    "order",
    "shipment",
    "delivery",
    "tracking",
    "number",
    "screen",
    "frozen",
    "card",
    "terminal",
    "payment",
    "declined",
    "thanks",
    "for",
    "quick",
    "help",
    "regards",
    "today",
];
const WORDS_DE: [&str; 48] = [
    "der",
    "Bondrucker",
    "druckt",
    "seit",
    "dem",
    "Update",
    "keine",
    "Belege",
    "mehr",
    "Kasse",
    "Neustart",
    "hat",
    "nicht",
    "geholfen",
    "Fehlermeldung",
    "lautet",
    "bitte",
    "prüfen",
    "Sie",
    "Rechnung",
    "Kunde",
    "Konto",
    "Anmeldung",
    "Passwort",
    "Bericht",
    "monatlich",
    "Export",
    "schlägt",
    "fehl",
    "nach",
    "Netzwerk",
    "Sicherung",
    "Lizenz",
    "Verlängerung",
    "Bestellung",
    "Lieferung",
    "Sendungsnummer",
    "Bildschirm",
    "eingefroren",
    "Kartenterminal",
    "Zahlung",
    "abgelehnt",
    "danke",
    "für",
    "schnelle",
    "Hilfe",
    "Grüße",
    "heute",
];

fn sentence(random: &mut Random, german: bool) -> String {
    let words = if german { &WORDS_DE[..] } else { &WORDS_EN[..] };
    let n = 6 + random.below(14);
    let mut out = String::new();
    for i in 0..n {
        let word = random.pick(words);
        if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(word);
        }
    }
    if random.chance(10) {
        out.push_str(&format!(" (E-{})", random.below(900) + 100));
    }
    out.push('.');
    out
}

/// Paragraphs wrapped at 72 columns, about `target` bytes.
fn prose(random: &mut Random, german: bool, target: usize) -> String {
    let mut out = String::new();
    while out.len() < target {
        let mut line_len = 0;
        for _ in 0..(2 + random.below(4)) {
            for word in sentence(random, german).split(' ') {
                if line_len + word.len() + 1 > 72 {
                    out.push('\n');
                    line_len = 0;
                } else if line_len > 0 {
                    out.push(' ');
                    line_len += 1;
                }
                out.push_str(word);
                line_len += word.len();
            }
        }
        out.push_str("\n\n");
    }
    out
}

fn html_of(text: &str) -> String {
    let mut out = String::from("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><style>p{margin:0}</style></head><body><div dir=\"ltr\">");
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        out.push_str("<p style=\"font-family:Arial,sans-serif;font-size:10pt\">");
        out.push_str(
            &paragraph
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('\n', "<br>\n"),
        );
        out.push_str("</p>\n");
    }
    out.push_str("</div></body></html>\n");
    out
}

fn base64_lines(random: &mut Random, bytes: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    let chars = bytes.div_ceil(3) * 4;
    for i in 0..chars {
        out.push(ALPHABET[random.below(64)] as char);
        if i % 76 == 75 {
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

/// A thread's first message: who wrote it and what, for the replies to quote.
struct Thread {
    stream: usize,
    sender: String,
    name: String,
    subject: String,
    german: bool,
    last_id: String,
    references: Vec<String>,
    last_text: String,
}

fn generated_corpus(count: usize) -> Vec<Mail> {
    let mut random = Random(0x6b6f_6e74_6f72_2131);
    // A store that already took this corpus answers every message as a duplicate:
    // another tag makes the same mail new to it.
    let tag = std::env::var("KONTOR_REALMAIL_ID_TAG").unwrap_or_default();
    let mut threads: Vec<Thread> = Vec::new();
    let mut corpus = Vec::with_capacity(count);
    let mailers = [
        "Microsoft Outlook 16.0",
        "Mozilla Thunderbird 115.6",
        "Apple Mail (2.3774)",
        "iPhone Mail (21D61)",
        "Evolution 3.50",
    ];
    for i in 0..count {
        // Four in ten are replies to a thread of the last few hundred.
        let reply = !threads.is_empty() && random.chance(40);
        let message_id = format!(
            "<{:016x}.{i}{tag}@mail{}.example.net>",
            random.next(),
            i % 17
        );
        let date = format!(
            "{}, {:02} Feb 2026 {:02}:{:02}:{:02} +0100",
            ["Mon", "Tue", "Wed", "Thu", "Fri"][i % 5],
            1 + i % 27,
            8 + i % 10,
            i % 60,
            (i * 7) % 60
        );
        let (thread_index, new_text) = if reply {
            let back = random.below(threads.len().min(300));
            let index = threads.len() - 1 - back;
            let german = threads[index].german;
            let size = 100 + random.below(600);
            (index, prose(&mut random, german, size))
        } else {
            let german = random.chance(50);
            let n = threads.len();
            threads.push(Thread {
                stream: random.below(CLIENTS),
                sender: format!("kunde{}@firma{}.example.org", n, n % 301),
                name: format!("Kunde {n}"),
                subject: sentence(&mut random, german)
                    .trim_end_matches('.')
                    .chars()
                    .take(60)
                    .collect(),
                german,
                last_id: String::new(),
                references: Vec::new(),
                last_text: String::new(),
            });
            let size = 300 + random.below(2200);
            (n, prose(&mut random, german, size))
        };
        let thread = &mut threads[thread_index];
        let mut text = new_text;
        text.push_str(&format!(
            "\n-- \n{}\nFirma {}\nTel. +49 30 {}\n",
            thread.name,
            thread.sender,
            100_000 + i
        ));
        let mut headers = String::new();
        for hop in 0..(2 + i % 4) {
            headers.push_str(&format!(
                "Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{}])\n\tby mail.support.example.com (Postfix) with ESMTPS id {:X}\n\tfor <{SUPPORT}>; {date}\n",
                1 + hop,
                random.next() >> 24
            ));
        }
        headers.push_str(&format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\n\th=from:to:subject:date:message-id; bh={};\n\tb={}\n",
            base64_lines(&mut random, 32).trim(),
            base64_lines(&mut random, 180).trim().replace('\n', "\n\t")
        ));
        let subject = if reply {
            format!(
                "{} {}",
                if thread.german { "AW:" } else { "Re:" },
                thread.subject
            )
        } else {
            thread.subject.clone()
        };
        headers.push_str(&format!(
            "From: {} <{}>\nTo: Support <{SUPPORT}>\nSubject: {subject}\nDate: {date}\nMessage-ID: {message_id}\nMIME-Version: 1.0\nX-Mailer: {}\n",
            thread.name,
            thread.sender,
            random.pick(&mailers)
        ));
        if reply {
            headers.push_str(&format!(
                "In-Reply-To: {}\nReferences: {}\n",
                thread.last_id,
                thread.references.join("\n ")
            ));
            let header = if thread.german {
                format!("Am {date} schrieb {} <{}>:", thread.name, thread.sender)
            } else {
                format!("On {date}, {} <{}> wrote:", thread.name, thread.sender)
            };
            text.push_str(&format!("\n{header}\n"));
            for line in thread.last_text.lines() {
                text.push_str("> ");
                text.push_str(line);
                text.push('\n');
            }
        }
        thread.last_text = text.lines().take(40).collect::<Vec<_>>().join("\n");
        thread.last_id = message_id.clone();
        thread.references.push(message_id);
        let stream = thread.stream;
        let plain = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n";
        let html_type = "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n";
        let shape = random.below(100);
        let body = if shape < 35 {
            format!("{plain}\n{text}")
        } else if shape < 75 {
            format!(
                "Content-Type: multipart/alternative; boundary=\"alt{i}\"\n\n--alt{i}\n{plain}\n{text}\n--alt{i}\n{html_type}\n{}\n--alt{i}--\n",
                html_of(&text)
            )
        } else if shape < 87 {
            format!("{html_type}\n{}", html_of(&text))
        } else {
            let (name, kind, size) = match random.below(3) {
                0 => ("screenshot.png", "image/png", 3_000 + random.below(9_000)),
                1 => (
                    "rechnung.pdf",
                    "application/pdf",
                    4_000 + random.below(12_000),
                ),
                _ => ("kasse.log", "text/plain", 1_000 + random.below(3_000)),
            };
            format!(
                "Content-Type: multipart/mixed; boundary=\"mix{i}\"\n\n--mix{i}\n{plain}\n{text}\n--mix{i}\nContent-Type: {kind}; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\n{}--mix{i}--\n",
                base64_lines(&mut random, size)
            )
        };
        corpus.push(Mail {
            stream,
            raw: format!("{headers}{body}").into_bytes(),
        });
    }
    corpus
}
