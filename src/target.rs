//! Which database a command is aimed at, resolved the way libpq resolves it,
//! and how to hand that same connection to the real libpq tools.
//!
//! psql, pg_dump and pg_restore all pass `host`, `port`, `user` and then
//! `dbname` to libpq with `expand_dbname`, so a conninfo string or URI in
//! the dbname position overrides `-h/-p/-U`, and anything still unset comes
//! from the `PG*` environment and then the built-in defaults. [`Target`]
//! repeats that resolution for display and metadata, and gives children one
//! `-d` conninfo holding exactly the explicitly given settings, minus the
//! password, which travels as `PGPASSWORD` in the child's environment only.
//! The environment itself is inherited, so `.pgpass`, service files, SSL
//! settings and client certificates keep working as the user set them up.
//!
//! Also here: SQLAlchemy URL to libpq conversion (for alembic) and
//! [`redact`], which removes passwords from free text before it is stored.

use std::fmt;
use std::process::Command;

use crate::{Context, Error};

/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// Where Debian's libpq looks for the server socket when no host is given.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The connection options psql takes, to flatten into a subcommand.
///
/// `-h` is the host here, as in every PostgreSQL tool, so commands that
/// flatten this must turn off clap's `-h` help flag (`--help` still works).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Database server host or socket directory.
    #[arg(short = 'h', long = "host", value_name = "HOSTNAME")]
    pub host: Option<String>,
    /// Database server port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<String>,
    /// Database user name.
    #[arg(short = 'U', long = "username", value_name = "USERNAME")]
    pub user: Option<String>,
    /// Database name, conninfo string ("host=... dbname=...") or URI (postgresql://...).
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME")]
    pub dbname: Option<String>,
}

impl ConnectionArgs {
    /// Folds psql-style positional arguments (`[DBNAME [USERNAME]]`) in; an
    /// option given with a flag wins, as in psql.
    pub fn with_positional(mut self, positional: &[String]) -> Result<Self, Error> {
        let mut rest = positional.iter();
        if let Some(db) = rest.next() {
            self.dbname.get_or_insert_with(|| db.clone());
        }
        if let Some(user) = rest.next() {
            self.user.get_or_insert_with(|| user.clone());
        }
        if let Some(extra) = rest.next() {
            return Err(Error::Usage(format!(
                "unexpected argument {extra:?}: the connection takes at most DBNAME and USERNAME"
            )));
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.port.is_none() && self.user.is_none() && self.dbname.is_none()
    }
}

/// A resolved database: where it is, who connects, and the exact settings
/// to pass on to libpq tools.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name, address or socket directory (possibly a comma list).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// The explicitly given libpq settings, in order, password excluded.
    explicit: Vec<(String, String)>,
    /// A password found in a URI or conninfo string; never printed.
    password: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("explicit", &self.explicit)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database \"{}\" on {}:{} as {}",
            self.dbname, self.host, self.port, self.user
        )
    }
}

/// Facts the server reports about a live connection; they replace the
/// locally resolved values, which cannot see into service files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub dbname: String,
    pub user: String,
    pub port: u16,
    /// The server's address for TCP connections; `None` over a socket.
    pub address: Option<String>,
}

