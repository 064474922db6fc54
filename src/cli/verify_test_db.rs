//! `dbguard verify-test-db [URL]`: the check that a test suite is about to
//! run against a throwaway database and never against one that matters.
//! The URL (or `TEST_DATABASE_URL`) must be reachable, its policy must be
//! `off`, and it must not be the same database as any concretely named
//! `protect`/`confirm` database or `DATABASE_URL`. "Same" is decided by the
//! server's identity (`system_identifier` from `pg_control_system()`) plus
//! the database name, so `localhost` against `127.0.0.1`, a second port or a
//! socket path cannot make one database look like two.

use std::io::Write;

use crate::config::{Config, Policy};
use crate::error::exit;
use crate::pgtools::{PgTools, identify};
use crate::target::{ConnectionArgs, Target, redact};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The test database (libpq URI or conninfo); default: TEST_DATABASE_URL.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let url = match args.url.or_else(|| env(ctx, "TEST_DATABASE_URL")) {
        Some(u) => u,
        None => {
            return Err(Error::Usage(
                "no test database: pass its URL or set TEST_DATABASE_URL".into(),
            ));
        }
    };
    let config = Config::load(ctx)?;
    let tools = PgTools::resolve(ctx)?;
    let test = resolve(&url, ctx)?;
    let shown = redact(&url);
    let mut out = std::io::stdout().lock();
    let fail = |why: String| Error::Failed {
        message: format!("{shown} is not a safe test database: {why}"),
        code: exit::FOUND,
    };

    let policy = config.policy_for(&test);
    if policy != Policy::Off {
        return Err(fail(format!(
            "its policy is {}, not off; add a [[database]] entry with policy = \"off\" for it (see `dbguard config`)",
            super::config::policy_name(policy)
        )));
    }
    let id = identify(&tools, &test).map_err(|e| fail(format!("cannot identify it ({e})")))?;
    let _ = writeln!(
        out,
        "test database: \"{}\", server {} (reachable, policy off)",
        id.database, id.system_identifier
    );

    for (label, other) in guarded_databases(&config, ctx) {
        match identify(&tools, &other) {
            Ok(theirs) if theirs == id => {
                return Err(fail(format!(
                    "it is the same database as {label} (server {}, database \"{}\")",
                    id.system_identifier, id.database
                )));
            }
            Ok(_) => {
                let _ = writeln!(out, "not the same as {label}");
            }
            Err(e) => {
                let _ = writeln!(out, "not the same as {label} (unreachable: {e})");
            }
        }
    }
    let _ = writeln!(out, "OK: safe to use for tests");
    Ok(exit::OK)
}

fn env(ctx: &Context, name: &str) -> Option<String> {
    ctx.var(name)
        .and_then(|v| v.to_str())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn resolve(url: &str, ctx: &Context) -> Result<Target, Error> {
    Target::resolve(
        &ConnectionArgs {
            dbname: Some(url.to_owned()),
            ..ConnectionArgs::default()
        },
        ctx,
    )
}

/// The databases that must never be the test database: every `protect` or
/// `confirm` rule naming one database exactly (patterns name none), and
/// `DATABASE_URL` unless its policy is off.
fn guarded_databases(config: &Config, ctx: &Context) -> Vec<(String, Target)> {
    let mut out = Vec::new();
    for rule in &config.file.databases {
        let Some(dbname) = rule.dbname.as_deref() else {
            continue;
        };
        if rule.policy == Policy::Off || dbname.contains(['*', '?']) {
            continue;
        }
        let host_is_pattern = rule.host.as_deref().is_some_and(|h| h.contains(['*', '?']));
        let args = ConnectionArgs {
            host: rule.host.clone().filter(|_| !host_is_pattern),
            port: rule.port.map(|p| p.to_string()),
            user: None,
            dbname: Some(dbname.to_owned()),
        };
        if let Ok(t) = Target::resolve(&args, ctx) {
            out.push((
                format!(
                    "the {} database \"{dbname}\"",
                    super::config::policy_name(rule.policy)
                ),
                t,
            ));
        }
    }
    if let Some(url) = env(ctx, "DATABASE_URL")
        && let Ok(t) = resolve(&url, ctx)
        && config.policy_for(&t) != Policy::Off
    {
        out.push((format!("DATABASE_URL ({})", redact(&url)), t));
    }
    out
}
