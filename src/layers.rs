//! The layer rule, enforced by reading the sources (see ARCHITECTURE.md).
//!
//! Every top-level module of the crate sits on a layer. A module may import
//! (`crate::…`) only from its own layer or the layers below, and the import
//! graph between top-level modules has no cycle. The bottom layer — the
//! variables, the tool list, the error type, the process context — imports
//! only from itself; SQL analysis, targets, configuration and the PATH walk
//! know nothing of the backup store, the guards or the toolbox.
//!
//! This is a test, not a build step: it reads `src/` as text, which is
//! cheap and needs no tool beyond the compiler.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A new top-level module must be placed here,
/// or the test fails and says so.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["env", "tool", "error", "context"]),
    (
        "analysis",
        &[
            "sql",
            "target",
            "realtool",
            "dump_format",
            "config",
            "confirm",
        ],
    ),
    (
        "services",
        &["pgtools", "audit", "alembic", "backup", "report"],
    ),
    ("operations", &["restore", "shim"]),
    ("toolbox", &["cli"]),
];

/// Imports that break the rule today, each with the change that removes it.
/// Keep this list short and shrinking.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// This module: compiled for tests only, and free to read any file.
const TEST_ONLY: &str = "layers";

/// Names the crate root re-exports, mapped to the module defining them.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("Context", "context"),
    ("Error", "error"),
    ("ARGV0_ENV", "env"),
];

/// Every `.rs` file under `dir`, sorted.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a file belongs to: `src/backup/store.rs` → `backup`,
/// `src/env.rs` → `env`; `None` for the crate root files.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | TEST_ONLY)).then(|| name.to_owned())
}

/// The top-level modules a source text imports through `crate::`, with
/// `use crate::{a::x, b}` groups expanded. Line comments are skipped.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in top_level_items(&group[..end]) {
                found.insert(item);
            }
        } else {
            found.insert(leading_ident(rest));
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
        .into_iter()
        .map(|name| {
            ROOT_REEXPORTS
                .iter()
                .find(|(item, _)| *item == name)
                .map_or(name, |(_, module)| (*module).to_owned())
        })
        .collect()
}

fn leading_ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Index of the `}` closing a group whose `{` was just consumed.
fn matching_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The first path segment of each comma-separated item at depth 0.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => start = true,
            c if start && depth == 0 && !c.is_whitespace() => {
                items.push(leading_ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    items
}

/// Top-level module → the top-level modules it imports (itself excluded).
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        let mut targets = imports(&text);
        targets.remove(&module);
        targets.remove(TEST_ONLY);
        graph.entry(module).or_default().extend(targets);
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn is_known_exception(from: &str, to: &str) -> bool {
    KNOWN_EXCEPTIONS
        .iter()
        .any(|(f, t, _)| *f == from && *t == to)
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_sits_on_a_layer() {
    let unplaced: Vec<_> = import_graph(&src_dir())
        .into_keys()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "place these modules in LAYERS (src/layers.rs) and ARCHITECTURE.md: {unplaced:?}"
    );
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let mut violations = Vec::new();
    for (from, targets) in import_graph(&src_dir()) {
        let Some(own) = layer_of(&from) else { continue };
        for to in targets {
            let above = layer_of(&to).is_none_or(|layer| layer > own);
            if above && !is_known_exception(&from, &to) {
                violations.push(format!(
                    "{from} ({}) imports {to} ({})",
                    LAYERS[own].0,
                    layer_of(&to).map_or("no layer", |l| LAYERS[l].0)
                ));
            }
        }
    }
    assert!(violations.is_empty(), "layer rule broken: {violations:#?}");
}

#[test]
fn the_foundation_imports_only_the_foundation() {
    for (from, targets) in import_graph(&src_dir()) {
        if layer_of(&from) == Some(0) {
            for to in targets {
                assert_eq!(layer_of(&to), Some(0), "{from} imports {to}");
            }
        }
    }
}

#[test]
fn the_top_level_modules_import_each_other_without_cycles() {
    let mut graph = import_graph(&src_dir());
    for (from, to, _) in KNOWN_EXCEPTIONS {
        if let Some(targets) = graph.get_mut(*from) {
            targets.remove(*to);
        }
    }
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn known_exceptions_still_exist() {
    // An exception nobody needs any more must go, so the rule tightens.
    let graph = import_graph(&src_dir());
    for (from, to, why) in KNOWN_EXCEPTIONS {
        assert!(
            graph.get(*from).is_some_and(|t| t.contains(*to)),
            "{from} no longer imports {to}: remove the exception ({why})"
        );
    }
}

#[test]
fn the_reader_sees_grouped_and_nested_imports() {
    let text = "use crate::{Context, backup::{self, Store}, sql};\n\
                // use crate::cli;\n\
                let x = crate::config::Config::load();\n\
                macro_rules! m { () => { $crate::shim::x() } }";
    let found: Vec<_> = imports(text).into_iter().collect();
    assert_eq!(found, ["backup", "config", "context", "sql"]);
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