impl Target {
    /// Resolves `args` against the environment of `ctx`, as libpq would.
    pub fn resolve(args: &ConnectionArgs, ctx: &Context) -> Result<Target, Error> {
        let env = |name: &str| {
            ctx.var(name)
                .and_then(|v| v.to_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Target::resolve_with(args, env)
    }

    /// Resolution with the environment as a function, for tests.
    pub fn resolve_with(
        args: &ConnectionArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, Error> {
        let mut explicit: Vec<(String, String)> = Vec::new();
        for (key, value) in [
            ("host", &args.host),
            ("port", &args.port),
            ("user", &args.user),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                set(&mut explicit, key, v);
            }
        }
        if let Some(db) = args.dbname.as_ref().filter(|v| !v.is_empty()) {
            if is_connection_string(db) {
                // Later keywords override earlier ones, so the expanded
                // dbname's settings win over -h/-p/-U, exactly as in psql.
                for (k, v) in parse_connection_string(db)? {
                    set(&mut explicit, &k, &v);
                }
            } else {
                set(&mut explicit, "dbname", db);
            }
        }
        let password = take(&mut explicit, "password");
        let get = |key: &str, var: &str| lookup(&explicit, key).map(str::to_owned).or(env(var));

        let user = get("user", "PGUSER").unwrap_or_else(os_user);
        let host = get("host", "PGHOST")
            .or_else(|| get("hostaddr", "PGHOSTADDR"))
            .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_owned());
        let port_text = get("port", "PGPORT");
        let port = match port_text.as_deref() {
            None => DEFAULT_PORT,
            // A comma list of ports goes with a list of hosts; show the first.
            Some(p) => p
                .split(',')
                .next()
                .unwrap_or(p)
                .trim()
                .parse()
                .map_err(|_| {
                    Error::Usage(format!("invalid port {p:?}: expected a number like 5432"))
                })?,
        };
        let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
        Ok(Target {
            host,
            port,
            user,
            dbname,
            explicit,
            password,
        })
    }

    /// The settings of a live connection (libpq's `PQconninfo`), password
    /// included: what psql is connected to right now, with every option
    /// (SSL, service, ...) it used. The password is kept out of `explicit`
    /// and goes to children only through `PGPASSWORD`.
    pub fn from_settings(
        settings: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, Error> {
        let mut explicit: Vec<(String, String)> = Vec::new();
        for (k, v) in settings.iter().filter(|(_, v)| !v.is_empty()) {
            set(&mut explicit, k, v);
        }
        let password = take(&mut explicit, "password");
        let mut target = Target::resolve_with(&ConnectionArgs::default(), |_| None)?;
        let get = |key: &str, var: &str| lookup(&explicit, key).map(str::to_owned).or(env(var));
        target.user = get("user", "PGUSER").unwrap_or_else(os_user);
        target.host = get("host", "PGHOST")
            .or_else(|| get("hostaddr", "PGHOSTADDR"))
            .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_owned());
        if let Some(p) = get("port", "PGPORT") {
            target.port = p
                .split(',')
                .next()
                .unwrap_or(&p)
                .trim()
                .parse()
                .map_err(|_| Error::Usage(format!("invalid port {p:?}")))?;
        }
        target.dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| target.user.clone());
        target.explicit = explicit;
        target.password = password;
        Ok(target)
    }

    /// A target naming every setting explicitly, e.g. from backup metadata.
    pub fn explicit(host: &str, port: u16, user: &str, dbname: &str) -> Target {
        let explicit = vec![
            ("host".to_owned(), host.to_owned()),
            ("port".to_owned(), port.to_string()),
            ("user".to_owned(), user.to_owned()),
            ("dbname".to_owned(), dbname.to_owned()),
        ];
        Target {
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            dbname: dbname.to_owned(),
            explicit,
            password: None,
        }
    }

