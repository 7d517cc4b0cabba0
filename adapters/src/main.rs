//! `kontor`: the command line. Each command does one job and, when it cannot, exits
//! non-zero with one clear line on stderr.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kontor::config::Config;
use kontor::serve;

/// jemalloc instead of glibc's malloc: with a few dozen threads, glibc's per-thread
/// arenas kept about a third of the server's resident memory in freed chunks after a
/// burst of mail (README, "With 1,000,000 messages stored"); jemalloc gives its freed
/// pages back and counts what it holds (`kontor::memory`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "kontor",
    version,
    about = "Kontor: a helpdesk engine in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything: the HTTP API and the background workers.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed demo records into an empty data dir and print how to reach them.
        #[arg(long)]
        demo: bool,
    },
    /// Deliver one message from stdin to a running server (for MTA pipes).
    /// Exit 0 delivered, 65 refused for good, 75 try later.
    Mailgate {
        /// The server's base URL, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        /// A file holding a staff API key.
        #[arg(long)]
        key_file: PathBuf,
        /// PEM certificates to trust for an https:// URL besides the Mozilla roots
        /// (a server with a self-signed certificate or a private CA).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Manage staff API keys (through the running server when one holds the data dir).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Rebuild the search index from the store, with a progress bar.
    Reindex {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Scheduled jobs (auto_close, expire_quotes, remind_signatures).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Write the whole store as JSON lines to stdout (one consistent state, also
    /// while a server runs). It holds the signing keys unless --without-secrets.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Leave the signing keys out: a restore then mints new ones, and links and
        /// reply addresses mailed before stop working.
        #[arg(long)]
        without_secrets: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Read an export from stdin into an empty data dir.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check every record's history chain (exit 1 naming the first broken entry)
    /// and every stored blob (exit 1 naming each missing or damaged one); list the
    /// blob files nothing names.
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Delete the blob files nothing names (left by failed or interrupted writes).
        #[arg(long)]
        remove_orphans: bool,
    },
    /// DKIM keys for signing outbound mail.
    Dkim {
        #[command(subcommand)]
        command: DkimCommand,
    },
}

/// How a command reaches a server that holds the data dir.
#[derive(Debug, Clone, clap::Args)]
struct ServerArgs {
    /// Go through the server at this URL (default: the URL it wrote to
    /// <data_dir>/admin.json, used only while it holds the data dir).
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum DkimCommand {
    /// Write a new private key file and print the DNS TXT record to publish.
    Generate {
        /// The selector: the record goes to <selector>._domainkey.<domain>.
        #[arg(long)]
        selector: String,
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: kontor::dkim::DkimAlgorithm,
        /// Where to write the key (default: <data_dir>/dkim/<selector>.key).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Run one job at once, with the code the scheduler runs; prints what it did.
    Run {
        /// auto_close, expire_quotes or remind_signatures.
        name: String,
        /// The time the job sees as now (RFC 3339); the wall clock by default.
        #[arg(long)]
        now: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it, alone, on stdout. Only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke every key of that name; requests with it are then answered 403.
    Revoke {
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List keys (names and dates, never secrets).
    List {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Add a new signing key for magic links and reply addresses and make it the
    /// active one; links signed by the older keys still open. Prints the new key id.
    RotateSigning {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Remove an old signing key: links and reply addresses it signed stop working.
    RemoveSigning {
        #[arg(long)]
        id: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    kontor::memory::jemalloc_is_the_global_allocator();
    // Before any HTTP client is built: reqwest has no provider of its own (tls.rs).
    kontor::tls::install_provider();
    if let Command::Mailgate {
        url,
        key_file,
        ca_file,
    } = &cli.command
    {
        return mailgate(url, key_file, ca_file.as_deref());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("kontor: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `kontor mailgate`: its exit codes are for the MTA (sysexits), not 0/1.
fn mailgate(url: &str, key_file: &std::path::Path, ca_file: Option<&std::path::Path>) -> ExitCode {
    use kontor::mailgate::{Delivery, Gate, EX_TEMPFAIL};
    use std::io::Read;
    let key = match std::fs::read_to_string(key_file) {
        Ok(key) if !key.trim().is_empty() => key.trim().to_string(),
        Ok(_) => {
            eprintln!(
                "kontor: mailgate: the key file {} is empty",
                key_file.display()
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
        Err(error) => {
            eprintln!(
                "kontor: mailgate: cannot read the key file {}: {error}",
                key_file.display()
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let mut raw = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut raw) {
        eprintln!("kontor: mailgate: cannot read the message from stdin: {error}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kontor: mailgate: {error}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let gate = Gate {
        url: url.to_string(),
        key,
        ca_file: ca_file.map(std::path::Path::to_path_buf),
    };
    let delivery = runtime.block_on(kontor::mailgate::deliver(&gate, raw));
    match &delivery {
        Delivery::Delivered(answer) => println!("{answer}"),
        Delivery::Rejected(why) | Delivery::TryLater(why) => eprintln!("kontor: mailgate: {why}"),
    }
    ExitCode::from(delivery.exit_code())
}

/// Logs go to stderr: one JSON object a line with `KONTOR_LOG_FORMAT=json` (for log
/// shippers), else text; colour only when stderr is a terminal, so that files and
/// journald get no escape codes.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KONTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,tantivy=warn"));
    let json = std::env::var(kontor::config::LOG_FORMAT_ENV)
        .is_ok_and(|format| format.trim().eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Where an admin command runs: on the data dir itself, or through the server
/// that holds it.
enum Target {
    // Boxed: the engine is large and lives for one command; clippy's variant rule.
    Local(Box<kontor_engine::Engine>),
    Server(kontor::admin::AdminClient),
}

fn target(config: &Config, server: &ServerArgs) -> anyhow::Result<Target> {
    if let Some(url) = &server.url {
        return Ok(Target::Server(kontor::admin::AdminClient::from_data_dir(
            &config.data_dir,
            Some(url),
        )?));
    }
    match kontor_engine::Engine::open(&config.data_dir, serve::engine_config(config)) {
        Ok(engine) => Ok(Target::Local(Box::new(engine))),
        Err(error) if kontor::admin::is_held_by_server(&error) => Ok(Target::Server(
            kontor::admin::AdminClient::from_data_dir(&config.data_dir, None)?,
        )),
        Err(error) => Err(anyhow::anyhow!("{error}")),
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(Config::load(path.map(|p| p.as_path()), std::env::vars())?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, demo } => {
            let config = load_config(config.as_ref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run(config, demo))
        }
        Command::Mailgate { .. } => unreachable!("handled before logging starts"),
        Command::Jobs {
            command: JobsCommand::Run { name, now, config },
        } => {
            use kontor_engine::ops::jobs::Job;
            let Some(job) = Job::parse(&name) else {
                let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
                anyhow::bail!(
                    "no job is named {name:?}; the jobs are {}",
                    names.join(", ")
                );
            };
            let now = match now {
                Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
                    .map_err(|error| {
                        anyhow::anyhow!("--now {text:?} is not an RFC 3339 time: {error}")
                    })?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let config = load_config(config.as_ref())?;
            println!("{}", serve::run_job_now(&config, job, now)?);
            Ok(())
        }
        Command::Keys { command } => match command {
            KeysCommand::Create {
                name,
                config,
                server,
            } => {
                let secret = match target(&load_config(config.as_ref())?, &server)? {
                    Target::Local(engine) => {
                        engine
                            .create_api_key(&name)
                            .map_err(|e| anyhow::anyhow!("{e}"))?
                            .1
                    }
                    Target::Server(client) => client.create_key(&name)?,
                };
                println!("{secret}");
                Ok(())
            }
            KeysCommand::Revoke {
                name,
                config,
                server,
            } => {
                let revoked = match target(&load_config(config.as_ref())?, &server)? {
                    Target::Local(engine) => engine
                        .revoke_api_keys(&name)
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        as u64,
                    Target::Server(client) => client.revoke_keys(&name)?,
                };
                if revoked == 0 {
                    anyhow::bail!("no active key is named {name:?}");
                }
                eprintln!("revoked {revoked} key(s) named {name:?}");
                Ok(())
            }
            KeysCommand::List { config, server } => {
                let keys: Vec<(String, String, String, Option<String>)> =
                    match target(&load_config(config.as_ref())?, &server)? {
                        Target::Local(engine) => engine
                            .api_keys()
                            .map_err(|e| anyhow::anyhow!("{e}"))?
                            .into_iter()
                            .map(|key| {
                                (
                                    key.id.to_string(),
                                    key.name,
                                    key.created_at.to_rfc3339(),
                                    key.revoked_at.map(|at| at.to_rfc3339()),
                                )
                            })
                            .collect(),
                        Target::Server(client) => client
                            .list_keys()?
                            .into_iter()
                            .map(|key| (key.id, key.name, key.created_at, key.revoked_at))
                            .collect(),
                    };
                for (id, name, created_at, revoked_at) in keys {
                    let state = match revoked_at {
                        Some(at) => format!("revoked {at}"),
                        None => "active".to_string(),
                    };
                    println!("{id}\t{name}\t{created_at}\t{state}");
                }
                Ok(())
            }
            KeysCommand::RotateSigning { config } => {
                let engine = serve::open_engine(&load_config(config.as_ref())?)?;
                let id = engine
                    .rotate_signing_key()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{id}");
                Ok(())
            }
            KeysCommand::RemoveSigning { id, config } => {
                let engine = serve::open_engine(&load_config(config.as_ref())?)?;
                engine
                    .remove_signing_key(&id)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!("removed signing key {id}");
                Ok(())
            }
        },
        Command::Reindex { config, server } => {
            let engine = match target(&load_config(config.as_ref())?, &server)? {
                Target::Local(engine) => *engine,
                Target::Server(client) => {
                    let started = std::time::Instant::now();
                    let done = client.reindex()?;
                    eprintln!(
                        "reindexed {done} records in {:.1} s (through the running server)",
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
            };
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let started = std::time::Instant::now();
            let done = engine
                .reindex(&mut |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "reindexed {done} records in {seconds:.1} s ({:.0} records/s)",
                done as f64 / seconds.max(0.001)
            );
            Ok(())
        }
        Command::Export {
            config,
            without_secrets,
            server,
        } => {
            use kontor_engine::ops::transfer::ExportSecrets;
            let target = target(&load_config(config.as_ref())?, &server)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let lines = match target {
                Target::Local(engine) => {
                    let secrets = if without_secrets {
                        ExportSecrets::LeftOut
                    } else {
                        ExportSecrets::Included
                    };
                    engine
                        .export_with(&mut out, secrets)
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                }
                Target::Server(client) => client.export(without_secrets, &mut out)?,
            };
            out.flush()?;
            if without_secrets {
                eprintln!("kontor: exported {lines} lines, without the signing keys");
            } else {
                eprintln!(
                    "kontor: exported {lines} lines; the dump holds the signing keys of links and reply addresses: keep it as secret as the data dir (--without-secrets leaves them out)"
                );
            }
            Ok(())
        }
        Command::Import { config } => {
            let engine = serve::open_engine(&load_config(config.as_ref())?)?;
            let stdin = std::io::stdin();
            let mut input = BufReader::new(stdin.lock());
            let lines = engine
                .import(&mut input)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("imported {lines} records");
            Ok(())
        }
        Command::Dkim {
            command:
                DkimCommand::Generate {
                    selector,
                    algorithm,
                    out,
                    config,
                },
        } => {
            let config = load_config(config.as_ref())?;
            let path =
                out.unwrap_or_else(|| config.data_dir.join("dkim").join(format!("{selector}.key")));
            let record = kontor::dkim::generate(&path, &selector, algorithm)?;
            eprintln!(
                "kontor: wrote the private key to {}; publish this TXT record at {selector}._domainkey.<your mail domain>, then set [outbound] dkim_selector = {selector:?} and dkim_private_key_file = {:?}",
                path.display(),
                path.display().to_string()
            );
            println!("{record}");
            Ok(())
        }
        Command::Verify {
            config,
            remove_orphans,
        } => {
            let engine = serve::open_engine(&load_config(config.as_ref())?)?;
            let report = engine
                .verify()
                .map_err(|e| anyhow::anyhow!("history chain broken: {e}"))?;
            println!(
                "verified {} history entries of {} records: every chain holds",
                report.entries, report.records
            );
            for orphan in &report.orphan_blobs {
                println!(
                    "orphan blob file {} ({} bytes): nothing names it",
                    orphan.name(),
                    orphan.bytes()
                );
            }
            if remove_orphans {
                let removed = engine.remove_orphan_blobs()?;
                println!("removed {} orphan blob files", removed.len());
            }
            if !report.damaged_blobs.is_empty() {
                for damaged in &report.damaged_blobs {
                    eprintln!("kontor: {damaged}");
                }
                anyhow::bail!(
                    "{} of {} stored blobs are missing or damaged",
                    report.damaged_blobs.len(),
                    report.blobs as usize + report.damaged_blobs.len()
                );
            }
            println!(
                "verified {} stored blobs: each hashes to its name",
                report.blobs
            );
            Ok(())
        }
    }
}
