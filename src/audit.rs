//! The audit log: one JSON object per line in `audit.jsonl` inside the
//! backup directory, for every guarded decision and every bypass. It says
//! afterwards who ran what against which database, what dbguard found and
//! decided (`Outcome`), and which backup protects it. Passwords never reach it: argv
//! goes through `target::redact`, the target is host/port/user/database.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Context;
use crate::sql::Finding;
use crate::target::{Target, redact};

/// The log's file name inside the backup directory.
pub const FILE_NAME: &str = "audit.jsonl";

/// Findings recorded per line; the rest are only counted, so one line
/// stays small whatever the script.
const MAX_FINDINGS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339, local time with offset.
    pub time: String,
    pub user: String,
    pub tool: String,
    /// The command line, passwords removed.
    pub argv: Vec<String>,
    pub target: Option<TargetRecord>,
    pub findings: Vec<FindingRecord>,
    /// Findings beyond those listed.
    pub findings_omitted: u64,
    /// What dbguard did; serialised under its historical key `decision`
    /// (see `Outcome` for the values).
    pub decision: Outcome,
    /// Why, in one line (the refusal reason, the policy, ...).
    pub detail: Option<String>,
    pub backups: Vec<BackupRecord>,
    /// The pgBackRest restore points among `backups`: what a restore of
    /// each replays WAL up to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_points: Vec<RestorePointRecord>,
    /// `DBGUARD_YES` was set (no prompt).
    pub yes: bool,
    /// `DBGUARD_BYPASS` was set (no analysis).
    pub bypass: bool,
}

