//! The configuration file (CONTRACT.md section 2): TOML, every key defaulted, and any
//! key overridable by `KONTOR_<SECTION>__<KEY>` environment variables.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the config comes from when `--config` is not given.
pub const CONFIG_ENV: &str = "KONTOR_CONFIG";
pub const DEFAULT_CONFIG_PATH: &str = "config/kontor.toml";
/// Relative to the working dir; when missing, `serve` uses the templates it ships.
pub const DEFAULT_TEMPLATES_DIR: &str = "templates";
/// sled needs some cache to work at all; more than 64 GiB is a typo.
const MIN_CACHE_CAPACITY_MB: u64 = 4;
const MAX_CACHE_CAPACITY_MB: u64 = 64 * 1024;
/// `json` makes every log line one JSON object; read by the binary, not a config key.
pub const LOG_FORMAT_ENV: &str = "KONTOR_LOG_FORMAT";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub public_url: String,
    pub default_locale: String,
    /// Handlebars templates: `email/` (notices) and `pages/` (customer pages).
    pub templates_dir: PathBuf,
    pub http: HttpConfig,
    pub inbound: InboundConfig,
    pub outbound: OutboundConfig,
    pub security: SecurityConfig,
    pub search: SearchConfig,
    pub store: StoreConfig,
    pub schedule: ScheduleConfig,
    pub portal: PortalConfig,
    /// `[[webhooks]]`: the back office's endpoints; none by default.
    pub webhooks: Vec<WebhookConfig>,
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// `whsec_<base64>`, the Standard Webhooks secret.
    pub secret: String,
    /// Event types, or `["*"]` for every one.
    #[serde(default = "every_event")]
    pub events: Vec<String>,
    /// PEM certificates trusted for this https:// URL besides the Mozilla roots (a
    /// receiver with a self-signed certificate or a private CA); empty: none.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub ca_file: PathBuf,
}

fn is_unset(path: &Path) -> bool {
    path.as_os_str().is_empty()
}

fn every_event() -> Vec<String> {
    vec!["*".into()]
}

/// `[inbound.imap]`: a mailbox Kontor fetches from; off while `host` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub user: String,
    pub password_file: PathBuf,
    pub folder: String,
    /// Fetched mail is moved here once the store has flushed it.
    pub done_folder: String,
    /// Without IDLE (or when it drops), the folder is looked at this often.
    pub poll_seconds: u64,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            host: String::new(),
            port: 993,
            tls: true,
            user: String::new(),
            password_file: PathBuf::new(),
            folder: "INBOX".into(),
            done_folder: "Kontor-Done".into(),
            poll_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// The IANA time zone times are shown in, on pages and in PDFs.
    pub display_timezone: String,
    /// Shown in the portal's header and page titles.
    pub vendor_name: String,
    /// A logo on our own host (a path like `/portal/assets/logo.png` or a URL of
    /// `public_url`); the pages' CSP allows no other host.
    pub logo_url: String,
    pub imprint_url: String,
    pub privacy_url: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            display_timezone: "Europe/Berlin".into(),
            vendor_name: "Support".into(),
            logo_url: String::new(),
            imprint_url: String::new(),
            privacy_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Writes are refused (HTTP 507, SMTP 452) while the data dir's disk has less
    /// than this many MiB free; 0 turns the check off.
    pub min_free_mb: u64,
    /// The most of the store sled keeps in memory, in MiB (its page cache).
    pub cache_capacity_mb: u64,
    /// Whether a store created from now on compresses its pages (zstd).
    pub compression: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            min_free_mb: 256,
            cache_capacity_mb: kontor_engine::store::sled_store::DEFAULT_CACHE_CAPACITY_MB,
            compression: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// How often the indexer looks for changes it has not applied, in milliseconds.
    pub index_interval_ms: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index_interval_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    pub smtp_listen: String,
    pub domain: String,
    pub mailbox: String,
    pub max_message_bytes: usize,
    pub reopen_days: u32,
    pub max_per_sender_per_hour: u32,
    /// How long the SMTP listener waits for a command line.
    pub smtp_idle_timeout_seconds: u64,
    /// How long one DATA phase (354 to the final dot) may take.
    pub smtp_data_timeout_seconds: u64,
    /// SMTP sessions served at once; more get 421.
    pub smtp_max_connections: usize,
    /// The LMTP listener (RFC 2033) for an MTA's `lmtp:` transport: an address, or
    /// a unix socket path (starting with `/` or `.`); "" turns it off.
    pub lmtp_listen: String,
    pub imap: ImapConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    pub transport: String,
    pub file_dir: PathBuf,
    pub smtp_url: String,
    pub from: String,
    /// The loop guard: automatic notices to one address per clock hour; more are dropped.
    pub max_auto_per_address_per_hour: u32,
    /// Attempts in all before a temporarily failing message is given up.
    pub max_attempts: u32,
    /// The first retry waits this long, each next one twice as long, up to the max.
    pub retry_base_seconds: u32,
    pub retry_max_seconds: u32,
    /// Messages in flight at once.
    pub concurrency: u32,
    /// DKIM signing is on when both are set (`kontor dkim generate` makes the key).
    pub dkim_selector: String,
    pub dkim_private_key_file: PathBuf,
    /// Webhook deliveries that did not get a 2xx are retried after
    /// webhook_retry_base_ms, twice that, ... up to webhook_retry_max_seconds apart;
    /// 0 attempts means until a 2xx comes.
    pub webhook_max_attempts: u32,
    pub webhook_retry_base_ms: u32,
    pub webhook_retry_max_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    pub onretail_secret: String,
    /// The secret being rotated out: accepted alongside `onretail_secret` until removed.
    pub onretail_previous_secret: String,
    pub onretail_rate_per_minute: u32,
    pub view_link_days: u32,
    pub sign_link_days: u32,
    pub login_link_minutes: u32,
    /// How long the session cookie of an opened link lasts at most.
    pub session_hours: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub auto_close: AutoCloseJob,
    pub expire_quotes: CronJob,
    pub remind_signatures: RemindSignaturesJob,
    /// Not in the contract's table: prunes old idempotency keys and loop-guard counters.
    pub housekeeping: HousekeepingJob,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HousekeepingJob {
    pub cron: String,
}

