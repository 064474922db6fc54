//! An alembic project as its files show it, without running Python: the
//! version directories alembic's ini file names, the revision files in
//! them, whether an upgrade applies nothing at all, and the revisions a
//! run goes through with their destructive operations when alembic cannot
//! render it as a whole (revision by revision, statically where even that
//! fails).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::Context;
use crate::alembic::args::AlembicArgs;
use crate::alembic::check::MigrationCheck;
use crate::alembic::render::{Direction, render_sql};
use crate::alembic::script_dir::{self, ScriptDir};
use crate::alembic::url;

/// The revisions a run goes through and their destructive operations,
/// when alembic could not render the run as a whole (`why`): each
/// revision rendered on its own, and read from its file (its `upgrade()`
/// or `downgrade()` body) only when that fails too. `Err` when the
/// revision files do not show which revisions the run goes through.
pub fn per_revision(
    ctx: &Context,
    args: &AlembicArgs,
    alembic: &Path,
    direction: Direction,
    current: &[String],
    target_revision: &str,
    why: &str,
) -> Result<MigrationCheck, String> {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let scripts = project_scripts(ctx, args, &cwd);
    let path = match direction {
        Direction::Upgrade => scripts.upgrade_path(current, target_revision)?,
        Direction::Downgrade => scripts.downgrade_path(current, target_revision)?,
    };
    let range = format!("{}:{target_revision}", current.join(","));
    Ok(MigrationCheck::per_revision(
        direction,
        &range,
        &path,
        why,
        |one| render_sql(ctx, args, alembic, direction, one),
        |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string(),
    ))
}

/// The project's revision files as read for the upgrade shortcut: the
/// scripts, and whether every `.py` file in the version directories was
/// understood (a file whose `revision` could not be read might be a head
/// the graph does not know about).
pub struct ProjectRead {
    pub scripts: ScriptDir,
    pub complete: bool,
}

pub fn read_project(ctx: &Context, args: &AlembicArgs) -> ProjectRead {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let ini = url::ini_path(args, ctx.var("ALEMBIC_CONFIG"), &cwd);
    // Nested version directories are not read here.
    let section = url::ini_section(args);
    let recursive =
        std::fs::read_to_string(&ini).is_ok_and(|t| script_dir::recursive(&t, &section));
    let locations = project_locations(ctx, args, &cwd);
    let files = migration_files(&locations)
        .into_iter()
        .filter(|p| !p.ends_with("__init__.py"))
        .count();
    let scripts = ScriptDir::read(&locations);
    ProjectRead {
        complete: !recursive && !locations.is_empty() && files == scripts.scripts.len(),
        scripts,
    }
}

/// True only when the revision files show for certain that `upgrade
/// target` from `current` applies nothing: every file understood, every
/// current revision known, the target resolved, and all of it already in
/// the current revisions' ancestry. Anything uncertain is `false` (render
/// and scan as usual).
pub fn nothing_to_apply(project: &ProjectRead, current: &[String], target: &str) -> bool {
    if !project.complete || current.is_empty() || target.starts_with('+') {
        return false;
    }
    if !current.iter().all(|r| project.scripts.get(r).is_some()) {
        return false;
    }
    match project.scripts.resolve(target) {
        Ok(to) if !to.is_empty() => project
            .scripts
            .upgrade_path(current, target)
            .is_ok_and(|path| path.is_empty()),
        _ => false,
    }
}

/// The project's revision files, from the ini file alembic will read.
pub fn project_scripts(ctx: &Context, args: &AlembicArgs, cwd: &Path) -> ScriptDir {
    ScriptDir::read(&project_locations(ctx, args, cwd))
}

/// The directories alembic keeps revision files in, from its ini file;
/// empty when the file cannot be read.
pub fn project_locations(ctx: &Context, args: &AlembicArgs, cwd: &Path) -> Vec<PathBuf> {
    let ini = url::ini_path(args, ctx.var("ALEMBIC_CONFIG"), cwd);
    let Ok(text) = std::fs::read_to_string(&ini) else {
        return Vec::new();
    };
    let section = url::ini_section(args);
    script_dir::version_locations(&text, &ini, &section, cwd)
}

/// The `*.py` files in the version directories.
pub fn migration_files(locations: &[PathBuf]) -> BTreeSet<PathBuf> {
    locations
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_certain_graph_skips_the_render() {
        use crate::alembic::script_dir::Script;
        let script = |rev: &str, down: &[&str]| Script {
            revision: rev.into(),
            down: down.iter().map(|d| (*d).to_owned()).collect(),
            message: None,
            path: PathBuf::from(format!("{rev}.py")),
        };
        let project = ProjectRead {
            scripts: ScriptDir {
                scripts: vec![script("a", &[]), script("b", &["a"])],
            },
            complete: true,
        };
        let at = |r: &str| vec![r.to_owned()];
        assert!(nothing_to_apply(&project, &at("b"), "head"));
        assert!(nothing_to_apply(&project, &at("b"), "heads"));
        assert!(nothing_to_apply(&project, &at("b"), "a"));
        assert!(!nothing_to_apply(&project, &at("a"), "head"));
        assert!(
            !nothing_to_apply(&project, &[], "head"),
            "nothing applied yet"
        );
        assert!(
            !nothing_to_apply(&project, &at("zz"), "head"),
            "unknown current"
        );
        assert!(
            !nothing_to_apply(&project, &at("b"), "nope"),
            "unknown target"
        );
        assert!(!nothing_to_apply(&project, &at("b"), "+1"));
        let partial = ProjectRead {
            complete: false,
            ..project
        };
        assert!(
            !nothing_to_apply(&partial, &at("b"), "head"),
            "a file not understood"
        );
        let empty = ProjectRead {
            scripts: ScriptDir::default(),
            complete: true,
        };
        assert!(!nothing_to_apply(&empty, &at("b"), "head"));
    }
}