/// What became of one guarded invocation, as the audit log's `decision`
/// field spells it (snake_case strings, stable: outside tools read them):
///
/// - `"pass"`: destructive on its face, but nothing to protect (the
///   database a `DROP DATABASE` or `dropdb` names does not exist); the
///   tool ran.
/// - `"policy_off"`: the database's policy is `off`; the tool ran
///   unguarded.
/// - `"confirmed"`: the person typed the word (or `DBGUARD_YES` was set),
///   the backups listed beside it were complete; the tool ran.
/// - `"refused"`: dbguard stopped it (no terminal, a wrong answer, no
///   possible backup, an unknown target...); `detail` says why, passwords
///   removed. The tool did not run (exit 77).
/// - `"bypass"`: `DBGUARD_BYPASS` was set; nothing was analysed.
/// - `"migrated"`: `dbguard migrate` backed up and alembic's upgrade
///   succeeded.
/// - `"migration_failed"`: `dbguard migrate` backed up and alembic's
///   upgrade failed or was killed; `detail` has its exit status.
/// - `"verification_failed"`: `dbguard migrate --verify-cmd` migrated, but
///   the project's checks failed; no post-migration backup was taken.
/// - `"restored"` / `"restore_failed"`: `dbguard restore` brought a backup
///   back / tried and changed nothing (`detail` says why).
/// - `"pruned"`: retention removed a backup (or an orphaned data file);
///   `backups` names it and `detail` the rule.
/// - `"drilled"`: `dbguard drill` restored a backup into a scratch
///   database (or cluster) and it matched; `detail` says what was compared.
/// - `"drill_failed"`: `dbguard drill` found a backup that does not
///   restore, or whose restored copy differs; `detail` names the table and
///   what was expected and found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    PolicyOff,
    Confirmed,
    Refused,
    Bypass,
    Migrated,
    MigrationFailed,
    VerificationFailed,
    Restored,
    RestoreFailed,
    Pruned,
    Drilled,
    DrillFailed,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetRecord {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl From<&Target> for TargetRecord {
    fn from(t: &Target) -> Self {
        TargetRecord {
            host: t.host.clone(),
            port: t.port,
            user: t.user.clone(),
            database: t.dbname.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingRecord {
    pub path: String,
    pub line: u64,
    pub kind: String,
    pub objects: Vec<String>,
    pub statement: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupRecord {
    pub id: String,
    pub database: String,
    pub sha256: String,
    pub path: PathBuf,
}

/// A restore point that protects an operation (pgBackRest engine).
#[derive(Debug, Clone, Serialize)]
pub struct RestorePointRecord {
    /// The backup whose sidecar records the point.
    pub backup: String,
    pub stanza: String,
    /// The name `pgbackrest restore --type=name --target=` takes.
    pub name: String,
    pub lsn: String,
    pub timeline: u32,
    /// RFC 3339.
    pub time: String,
}

impl Record {
    /// A record for `ctx`'s command line; `decision` is what becomes of
    /// it unless a later step says otherwise.
    pub fn new(ctx: &Context, tool: &str, decision: Outcome) -> Record {
        Record {
            time: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            user: os_user(ctx),
            tool: tool.to_owned(),
            argv: ctx
                .args
                .iter()
                .map(|a| redact(&a.to_string_lossy()))
                .collect(),
            target: None,
            findings: Vec::new(),
            findings_omitted: 0,
            decision,
            detail: None,
            backups: Vec::new(),
            restore_points: Vec::new(),
            yes: ctx.flag(crate::confirm::YES_ENV),
            bypass: ctx.flag(BYPASS_ENV),
        }
    }

    pub fn with_findings(mut self, findings: &[Finding], omitted: u64) -> Record {
        self.findings = findings
            .iter()
            .take(MAX_FINDINGS)
            .map(|f| FindingRecord {
                path: f.path.clone(),
                line: f.line,
                kind: f.kind.as_str().to_owned(),
                objects: f.objects.clone(),
                statement: redact(&f.statement),
            })
            .collect();
        self.findings_omitted = omitted + findings.len().saturating_sub(MAX_FINDINGS) as u64;
        self
    }
}

/// The environment switch that turns the guard off for one command.
pub use crate::env::BYPASS as BYPASS_ENV;

/// Who is running this: `USER` or `LOGNAME` from the environment, else the
/// numeric uid. No NSS lookup: it can be slow (LDAP) on the guard's path.
fn os_user(ctx: &Context) -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| ctx.var(v))
        .map(|v| v.to_string_lossy().into_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

/// Appends `record` as one line to the log in `dir` (created 0700 if
/// missing; the file is 0600). One `write` of the whole line with
/// O_APPEND, so concurrent shims never interleave their lines.
pub fn append(dir: &Path, record: &Record) -> io::Result<PathBuf> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join(FILE_NAME);
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(&line)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_private_and_without_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let ctx = Context::for_test(
            &[
                "psql",
                "postgresql://app:s3cret@db/app",
                "-c",
                "drop table t",
            ],
            &[("USER", "ann"), ("DBGUARD_YES", "1")],
        );
        let findings = crate::sql::scan_str("drop table t;").findings;
        let record = Record::new(&ctx, "psql", Outcome::Confirmed).with_findings(&findings, 0);
        append(&store, &record).unwrap();
        let path = append(&store, &record).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("s3cret"), "{text}");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["user"], "ann");
        assert_eq!(first["decision"], "confirmed");
        assert_eq!(first["yes"], true);
        assert_eq!(first["findings"][0]["kind"], "drop_table");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&store), 0o700);
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::Outcome;

    /// The values documented on `Outcome` are the ones written.
    #[test]
    fn outcomes_serialise_as_documented() {
        let all = [
            (Outcome::Pass, "pass"),
            (Outcome::PolicyOff, "policy_off"),
            (Outcome::Confirmed, "confirmed"),
            (Outcome::Refused, "refused"),
            (Outcome::Bypass, "bypass"),
            (Outcome::Migrated, "migrated"),
            (Outcome::MigrationFailed, "migration_failed"),
            (Outcome::VerificationFailed, "verification_failed"),
            (Outcome::Pruned, "pruned"),
            (Outcome::Drilled, "drilled"),
            (Outcome::DrillFailed, "drill_failed"),
        ];
        let doc = include_str!("audit.rs");
        for (outcome, text) in all {
            assert_eq!(serde_json::to_value(outcome).unwrap(), text);
            assert!(
                doc.contains(&format!("/// - `\"{text}\"`")),
                "{text} documented"
            );
        }
    }
}
