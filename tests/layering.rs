//! The library's layering, checked: every `crate::` (and crate-root `super::`) path in
//! `src/` names a module its module may use by the table in ARCHITECTURE.md, or an edge
//! that document lists as still to remove. The table itself must be acyclic, name every
//! module in `src/lib.rs`, and every listed leftover edge must still exist (so the list
//! only shrinks). `lib.rs` (the prelude), `main.rs` and `cli/` sit above everything and
//! are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Top-level modules declared in src/lib.rs (`pub mod x;`).
fn library_modules(lib_rs: &str) -> BTreeSet<String> {
    lib_rs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// Removes `//` comments (doc comments included) and the contents of string literals,
/// so paths in prose or messages do not count as imports.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The identifier at the start of `s` (after spaces).
fn ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first segment after each `crate::` (every name of a `crate::{a, b::c}` group);
/// `super::x` counts too when `super` is the crate root (files directly under src/ and
/// `src/<m>/mod.rs`).
fn referenced(code: &str, super_is_root: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, counts) in [("crate::", true), ("super::", super_is_root)] {
        if !counts {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // The first segment of each item at the group's own level (nested groups
                // are skipped by depth); the group ends at its matching brace.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' | ',' if depth == 0 => {
                            let head = ident(&item);
                            if !head.is_empty() {
                                out.push(head);
                            }
                            if c == '}' {
                                break;
                            }
                            item.clear();
                            continue;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        item.push(c);
                    }
                }
            } else {
                let head = ident(rest);
                out.push(head);
            }
        }
    }
    out
}

/// Edges module → module found in src/, with one file for each (for messages).
fn source_graph(modules: &BTreeSet<String>) -> BTreeMap<(String, String), PathBuf> {
    let src = root().join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut edges = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let parts: Vec<&str> = rel.iter().map(|s| s.to_str().unwrap()).collect();
        let me = parts[0].trim_end_matches(".rs").to_string();
        if !modules.contains(&me) {
            continue; // lib.rs, main.rs, cli/
        }
        let super_is_root = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        for used in referenced(&code, super_is_root) {
            if used != me && modules.contains(&used) {
                edges
                    .entry((me.clone(), used))
                    .or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    edges
}

/// Backtick-quoted names in a line.
fn quoted(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The "may use" table (`| `m` | `a`, `b` |`) and the leftover edges
/// (`- `m` → `a`, `b`: why`) of ARCHITECTURE.md's section "Layering (checked)".
fn architecture(text: &str) -> (Graph, Vec<(String, String)>) {
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Layering (checked)"))
        .expect("ARCHITECTURE.md has a section `## Layering (checked)`");
    let mut allowed = Graph::new();
    let mut leftover = Vec::new();
    for line in section.lines() {
        if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split('|').collect();
            let module = cells[0].trim().trim_end_matches('`').to_string();
            let uses: BTreeSet<String> = quoted(cells[1]).into_iter().collect();
            assert!(
                allowed.insert(module.clone(), uses).is_none(),
                "ARCHITECTURE.md: `{module}` has two rows"
            );
        } else if let Some(item) = line.strip_prefix("- `") {
            let (lhs, rhs) = item
                .split_once('→')
                .expect("a leftover edge reads `a` → `b`");
            let from = lhs.trim().trim_end_matches('`').to_string();
            let rhs = rhs.split(':').next().unwrap();
            for to in quoted(rhs) {
                leftover.push((from.clone(), to));
            }
        }
    }
    (allowed, leftover)
}

/// A cycle in `g`, if any (as a path of modules).
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap();
                let mut c = path[at..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut state, &mut Vec::new()))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[test]
fn every_import_follows_the_layering_in_architecture_md() {
    let modules = library_modules(&read(&root().join("src/lib.rs")));
    let (allowed, leftover) = architecture(&read(&root().join("ARCHITECTURE.md")));
    let mut problems = Vec::new();

    let listed: BTreeSet<String> = allowed.keys().cloned().collect();
    for m in modules.difference(&listed) {
        problems.push(format!("module `{m}` (src/lib.rs) has no row in the table"));
    }
    for m in listed.difference(&modules) {
        problems.push(format!(
            "the table names `{m}`, which src/lib.rs does not declare"
        ));
    }
    for (m, uses) in &allowed {
        for u in uses.difference(&modules) {
            problems.push(format!("`{m}` may use `{u}`, which is not a module"));
        }
    }
    // The target layering must be a DAG; the leftovers are the known breaches of it
    // (the report renderers' edges close a cycle until those renderers move).
    if let Some(c) = cycle(&allowed) {
        problems.push(format!(
            "the table's allowed edges have a cycle: {}",
            c.join(" → ")
        ));
    }

    let found = source_graph(&modules);
    for ((a, b), file) in &found {
        let ok = allowed.get(a).is_some_and(|u| u.contains(b));
        let left = leftover.contains(&(a.clone(), b.clone()));
        if !ok && !left {
            problems.push(format!(
                "src/{}: `{a}` uses `{b}`, which ARCHITECTURE.md does not allow",
                file.display()
            ));
        }
        if ok && left {
            problems.push(format!(
                "`{a}` → `{b}` is both allowed and listed as leftover"
            ));
        }
    }
    for (a, b) in &leftover {
        if !found.contains_key(&(a.clone(), b.clone())) {
            problems.push(format!(
                "leftover edge `{a}` → `{b}` no longer exists: delete it from ARCHITECTURE.md"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layering:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_scanner_sees_groups_super_and_ignores_prose() {
    let code = code_only(
        "use crate::{data::{self, SplitName}, error::Result};\n\
         // crate::journal in a comment\n\
         let s = \"crate::search in a string\";\n\
         let x = crate::metrics::roc_auc(a);\n\
         let y = super::seed::Seeds::new(1);\n\
         let z = notcrate::report::x;",
    );
    assert_eq!(
        referenced(&code, true),
        vec!["data", "error", "metrics", "seed"]
    );
    assert_eq!(referenced(&code, false), vec!["data", "error", "metrics"]);

    let g: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()])))
        .collect();
    assert!(cycle(&g).is_some());
    let (allowed, leftover) = architecture(
        "# x\n## Layering (checked)\n| module | may use |\n|---|---|\n| `a` | `b`, `c` |\n\
         | `b` | — |\n- `b` → `c`, `a`: to move\n## Next\n| `z` | `q` |\n",
    );
    assert_eq!(allowed.len(), 2);
    assert_eq!(allowed["a"].len(), 2);
    assert_eq!(
        leftover,
        vec![("b".into(), "c".into()), ("b".into(), "a".into())]
    );
}
