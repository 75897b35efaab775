//! The configuration file (design §3), loaded once into one typed [`Config`]
//! and passed to everything that needs it. Nothing reads configuration from a
//! global at request time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

mod network;
pub use network::NetworkConfig;

/// The whole configuration file. Unknown keys anywhere are an error that
/// names the key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_database")]
    pub database: DatabaseUrl,
    /// PostgreSQL connections of one instance's pool (its change listener
    /// holds one more): 2 × cores by default, at least 4.
    #[serde(default = "default_pool_size", deserialize_with = "pool_size")]
    pub database_pool_size: u32,
    /// Where the change listener connects when `database` points at a
    /// PgBouncer in transaction mode (LISTEN needs a session of its own).
    #[serde(default)]
    pub database_listen_url: Option<DatabaseUrl>,
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default = "default_max_limit")]
    pub max_limit: u32,
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub password: PasswordConfig,
    #[serde(default)]
    pub throttle: ThrottleConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub datasources: IndexMap<String, DatasourceConfig>,
    /// role → datasource → what the role grants on it.
    #[serde(default)]
    pub roles: BTreeMap<String, BTreeMap<String, GrantConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            database: default_database(),
            database_pool_size: default_pool_size(),
            database_listen_url: None,
            issuer: default_issuer(),
            max_limit: default_max_limit(),
            max_body: default_max_body(),
            session: SessionConfig::default(),
            password: PasswordConfig::default(),
            throttle: ThrottleConfig::default(),
            network: NetworkConfig::default(),
            secrets: SecretsConfig::default(),
            datasources: IndexMap::new(),
            roles: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Parses a configuration file's text; the error names the bad key or value.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_string() + &location(text, e.span()))
    }

    /// The URL the change listener connects to: `database_listen_url`, or
    /// else `database`.
    pub fn listen_url(&self) -> &str {
        self.database_listen_url.as_ref().unwrap_or(&self.database).0.as_str()
    }

    /// Loads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_database() -> DatabaseUrl {
    DatabaseUrl("sqlite://tessera.db".into())
}
/// 2 × the cores this process may use, at least 4.
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cores.saturating_mul(2)).unwrap_or(u32::MAX).max(4)
}
fn pool_size<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "database_pool_size must be at least 1 (the default is 2 x cores, at least 4)",
        )),
        n => Ok(n),
    }
}
fn default_issuer() -> String {
    "tessera".into()
}
fn default_max_limit() -> u32 {
    1000
}
fn default_max_body() -> ByteSize {
    ByteSize(1 << 20)
}

/// `[session]`: how long a session lives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// The session ends after this long unused.
    pub idle_timeout: HumanDuration,
    /// The session ends this long after sign-in, used or not.
    pub max_lifetime: HumanDuration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: HumanDuration(Duration::from_secs(30 * 60)),
            max_lifetime: HumanDuration(Duration::from_secs(12 * 3600)),
        }
    }
}

/// `[password]`: argon2id parameters (OWASP's by default).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { memory_kib: 19456, iterations: 2, parallelism: 1 }
    }
}

/// `[throttle]`: sign-in guessing limits (design §4.2).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failures of one user name from one client address before that pair waits.
    pub user_address_failures: u32,
    /// Failures of one user name from all addresses before it waits.
    pub user_failures: u32,
    /// Failures from one client address, any user names, before it waits.
    pub ip_failures: u32,
    /// How long a failure counts.
    pub window: HumanDuration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            user_address_failures: 5,
            user_failures: 100,
            ip_failures: 50,
            window: HumanDuration(Duration::from_secs(15 * 60)),
        }
    }
}

/// `[secrets]`: where the secret key is (design §3, §4.7).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// 32 random bytes, made (mode 0600) if missing; relative to the working
    /// directory. The environment variable `TESSERA_SECRET_KEY` wins over it.
    pub key_file: std::path::PathBuf,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { key_file: "tessera.key".into() }
    }
}

/// `[datasources.NAME]`: one table and its attributes, in file order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasourceConfig {
    pub table: String,
    /// `org` (the default): rows belong to an org and each session sees
    /// only its own org's; `global`: rows are shared by every org.
    #[serde(default)]
    pub scope: Scope,
    /// Whether every insert, update and delete writes an audit entry
    /// (design §4.6); on unless `audit = false`.
    #[serde(default = "yes")]
    pub audit: bool,
    /// Indexes to keep on the table, each a list of attribute codes (for
    /// the filters callers use most); made at start if missing.
    #[serde(default)]
    pub indexes: Vec<Vec<String>>,
    pub attributes: IndexMap<String, AttributeConfig>,
}

/// Whose rows a datasource holds (design §3, §4.5).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Org,
    Global,
}

/// What one role grants on one datasource: the short form
/// `DS = ["query", ...]`, or the long form `[roles.R.DS]` with
/// `operations`, a row `filter` and an `attributes` list (design §4.5).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum GrantConfig {
    Operations(Vec<Operation>),
    Rules(GrantRules),
}

/// The long form of a grant.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRules {
    pub operations: Vec<Operation>,
    /// Rows the role reaches: the query language of design §1.4, with
    /// `$user`, `$org` and `$session` taken from the session.
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
    /// The attributes the role sees; every attribute when absent.
    #[serde(default)]
    pub attributes: Option<Vec<String>>,
}

impl GrantConfig {
    /// The operations granted, in either form.
    pub fn operations(&self) -> &[Operation] {
        match self {
            Self::Operations(ops) => ops,
            Self::Rules(rules) => &rules.operations,
        }
    }
}

/// One attribute of a datasource.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub primary_key: bool,
    #[serde(default)]
    pub generated: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default = "yes")]
    pub updatable: bool,
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub column: Option<String>,
}

