//! An alembic script directory read as text: where the revision files are
//! (`script_location` and `version_locations` in the ini file), what each
//! declares (`revision`, `down_revision`, the docstring's first line as its
//! message), and walks over the graph they form — which revisions an
//! upgrade applies or a downgrade reverts, merges and branches included.
//!
//! Nothing here imports Python: the walk is a best effort used to list
//! revisions and to scan them statically when alembic's own offline render
//! cannot run. Decisions never rest on it alone.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One revision file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub revision: String,
    /// Parents: none for a base revision, several for a merge.
    pub down: Vec<String>,
    /// The docstring's first line (alembic's `-m` message), if any.
    pub message: Option<String>,
    pub path: PathBuf,
}

/// Every revision found in the version locations.
#[derive(Debug, Clone, Default)]
pub struct ScriptDir {
    pub scripts: Vec<Script>,
}

/// The directories holding revision files, from the ini file's section:
/// `version_locations` when set, else `<script_location>/versions`.
/// `%(here)s` is the ini file's directory; relative paths are taken from
/// the working directory, as alembic takes them.
pub fn version_locations(ini: &str, ini_path: &Path, section: &str, cwd: &Path) -> Vec<PathBuf> {
    let here = ini_path
        .parent()
        .map(|p| cwd.join(p))
        .unwrap_or_else(|| cwd.to_path_buf());
    let values = ini_section(ini, section);
    let expand = |v: &str| {
        let v = v.replace("%(here)s", &here.to_string_lossy());
        cwd.join(v)
    };
    if let Some(list) = values.get("version_locations") {
        let sep: &[char] = match values.get("version_path_separator").map(String::as_str) {
            Some("os") | Some(":") => &[':'],
            Some(";") => &[';'],
            Some("newline") => &['\n'],
            Some("space") => &[' '],
            Some(",") => &[','],
            // Older projects: spaces or commas.
            _ => &[' ', ','],
        };
        return list
            .split(sep)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(expand)
            .collect();
    }
    match values.get("script_location") {
        Some(loc) => vec![expand(loc).join("versions")],
        None => Vec::new(),
    }
}

/// Whether `recursive_version_locations` is on: revision files may then sit
/// in subdirectories, which `ScriptDir::read` does not visit.
pub fn recursive(ini: &str, section: &str) -> bool {
    ini_section(ini, section)
        .get("recursive_version_locations")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// The keys of one ini section, continuation lines joined with newlines,
/// as configparser reads them (without interpolation beyond `%(here)s`).
fn ini_section(ini: &str, section: &str) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut inside = false;
    let mut last: Option<String> = None;
    for line in ini.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            inside = trimmed[1..trimmed.len() - 1].trim() == section;
            last = None;
            continue;
        }
        if !inside || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let (Some(key), false) = (&last, trimmed.is_empty()) {
                let v = out.entry(key.clone()).or_default();
                v.push('\n');
                v.push_str(trimmed);
            }
            continue;
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            let key = k.trim().to_ascii_lowercase();
            out.insert(key.clone(), v.trim().to_owned());
            last = Some(key);
        }
    }
    out
}

/// Reads the declarations of one revision file; `None` when it declares
/// no `revision` (helpers, `__init__.py`).
pub fn parse_script(source: &str, path: &Path) -> Option<Script> {
    let mut revision = None;
    let mut down = None;
    for line in source.lines() {
        // Module level only: the assignment starts the line.
        if let Some(v) = assignment(line, "revision") {
            revision = string_list(v).into_iter().next();
        } else if let Some(v) = assignment(line, "down_revision") {
            down = Some(string_list(v));
        }
    }
    Some(Script {
        revision: revision?,
        down: down.unwrap_or_default(),
        message: docstring_first_line(source),
        path: path.to_path_buf(),
    })
}

/// The value of `name = value` or `name: type = value` at the start of a line.
fn assignment<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix(':') {
        Some(typed) => &typed[typed.find('=')?..],
        None => rest,
    };
    let value = rest.strip_prefix('=')?;
    (!value.starts_with('=')).then_some(value.trim())
}