    /// The same server and credentials, another database (e.g. `postgres`
    /// for maintenance queries).
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut other = self.clone();
        set(&mut other.explicit, "dbname", dbname);
        other.dbname = dbname.to_owned();
        other
    }

    /// Adopts what the server reported about the live connection.
    pub fn adopt(&mut self, id: &ServerIdentity) {
        self.dbname.clone_from(&id.dbname);
        self.user.clone_from(&id.user);
        self.port = id.port;
        if let Some(addr) = &id.address
            && lookup(&self.explicit, "host").is_none()
            && self.host == DEFAULT_SOCKET_DIR
        {
            self.host.clone_from(addr);
        }
    }

    /// True when a password came with the connection string.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The explicitly given settings as one conninfo string, password left
    /// out; empty when nothing was given (the environment decides).
    pub fn conninfo(&self) -> String {
        self.explicit
            .iter()
            .map(|(k, v)| format!("{k}={}", quote_conninfo_value(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Arguments that point a libpq tool (psql, pg_dump, pg_restore) at this
    /// target: `-d <conninfo>`, or nothing when the environment decides.
    pub fn libpq_args(&self) -> Vec<String> {
        let conninfo = self.conninfo();
        if conninfo.is_empty() {
            Vec::new()
        } else {
            vec!["-d".to_owned(), conninfo]
        }
    }

    /// Puts the password, if any, where libpq reads it and nothing else can
    /// see it: the child's environment, never its argv.
    pub fn apply_env(&self, cmd: &mut Command) {
        if let Some(password) = &self.password {
            cmd.env("PGPASSWORD", password);
        }
    }
}

fn lookup<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn set(params: &mut Vec<(String, String)>, key: &str, value: &str) {
    match params.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_owned(),
        None => params.push((key.to_owned(), value.to_owned())),
    }
}

fn take(params: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let at = params.iter().position(|(k, _)| k == key)?;
    Some(params.remove(at).1)
}

/// The login name of the effective user, libpq's default user name.
fn os_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "postgres".to_owned())
}

/// libpq treats a dbname holding `=` or starting with a URI scheme as a
/// connection string.
pub fn is_connection_string(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://") || text.contains('=')
}

/// Parses a conninfo string (`key=value ...`) or a URI into keyword/value
/// pairs in order of appearance.
pub fn parse_connection_string(text: &str) -> Result<Vec<(String, String)>, Error> {
    if let Some(rest) = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
    {
        parse_uri(rest)
    } else {
        parse_conninfo(text)
    }
}

fn bad_conn(what: &str) -> Error {
    Error::Usage(format!(
        "invalid connection string: {what}; expected \"host=... dbname=...\" or postgresql://user@host:port/dbname"
    ))
}

fn parse_conninfo(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad_conn(&format!("missing \"=\" after {key:?}")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(bad_conn("unterminated quoted value")),
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad_conn("unterminated quoted value")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad_conn("bad percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_conn("percent-encoding is not UTF-8"))
}

/// `[user[:password]@][host][:port][,...][/dbname][?param=value&...]`, the
/// part after the scheme.
fn parse_uri(rest: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = Vec::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, dbname) = match main.split_once('/') {
        Some((a, d)) => (a, Some(d)),
        None => (main, None),
    };
    let hostlist = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                out.push(("user".into(), percent_decode(user)?));
            }
            if let Some(p) = password {
                out.push(("password".into(), percent_decode(p)?));
            }
            hosts
        }
        None => authority,
    };
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for spec in hostlist.split(',').filter(|s| !s.is_empty()) {
        let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad_conn("unterminated [IPv6 address]"))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match spec.rsplit_once(':') {
                Some((h, p)) => (percent_decode(h)?, Some(p)),
                None => (percent_decode(spec)?, None),
            }
        };
        hosts.push(host);
        ports.push(port.unwrap_or("").to_owned());
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        out.push(("host".into(), hosts.join(",")));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.push(("port".into(), ports.join(",")));
    }
    if let Some(db) = dbname.filter(|d| !d.is_empty()) {
        out.push(("dbname".into(), percent_decode(db)?));
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad_conn(&format!("query parameter {pair:?} has no value")))?;
        let key = percent_decode(k)?;
        let value = percent_decode(v)?;
        match out.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Quotes a conninfo value when it needs it (empty, spaces, quotes, backslashes).