fn yes() -> bool {
    true
}

/// An operation a role may be granted on a datasource.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Query,
    Insert,
    Update,
    Delete,
}

impl std::str::FromStr for Operation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "query" => Ok(Self::Query),
            "insert" => Ok(Self::Insert),
            "update" => Ok(Self::Update),
            "delete" => Ok(Self::Delete),
            other => {
                Err(format!("unknown operation {other:?}: use query, insert, update or delete"))
            }
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Query => "query",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
        })
    }
}

/// A database URL; its `Debug` hides any password in it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// The URL with any `user:password@` password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.into() };
    let Some((auth, host)) = rest.split_once('@') else { return url.into() };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.into(),
    }
}

/// A duration written like `"30m"`, `"12h"`, `"15s"`, `"500ms"` or `"1d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `"<number><unit>"`, unit one of `ms`, `s`, `m`, `h`, `d`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad = || {
            format!(
                "invalid duration {text:?}: write a whole number and a unit, like \"30m\" (units: ms, s, m, h, d)"
            )
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        let millis = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        n.checked_mul(millis).map(|ms| Self(Duration::from_millis(ms))).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes written like `"1MiB"`, `"512KiB"`, `"2MB"` or `"4096"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl ByteSize {
    /// Parses `"<number>[unit]"`, unit one of `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad = || {
            format!(
                "invalid size {text:?}: write a whole number and a unit, like \"1MiB\" (units: B, KB, KiB, MB, MiB, GB, GiB)"
            )
        };
        let n: usize = number.parse().map_err(|_| bad())?;
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(scale).map(Self).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(HumanDuration::parse("30m").unwrap().0, Duration::from_secs(1800));
        assert_eq!(HumanDuration::parse("12h").unwrap().0, Duration::from_secs(43200));
        assert_eq!(HumanDuration::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert!(HumanDuration::parse("30").is_err());
        assert!(HumanDuration::parse("m").is_err());
        assert!(HumanDuration::parse("3 weeks").is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("1MiB").unwrap().0, 1 << 20);
        assert_eq!(ByteSize::parse("512KiB").unwrap().0, 512 << 10);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        assert!(ByteSize::parse("1 parsec").is_err());
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
            listen = "127.0.0.1:8080"
            database = "sqlite://tessera.db"
            database_pool_size = 4
            # database_listen_url = "postgres://…"
            issuer = "tessera"
            max_limit = 1000
            max_body = "1MiB"
            [session]
            idle_timeout = "30m"
            max_lifetime = "12h"
            [password]
            memory_kib = 19456
            iterations = 2
            parallelism = 1
            [throttle]
            user_address_failures = 5
            user_failures = 100
            ip_failures = 50
            window = "15m"
            [network]
            trusted_proxies = ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]
            [datasources.Employees]
            table = "employees"
            [datasources.Employees.attributes]
            empId  = { type = "Integer", primary_key = true, generated = true }
            name   = { type = "String", required = true }
            salary = { type = "Decimal" }
            active = { type = "YN", default = "Y" }
            email  = { type = "Email", column = "email_address", updatable = false }
            [roles.hr_reader]
            Employees = ["query"]
            [roles.hr_admin]
            Employees = ["query", "insert", "update", "delete"]
        "#;
        let config = Config::parse(text).unwrap();
        let ds = &config.datasources["Employees"];
        let names: Vec<_> = ds.attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["empId", "name", "salary", "active", "email"]);
        assert_eq!(config.roles["hr_admin"]["Employees"].operations().len(), 4);
        assert_eq!(config.session.max_lifetime.0, Duration::from_secs(43200));
        assert_eq!(config.throttle.user_failures, 100);
        let proxies: Vec<String> =
            config.network.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]);
    }

    #[test]
    fn a_bad_trusted_proxy_is_named() {
        let err = Config::parse("[network]\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(err.contains("10.0.0.0/33") && err.contains("CIDR"), "{err}");
    }

    #[test]
    fn throttle_defaults_follow_the_design() {
        let t = ThrottleConfig::default();
        assert_eq!((t.user_address_failures, t.user_failures, t.ip_failures), (5, 100, 50));
        assert_eq!(t.window.0, Duration::from_secs(900));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("listen = \"x\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.contains("listen_port"), "{err}");
        let err = Config::parse("[session]\nidle = \"3m\"\n").unwrap_err();
        assert!(err.contains("idle"), "{err}");
    }

    #[test]
    fn the_pool_size_defaults_to_twice_the_cores_and_at_least_four() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let config = Config::parse("").unwrap();
        assert_eq!(config.database_pool_size as usize, (2 * cores).max(4));
        assert_eq!(Config::default().database_pool_size, config.database_pool_size);
        assert_eq!(Config::parse("database_pool_size = 7").unwrap().database_pool_size, 7);
        let err = Config::parse("database_pool_size = 0").unwrap_err();
        assert!(err.contains("database_pool_size must be at least 1"), "{err}");
        let err = Config::parse("database_pool_size = -3").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn the_listener_connects_to_database_listen_url_when_set() {
        let config = Config::parse("database = \"postgres://pgbouncer/app\"").unwrap();
        assert_eq!(config.listen_url(), "postgres://pgbouncer/app");
        let config = Config::parse(
            "database = \"postgres://pgbouncer/app\"\ndatabase_listen_url = \"postgres://u:pw@db/app\"",
        )
        .unwrap();
        assert_eq!(config.listen_url(), "postgres://u:pw@db/app");
        assert!(!format!("{config:?}").contains("pw@"), "the listen URL's password shows in Debug");
    }

    #[test]
    fn database_passwords_are_redacted_in_debug() {
        let url = DatabaseUrl("postgres://app:hunter2@db/x".into());
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db/x"));
    }
}