/// The string literals in a value: `"a"`, `('a', 'b')`, `None` (empty).
fn string_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '#' {
            break;
        }
        if c == '"' || c == '\'' {
            let s: String = chars.by_ref().take_while(|&d| d != c).collect();
            out.push(s);
        }
    }
    out
}

fn docstring_first_line(source: &str) -> Option<String> {
    let body = source.trim_start();
    let body = body.strip_prefix(['r', 'u']).unwrap_or(body);
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| body.starts_with(q))?;
    let rest = &body[quote.len()..];
    let end = rest.find(quote)?;
    rest[..end]
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

impl ScriptDir {
    /// Reads every `*.py` file in `locations` (not recursive, as alembic
    /// reads them unless told otherwise). Unreadable directories are skipped.
    pub fn read(locations: &[PathBuf]) -> ScriptDir {
        let mut scripts = Vec::new();
        for dir in locations {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "py"))
                .collect();
            paths.sort();
            for path in paths {
                if let Ok(text) = std::fs::read_to_string(&path)
                    && let Some(s) = parse_script(&text, &path)
                {
                    scripts.push(s);
                }
            }
        }
        ScriptDir { scripts }
    }

    pub fn get(&self, revision: &str) -> Option<&Script> {
        self.scripts.iter().find(|s| s.revision == revision)
    }

    /// Revisions nobody names as a parent.
    pub fn heads(&self) -> Vec<&Script> {
        self.scripts
            .iter()
            .filter(|s| !self.scripts.iter().any(|o| o.down.contains(&s.revision)))
            .collect()
    }

    /// A revision named fully or by a unique prefix, or `head`/`heads`
    /// (all heads), `base` (none). `Err` says why it cannot be resolved.
    pub fn resolve(&self, name: &str) -> Result<Vec<String>, String> {
        let name = name.rsplit_once('@').map_or(name, |(_, r)| r);
        match name {
            "base" => return Ok(Vec::new()),
            "head" | "heads" => {
                let heads = self.heads();
                if name == "head" && heads.len() > 1 {
                    return Err(format!("several heads ({})", self.join(&heads)));
                }
                return Ok(heads.iter().map(|s| s.revision.clone()).collect());
            }
            _ => {}
        }
        if let Some(s) = self.get(name) {
            return Ok(vec![s.revision.clone()]);
        }
        let matches: Vec<&Script> = self
            .scripts
            .iter()
            .filter(|s| s.revision.starts_with(name))
            .collect();
        match matches.as_slice() {
            [one] => Ok(vec![one.revision.clone()]),
            [] => Err(format!("no revision {name} in the script directory")),
            many => Err(format!("{name} is ambiguous ({})", self.join(many))),
        }
    }

    fn join(&self, scripts: &[&Script]) -> String {
        scripts
            .iter()
            .map(|s| s.revision.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `revs` and everything they descend from.
    fn ancestry(&self, revs: &[String]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = revs.to_vec();
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some(s) = self.get(&r) {
                todo.extend(s.down.iter().cloned());
            }
        }
        seen
    }

    /// The scripts of `set`, parents before children (alembic's upgrade
    /// order); ties by position in the directory, so the order is stable.
    fn ordered(&self, set: &BTreeSet<String>) -> Vec<&Script> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut out: Vec<&Script> = Vec::new();
        let members: Vec<&Script> = self
            .scripts
            .iter()
            .filter(|s| set.contains(&s.revision))
            .collect();
        while out.len() < members.len() {
            let before = out.len();
            for s in &members {
                if done.contains(s.revision.as_str()) {
                    continue;
                }
                let ready = s
                    .down
                    .iter()
                    .all(|d| !set.contains(d) || done.contains(d.as_str()));
                if ready {
                    done.insert(&s.revision);
                    out.push(s);
                }
            }
            if out.len() == before {
                // A cycle: alembic refuses those; list the rest as found.
                out.extend(
                    members
                        .iter()
                        .filter(|s| !done.contains(s.revision.as_str())),
                );
                break;
            }
        }
        out
    }

    /// What `upgrade` from `current` to `target` applies, in order.
    pub fn upgrade_path(&self, current: &[String], target: &str) -> Result<Vec<&Script>, String> {
        let to = match target.strip_prefix('+') {
            Some(n) => self.relative_up(current, n)?,
            None => self.resolve(target)?,
        };
        let mut set = self.ancestry(&to);
        for done in self.ancestry(current) {
            set.remove(&done);
        }
        Ok(self.ordered(&set))
    }

    /// What `downgrade` from `current` to `target` reverts, newest first.
    pub fn downgrade_path(&self, current: &[String], target: &str) -> Result<Vec<&Script>, String> {
        let keep = match target.strip_prefix('-') {
            Some(n) => self.relative_down(current, n)?,
            None => self.resolve(target)?,
        };
        let mut set = self.ancestry(current);
        for kept in self.ancestry(&keep) {
            set.remove(&kept);
        }
        let mut path = self.ordered(&set);
        path.reverse();
        Ok(path)
    }

    fn steps(n: &str) -> Result<usize, String> {
        n.parse()
            .map_err(|_| format!("cannot read the relative revision {n}"))
    }

    /// `-N` from one current revision: N parents down a single line.
    fn relative_down(&self, current: &[String], n: &str) -> Result<Vec<String>, String> {
        let [from] = current else {
            return Err("a relative downgrade needs exactly one current revision".into());
        };
        let mut at = vec![from.clone()];
        for _ in 0..Self::steps(n)? {
            let Some([one]) = at
                .first()
                .and_then(|r| self.get(r))
                .map(|s| s.down.as_slice())
            else {
                match at.first().and_then(|r| self.get(r)) {
                    Some(s) if s.down.is_empty() => {
                        at.clear();
                        break;
                    }
                    _ => return Err("a relative downgrade crosses a merge".into()),
                }
            };
            at = vec![one.clone()];
        }
        Ok(at)
    }

    /// `+N` from the current revision (or base): N children up a single line.
    fn relative_up(&self, current: &[String], n: &str) -> Result<Vec<String>, String> {
        let mut at: Option<String> = match current {
            [] => None,
            [one] => Some(one.clone()),
            _ => return Err("a relative upgrade needs exactly one current revision".into()),
        };
        for _ in 0..Self::steps(n)? {
            let children: Vec<&Script> = self
                .scripts
                .iter()
                .filter(|s| match &at {
                    Some(r) => s.down.contains(r),
                    None => s.down.is_empty(),
                })
                .collect();
            match children.as_slice() {
                [one] => at = Some(one.revision.clone()),
                [] => return Err("a relative upgrade goes past the head".into()),
                _ => return Err("a relative upgrade crosses a branch point".into()),
            }
        }
        Ok(at.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(rev: &str, down: &[&str]) -> Script {
        Script {
            revision: rev.into(),
            down: down.iter().map(|d| (*d).to_owned()).collect(),
            message: Some(format!("message {rev}")),
            path: PathBuf::from(format!("{rev}.py")),
        }
    }

    fn revs(path: &[&Script]) -> Vec<String> {
        path.iter().map(|s| s.revision.clone()).collect()
    }

    fn own(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// a - b - c (branch) and b - d, merged by e.
    fn branched() -> ScriptDir {
        ScriptDir {
            scripts: vec![
                script("a", &[]),
                script("b", &["a"]),
                script("c", &["b"]),
                script("d", &["b"]),
                script("e", &["c", "d"]),
            ],
        }
    }

    #[test]
    fn declarations_are_read_from_the_source() {
        let src = "\"\"\"add users.email\n\nRevision ID: 0002\n\"\"\"\nfrom alembic import op\n\nrevision: str = \"0002\"\ndown_revision: Union[str, None] = '0001'  # parent\nbranch_labels = None\n\ndef upgrade():\n    revision = 'not this'\n";
        let s = parse_script(src, Path::new("v/0002.py")).expect("a revision");
        assert_eq!(s.revision, "0002");
        assert_eq!(s.down, own(&["0001"]));
        assert_eq!(s.message.as_deref(), Some("add users.email"));

        let merge = "revision = 'e'\ndown_revision = ('c', 'd')\n";
        let s = parse_script(merge, Path::new("e.py")).expect("a revision");
        assert_eq!(s.down, own(&["c", "d"]));
        assert_eq!(s.message, None);

        let base = "'''first'''\nrevision = 'a'\ndown_revision = None\n";
        assert!(
            parse_script(base, Path::new("a.py"))
                .expect("rev")
                .down
                .is_empty()
        );
        // `down_revision == x` is a comparison, and a helper has no revision.
        assert!(parse_script("def f():\n    pass\n", Path::new("h.py")).is_none());
        assert_eq!(assignment("revision == 'x'", "revision"), None);
        assert_eq!(assignment("revisions = 'x'", "revision"), None);
    }

    #[test]
    fn locations_follow_the_ini_file() {
        let ini = "[alembic]\nscript_location = %(here)s/migrations\n[other]\nscript_location = other\nversion_locations = a b,c\n";
        let cwd = Path::new("/work");
        assert_eq!(
            version_locations(ini, Path::new("proj/alembic.ini"), "alembic", cwd),
            vec![PathBuf::from("/work/proj/migrations/versions")]
        );
        assert_eq!(
            version_locations(ini, Path::new("alembic.ini"), "other", cwd),
            vec![
                PathBuf::from("/work/a"),
                PathBuf::from("/work/b"),
                PathBuf::from("/work/c")
            ]
        );
        let os_sep = "[alembic]\nversion_path_separator = os\nversion_locations = /x/v1:/x/v2\n";
        assert_eq!(
            version_locations(os_sep, Path::new("alembic.ini"), "alembic", cwd),
            vec![PathBuf::from("/x/v1"), PathBuf::from("/x/v2")]
        );
        assert!(version_locations(ini, Path::new("a.ini"), "missing", cwd).is_empty());
        assert!(!recursive(ini, "alembic"));
        assert!(recursive(
            "[alembic]\nrecursive_version_locations = True\n",
            "alembic"
        ));
        assert!(!recursive(
            "[alembic]\nrecursive_version_locations = false\n",
            "alembic"
        ));
    }

    #[test]
    fn upgrades_apply_what_the_target_needs_parents_first() {
        let dir = branched();
        assert_eq!(
            revs(&dir.upgrade_path(&[], "head").unwrap()),
            own(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(
            revs(&dir.upgrade_path(&own(&["c"]), "head").unwrap()),
            own(&["d", "e"])
        );
        assert_eq!(
            revs(&dir.upgrade_path(&own(&["a"]), "c").unwrap()),
            own(&["b", "c"])
        );
        assert_eq!(
            revs(&dir.upgrade_path(&own(&["a"]), "+1").unwrap()),
            own(&["b"])
        );
        assert!(
            dir.upgrade_path(&own(&["b"]), "+1")
                .unwrap_err()
                .contains("branch point")
        );
        assert_eq!(
            revs(&dir.upgrade_path(&own(&["e"]), "head").unwrap()),
            Vec::<String>::new()
        );
        // Prefixes resolve when unique.
        let dir2 = ScriptDir {
            scripts: vec![script("ab12", &[]), script("ab34", &["ab12"])],
        };
        assert_eq!(
            revs(&dir2.upgrade_path(&[], "ab3").unwrap()),
            own(&["ab12", "ab34"])
        );
        assert!(dir2.resolve("ab").unwrap_err().contains("ambiguous"));
        assert!(dir2.resolve("zz").unwrap_err().contains("no revision zz"));
    }

    #[test]
    fn downgrades_revert_newest_first_across_merges() {
        let dir = branched();
        assert_eq!(
            revs(&dir.downgrade_path(&own(&["e"]), "b").unwrap()),
            own(&["e", "d", "c"])
        );
        assert_eq!(
            revs(&dir.downgrade_path(&own(&["e"]), "base").unwrap()),
            own(&["e", "d", "c", "b", "a"])
        );
        assert_eq!(
            revs(&dir.downgrade_path(&own(&["c"]), "-1").unwrap()),
            own(&["c"])
        );
        assert_eq!(
            revs(&dir.downgrade_path(&own(&["a"]), "-1").unwrap()),
            own(&["a"])
        );
        assert!(
            dir.downgrade_path(&own(&["e"]), "-1")
                .unwrap_err()
                .contains("merge")
        );
        // Two heads applied (before the merge): each branch goes.
        assert_eq!(
            revs(&dir.downgrade_path(&own(&["c", "d"]), "b").unwrap()),
            own(&["d", "c"])
        );
        let heads = dir.heads();
        assert_eq!(revs(&heads), own(&["e"]));
    }
}