impl Default for HousekeepingJob {
    fn default() -> Self {
        HousekeepingJob {
            cron: "0 17 * * * *".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoCloseJob {
    pub cron: String,
    pub remind_days: u32,
    pub close_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CronJob {
    pub cron: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemindSignaturesJob {
    pub cron: String,
    pub after_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            // Unset: `serve` uses the address it listens on (see `public_url_for`).
            public_url: String::new(),
            default_locale: "de".into(),
            templates_dir: PathBuf::from(DEFAULT_TEMPLATES_DIR),
            http: HttpConfig::default(),
            inbound: InboundConfig::default(),
            outbound: OutboundConfig::default(),
            security: SecurityConfig::default(),
            search: SearchConfig::default(),
            store: StoreConfig::default(),
            schedule: ScheduleConfig::default(),
            portal: PortalConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            smtp_listen: "127.0.0.1:2525".into(),
            domain: "support.example.com".into(),
            mailbox: "support".into(),
            max_message_bytes: 26_214_400,
            reopen_days: 30,
            max_per_sender_per_hour: 40,
            smtp_idle_timeout_seconds: 300,
            smtp_data_timeout_seconds: 600,
            smtp_max_connections: 1000,
            lmtp_listen: String::new(),
            imap: ImapConfig::default(),
        }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            transport: "file".into(),
            file_dir: PathBuf::from("data/outbox"),
            smtp_url: "smtp://127.0.0.1:25".into(),
            from: "Support <support@support.example.com>".into(),
            max_auto_per_address_per_hour: 20,
            max_attempts: 12,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            concurrency: 16,
            dkim_selector: String::new(),
            dkim_private_key_file: PathBuf::new(),
            webhook_max_attempts: 0,
            webhook_retry_base_ms: 5000,
            webhook_retry_max_seconds: 3600,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            onretail_secret: String::new(),
            onretail_previous_secret: String::new(),
            onretail_rate_per_minute: 60,
            view_link_days: 30,
            sign_link_days: 14,
            login_link_minutes: 15,
            session_hours: 12,
        }
    }
}

impl Default for AutoCloseJob {
    fn default() -> Self {
        AutoCloseJob {
            cron: "0 0 3 * * *".into(),
            remind_days: 7,
            close_days: 14,
        }
    }
}

impl Default for CronJob {
    fn default() -> Self {
        CronJob {
            cron: "0 */15 * * * *".into(),
        }
    }
}

impl Default for RemindSignaturesJob {
    fn default() -> Self {
        RemindSignaturesJob {
            cron: "0 0 9 * * Mon-Fri".into(),
            after_days: 3,
        }
    }
}

/// Why the configuration could not be loaded; each names the file or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the file named by `--config`, else `KONTOR_CONFIG`, else
    /// `config/kontor.toml` (which may be missing: every key has a default), then
    /// applies `KONTOR_…` overrides from `env`.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env
            .iter()
            .find(|(name, _)| name == CONFIG_ENV)
            .map(|(_, value)| PathBuf::from(value));
        let (path, required) = match (explicit, from_env) {
            (Some(path), _) => (path.to_path_buf(), true),
            (None, Some(path)) => (path, true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.display().to_string(),
            reason: error.message().to_string(),
        })?;
        apply_env_overrides(&mut table, &env)?;
        let config: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|error| ConfigError::Parse {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if kontor_engine::model::Locale::parse(&self.default_locale).is_none() {
            return Err(ConfigError::Invalid(format!(
                "default_locale must be \"de\" or \"en\", not {:?}",
                self.default_locale
            )));
        }
        if self
            .portal
            .display_timezone
            .parse::<chrono_tz::Tz>()
            .is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "portal.display_timezone is not an IANA time zone: {:?}",
                self.portal.display_timezone
            )));
        }
        if !matches!(self.outbound.transport.as_str(), "file" | "smtp") {
            return Err(ConfigError::Invalid(format!(
                "outbound.transport must be \"file\" or \"smtp\", not {:?}",
                self.outbound.transport
            )));
        }
        if self
            .outbound
            .from
            .parse::<lettre::message::Mailbox>()
            .is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "outbound.from is not a mail address: {:?}",
                self.outbound.from
            )));
        }
        if self.outbound.max_attempts == 0 || self.outbound.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "outbound.max_attempts and outbound.concurrency must be above 0".into(),
            ));
        }
        crate::scheduler::schedule(self).map_err(ConfigError::Invalid)?;
        self.validate_links()?;
        let selector_set = !self.outbound.dkim_selector.trim().is_empty();
        let key_set = !self.outbound.dkim_private_key_file.as_os_str().is_empty();
        if selector_set != key_set {
            let missing = if selector_set {
                "outbound.dkim_private_key_file"
            } else {
                "outbound.dkim_selector"
            };
            return Err(ConfigError::Invalid(format!(
                "{missing} must be set too: DKIM signing needs outbound.dkim_selector and outbound.dkim_private_key_file"
            )));
        }
        crate::outbound::webhooks::check_config(self).map_err(ConfigError::Invalid)?;
        if !(MIN_CACHE_CAPACITY_MB..=MAX_CACHE_CAPACITY_MB).contains(&self.store.cache_capacity_mb)
        {
            return Err(ConfigError::Invalid(format!(
                "store.cache_capacity_mb must be from {MIN_CACHE_CAPACITY_MB} to {MAX_CACHE_CAPACITY_MB}, not {}",
                self.store.cache_capacity_mb
            )));
        }
        if self.inbound.max_message_bytes == 0 {
            return Err(ConfigError::Invalid(
                "inbound.max_message_bytes must be above 0".into(),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Settings that would hand out broken links: a `public_url` that is not an
    /// http(s) base, or a link lifetime of 0 (every link expired when mailed).
    fn validate_links(&self) -> Result<(), ConfigError> {
        let url = self.public_url.trim();
        if !url.is_empty() {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            let host = rest.and_then(|rest| rest.split('/').next()).unwrap_or("");
            if host.is_empty() || url.chars().any(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "public_url must be an http:// or https:// address, not {url:?}"
                )));
            }
        }
        let security = &self.security;
        for (key, value) in [
            ("security.view_link_days", security.view_link_days),
            ("security.sign_link_days", security.sign_link_days),
            ("security.login_link_minutes", security.login_link_minutes),
            ("security.session_hours", security.session_hours),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be above 0: a link lifetime of 0 makes every link expired when mailed"
                )));
            }
        }
        Ok(())
    }

    /// The base of every link: `public_url` when set, else the address the HTTP
    /// listener got (`bound`, the real port also for port 0), else `http.listen`.
    /// An unspecified address (0.0.0.0, ::) becomes the loopback one, which at
    /// least works on this machine.
    pub fn public_url_for(&self, bound: Option<std::net::SocketAddr>) -> String {
        let configured = self.public_url.trim().trim_end_matches('/');
        if !configured.is_empty() {
            return configured.to_string();
        }
        let address = bound.or_else(|| self.http.listen.trim().parse().ok());
        match address {
            Some(mut address) => {
                if address.ip().is_unspecified() {
                    address.set_ip(match address {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{address}")
            }
            None => format!("http://{}", self.http.listen.trim()),
        }
    }
}

/// `KONTOR_HTTP__LISTEN=…` sets `[http] listen`. The value is read as the type the key
/// has in the defaults, so `KONTOR_INBOUND__MAILBOX=123` stays a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default())
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("KONTOR_") else {
            continue;
        };
        if name == CONFIG_ENV || name == "KONTOR_LOG" || name == LOG_FORMAT_ENV {
            continue;
        }
        let path: Vec<String> = rest
            .split("__")
            .map(|part| part.to_ascii_lowercase())
            .collect();
        let env_error = |reason: String| ConfigError::Env {
            name: name.clone(),
            reason,
        };
        let mut default_value: Option<&toml::Value> = None;
        let mut default_table = &defaults;
        for (depth, part) in path.iter().enumerate() {
            match default_table.get(part) {
                Some(toml::Value::Table(inner)) if depth + 1 < path.len() => default_table = inner,
                Some(value) if depth + 1 == path.len() => default_value = Some(value),
                _ => break,
            }
        }
        let Some(default_value) = default_value else {
            return Err(env_error("names no configuration key".into()));
        };
        let value = match default_value {
            toml::Value::String(_) => toml::Value::String(raw.clone()),
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| env_error(format!("{raw:?} is not a whole number")))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(
                raw.trim()
                    .parse()
                    .map_err(|_| env_error(format!("{raw:?} is not true or false")))?,
            ),
            _ => return Err(env_error("names a section, not a key".into())),
        };
        let mut target = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = target
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            target = match entry {
                toml::Value::Table(inner) => inner,
                _ => return Err(env_error(format!("[{part}] is not a section in the file"))),
            };
        }
        if let Some(last) = path.last() {
            target.insert(last.clone(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kontor.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn an_empty_file_gives_every_default() {
        let (_dir, path) = write("");
        assert_eq!(
            Config::load(Some(&path), vec![]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_shipped_config_file_is_the_defaults() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kontor.toml");
        assert_eq!(
            Config::load(Some(&shipped), vec![]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn environment_overrides_file_values_with_the_keys_type() {
        let (_dir, path) = write("[http]\nlisten = \"127.0.0.1:1\"\n");
        let env = vec![
            (
                "KONTOR_HTTP__LISTEN".to_string(),
                "127.0.0.1:9000".to_string(),
            ),
            ("KONTOR_INBOUND__MAILBOX".to_string(), "123".to_string()),
            ("KONTOR_INBOUND__REOPEN_DAYS".to_string(), "7".to_string()),
            ("KONTOR_DATA_DIR".to_string(), "/tmp/x".to_string()),
            (
                "KONTOR_SCHEDULE__AUTO_CLOSE__CLOSE_DAYS".to_string(),
                "3".to_string(),
            ),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.http.listen, "127.0.0.1:9000");
        assert_eq!(config.inbound.mailbox, "123");
        assert_eq!(config.inbound.reopen_days, 7);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.schedule.auto_close.close_days, 3);
    }

    #[test]
    fn settings_that_would_mislead_name_their_key() {
        for (text, key) in [
            ("public_url = \"ftp://example.com\"\n", "public_url"),
            ("public_url = \"example.com\"\n", "public_url"),
            (
                "[security]\nview_link_days = 0\n",
                "security.view_link_days",
            ),
            (
                "[security]\nlogin_link_minutes = 0\n",
                "security.login_link_minutes",
            ),
            (
                "[store]\ncache_capacity_mb = 0\n",
                "store.cache_capacity_mb",
            ),
            (
                "[store]\ncache_capacity_mb = 1000000\n",
                "store.cache_capacity_mb",
            ),
        ] {
            let (_dir, path) = write(text);
            let error = Config::load(Some(&path), vec![]).unwrap_err().to_string();
            assert!(error.contains(key), "{text}: {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }

    #[test]
    fn the_deployment_example_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kontor.toml");
        let config = Config::load(Some(&example), vec![]).unwrap();
        assert_eq!(config.public_url, "https://help.example.com");
        assert_eq!(config.outbound.dkim_selector, "kontor2026");
    }

    #[test]
    fn public_url_defaults_to_the_bound_address() {
        let mut config = Config::default();
        let bound: std::net::SocketAddr = "0.0.0.0:43210".parse().unwrap();
        assert_eq!(config.public_url_for(Some(bound)), "http://127.0.0.1:43210");
        assert_eq!(config.public_url_for(None), "http://127.0.0.1:8080");
        config.public_url = "https://help.example.com/".into();
        assert_eq!(
            config.public_url_for(Some(bound)),
            "https://help.example.com"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let (_dir, path) = write("[htp]\nlisten = 1\n");
        let error = Config::load(Some(&path), vec![]).unwrap_err().to_string();
        assert!(error.contains("htp"), "{error}");
        let (_dir, path) = write("");
        let env = vec![(
            "KONTOR_INBOUND__REOPEN_DAYS".to_string(),
            "soon".to_string(),
        )];
        let error = Config::load(Some(&path), env).unwrap_err().to_string();
        assert!(error.contains("KONTOR_INBOUND__REOPEN_DAYS"), "{error}");
        let env = vec![("KONTOR_NOPE".to_string(), "1".to_string())];
        assert!(Config::load(Some(&path), env).is_err());
    }
}