fn quote_conninfo_value(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// libpq keywords a SQLAlchemy URL's query may carry through unchanged.
const LIBPQ_QUERY_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// Converts a SQLAlchemy URL (`postgresql+psycopg2://`, `+psycopg`,
/// `+asyncpg`, `+pg8000`, or no driver) to a libpq URI psql and pg_dump
/// accept. Query parameters that are libpq keywords pass through; asyncpg's
/// and pg8000's `ssl`/`sslmode` spellings become `sslmode`; driver-only
/// options are dropped because libpq would reject them.
pub fn sqlalchemy_to_libpq(url: &str) -> Result<String, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::Usage(format!(
            "{:?} is not a database URL; expected postgresql+driver://user@host/dbname",
            redact(url)
        ))
    })?;
    let dialect = scheme.split('+').next().unwrap_or(scheme);
    if dialect != "postgresql" && dialect != "postgres" {
        return Err(Error::Usage(format!(
            "{scheme}:// is not a PostgreSQL URL; dbguard guards PostgreSQL databases only"
        )));
    }
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let mut kept = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            // asyncpg: ssl=require|disable|prefer|verify-full..., or true/false.
            "ssl" => {
                let mode = match v {
                    "true" | "1" | "True" => "require",
                    "false" | "0" | "False" => "disable",
                    other => other,
                };
                kept.push(format!("sslmode={mode}"));
            }
            k if LIBPQ_QUERY_KEYWORDS.contains(&k) => kept.push(pair.to_owned()),
            _ => {}
        }
    }
    let mut out = format!("postgresql://{main}");
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Ok(out)
}

/// Removes passwords from free text (a command line, an error message)
/// before it is printed or stored: the password part of URIs, and the
/// values of `password=` and `PGPASSWORD=`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || c == '/' || c == '?' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                out.push_str(user);
                out.push('@');
                out.push_str(hosts);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    redact_assignments(&out)
}

