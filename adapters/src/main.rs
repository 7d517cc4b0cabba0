//! `kontor`: the command line. Each command does one job and, when it cannot, exits
//! non-zero with one clear line on stderr.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kontor::config::Config;
use kontor::serve;

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
    },
    /// Manage staff API keys (works while no server holds the data dir).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Rebuild the search index from the store, with a progress bar.
    Reindex {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Scheduled jobs (auto_close, expire_quotes, remind_signatures).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Write the whole store as JSON lines to stdout.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read an export from stdin into an empty data dir.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check every record's history chain; exit 1 naming the first broken entry.
    Verify {
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
    },
    /// Revoke every key of that name; requests with it are then answered 403.
    Revoke {
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List keys (names and dates, never secrets).
    List {
        #[arg(long)]
        config: Option<PathBuf>,
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
    if let Command::Mailgate { url, key_file } = &cli.command {
        return mailgate(url, key_file);
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
fn mailgate(url: &str, key_file: &std::path::Path) -> ExitCode {
    use kontor::mailgate::{Delivery, EX_TEMPFAIL};
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
    let delivery = runtime.block_on(kontor::mailgate::deliver(url, &key, raw));
    match &delivery {
        Delivery::Delivered(answer) => println!("{answer}"),
        Delivery::Rejected(why) | Delivery::TryLater(why) => eprintln!("kontor: mailgate: {why}"),
    }
    ExitCode::from(delivery.exit_code())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KONTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,tantivy=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
            KeysCommand::Create { name, config } => {
                let engine = serve::open_engine(&load_config(config.as_ref())?)?;
                let (_key, secret) = engine
                    .create_api_key(&name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{secret}");
                Ok(())
            }
            KeysCommand::Revoke { name, config } => {
                let engine = serve::open_engine(&load_config(config.as_ref())?)?;
                let revoked = engine
                    .revoke_api_keys(&name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if revoked == 0 {
                    anyhow::bail!("no active key is named {name:?}");
                }
                eprintln!("revoked {revoked} key(s) named {name:?}");
                Ok(())
            }
            KeysCommand::List { config } => {
                let engine = serve::open_engine(&load_config(config.as_ref())?)?;
                for key in engine.api_keys().map_err(|e| anyhow::anyhow!("{e}"))? {
                    let state = match key.revoked_at {
                        Some(at) => format!("revoked {}", at.to_rfc3339()),
                        None => "active".to_string(),
                    };
                    println!(
                        "{}\t{}\t{}\t{}",
                        key.id,
                        key.name,
                        key.created_at.to_rfc3339(),
                        state
                    );
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
        Command::Reindex { config } => {
            let engine = serve::open_engine(&load_config(config.as_ref())?)?;
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
        Command::Export { config } => {
            let engine = serve::open_engine(&load_config(config.as_ref())?)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            engine
                .export(&mut out)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out.flush()?;
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
        Command::Verify { config } => {
            let engine = serve::open_engine(&load_config(config.as_ref())?)?;
            let report = engine
                .verify()
                .map_err(|e| anyhow::anyhow!("history chain broken: {e}"))?;
            println!(
                "verified {} history entries of {} records: every chain holds",
                report.entries, report.records
            );
            Ok(())
        }
    }
}