/// Blanks the value after `password=` / `PGPASSWORD=` (any case), quoted or not.
fn redact_assignments(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = lower[i..].find("password") {
        let start = i + found;
        let mut j = start + "password".len();
        let bytes = text.as_bytes();
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            out.push_str(&text[i..start + "password".len()]);
            i = start + "password".len();
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        out.push_str(&text[i..j]);
        let end = match bytes.get(j) {
            Some(&q @ (b'\'' | b'"')) => text[j + 1..]
                .find(q as char)
                .map_or(text.len(), |e| j + 1 + e + 1),
            _ => text[j..]
                .find(|c: char| c.is_whitespace() || c == '&' || c == '"' || c == '\'')
                .map_or(text.len(), |e| j + e),
        };
        out.push_str("***");
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(h: Option<&str>, p: Option<&str>, u: Option<&str>, d: Option<&str>) -> ConnectionArgs {
        ConnectionArgs {
            host: h.map(Into::into),
            port: p.map(Into::into),
            user: u.map(Into::into),
            dbname: d.map(Into::into),
        }
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_then_environment_then_defaults() {
        let t = Target::resolve_with(
            &args(Some("db.example"), None, None, Some("shop")),
            env_of(&[
                ("PGPORT", "5433"),
                ("PGUSER", "alice"),
                ("PGHOST", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("db.example", 5433, "alice", "shop")
        );
        assert_eq!(t.libpq_args(), ["-d", "host=db.example dbname=shop"]);

        let t =
            Target::resolve_with(&ConnectionArgs::default(), env_of(&[("PGUSER", "bob")])).unwrap();
        assert_eq!(t.host, DEFAULT_SOCKET_DIR);
        assert_eq!(t.port, DEFAULT_PORT);
        assert_eq!(t.dbname, "bob", "dbname defaults to the user name");
        assert!(t.libpq_args().is_empty(), "the environment decides");
    }

    #[test]
    fn uri_in_dbname_position_overrides_flags_and_hides_its_password() {
        let t = Target::resolve_with(
            &args(
                Some("flaghost"),
                Some("1"),
                None,
                Some("postgresql://app:s%40cret@[::1]:6543/orders?sslmode=require&application_name=x"),
            ),
            env_of(&[]),
        )
        .unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, 6543);
        assert_eq!(t.user, "app");
        assert_eq!(t.dbname, "orders");
        assert!(t.has_password());
        let argv = t.libpq_args().join(" ");
        assert!(
            !argv.contains("s@cret") && !argv.contains("s%40cret"),
            "{argv}"
        );
        assert_eq!(
            t.conninfo(),
            "host=::1 port=6543 user=app dbname=orders sslmode=require application_name=x"
        );
        assert!(!format!("{t:?} {t}").contains("cret"));
        let mut cmd = Command::new("true");
        t.apply_env(&mut cmd);
        let pw: Vec<_> = cmd.get_envs().collect();
        assert_eq!(pw.len(), 1);
        assert_eq!(pw[0].1.unwrap(), "s@cret");
    }

    #[test]
    fn conninfo_strings_with_quotes_and_multiple_hosts() {
        let t = Target::resolve_with(
            &args(
                None,
                None,
                Some("flaguser"),
                Some(r"host=a,b port=5432,5433 dbname='my db' password='it\'s' user=u"),
            ),
            env_of(&[]),
        )
        .unwrap();
        assert_eq!(t.host, "a,b");
        assert_eq!(t.port, 5432);
        assert_eq!(t.dbname, "my db");
        assert_eq!(t.user, "u");
        assert_eq!(
            t.conninfo(),
            "user=u host=a,b port=5432,5433 dbname='my db'"
        );
        assert!(parse_connection_string("host").is_err());
        assert!(parse_connection_string("dbname='open").is_err());
        assert!(Target::resolve_with(&args(None, Some("abc"), None, None), env_of(&[])).is_err());
    }

    #[test]
    fn uri_socket_directory_and_query_host() {
        let pairs = parse_connection_string("postgresql://%2Ftmp%2Fsock:5444/db").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("host".to_string(), "/tmp/sock".to_string()),
                ("port".to_string(), "5444".to_string()),
                ("dbname".to_string(), "db".to_string())
            ]
        );
        let pairs = parse_connection_string("postgres:///db?host=/run/pg").unwrap();
        assert_eq!(pairs[1], ("host".to_string(), "/run/pg".to_string()));
    }

    #[test]
    fn sqlalchemy_urls_become_libpq_uris() {
        for (input, expected) in [
            (
                "postgresql+psycopg2://u:p@h:5433/db?sslmode=require",
                "postgresql://u:p@h:5433/db?sslmode=require",
            ),
            ("postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
            (
                "postgresql+asyncpg://u@h/db?ssl=require&prepared_statement_cache_size=0",
                "postgresql://u@h/db?sslmode=require",
            ),
            (
                "postgresql+pg8000://u@h/db?ssl=true",
                "postgresql://u@h/db?sslmode=require",
            ),
            ("postgres://u@/db?host=/tmp", "postgresql://u@/db?host=/tmp"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
        ] {
            assert_eq!(sqlalchemy_to_libpq(input).unwrap(), expected, "{input}");
        }
        assert!(sqlalchemy_to_libpq("mysql+pymysql://u@h/db").is_err());
        let err = sqlalchemy_to_libpq("not a url with password=x").unwrap_err();
        assert!(!err.to_string().contains("password=x"));
    }

    #[test]
    fn redact_removes_passwords_only() {
        assert_eq!(
            redact("psql postgresql://app:hunter2@db:5432/shop -c 'drop table t'"),
            "psql postgresql://app@db:5432/shop -c 'drop table t'"
        );
        assert_eq!(
            redact("psql 'host=h password=hunter2 dbname=x'"),
            "psql 'host=h password=*** dbname=x'"
        );
        assert_eq!(
            redact("PGPASSWORD=hunter2 alembic downgrade -1"),
            "PGPASSWORD=*** alembic downgrade -1"
        );
        assert_eq!(redact("password = 'a b' end"), "password = *** end");
        assert_eq!(
            redact("no secrets, password policy"),
            "no secrets, password policy"
        );
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
    }
}
