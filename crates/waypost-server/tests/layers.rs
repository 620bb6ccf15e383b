//! The server's module graph has no cycles, and nothing below `http/` imports it.
//!
//! Reads `src/` and follows every `crate::…` and `super::…` path outside
//! comments and test modules. Two graphs must be acyclic: the crate's top-level
//! modules, and within each directory module the files beside each other
//! (a parent re-exporting its children is ownership, not a cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that may import `http`: the application that mounts the router, and
/// the dashboard's pages, which sit beside the API and show its views.
const ABOVE_HTTP: &[&str] = &["startup", "http", "web"];

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = graph(|module, target| {
        let (a, b) = (module.first()?, target.first()?);
        (a != b).then(|| (a.clone(), b.clone()))
    });
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle inside waypost-server: {}", cycle.join(" → "));
    }
}

#[test]
fn sibling_files_form_no_cycle() {
    // Edges between two children of the same parent module, named by their full path.
    let graph = graph(|module, target| {
        let common = module
            .iter()
            .zip(target)
            .take_while(|(a, b)| a == b)
            .count();
        let (a, b) = (module.get(common)?, target.get(common)?);
        let parent = module[..common].join("::");
        Some((format!("{parent}::{a}"), format!("{parent}::{b}")))
    });
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle inside waypost-server: {}", cycle.join(" → "));
    }
}

#[test]
fn nothing_below_http_imports_it() {
    let mut offenders = Vec::new();
    for (module, targets) in references() {
        let top = module.first().map(String::as_str).unwrap_or("");
        if ABOVE_HTTP.contains(&top) {
            continue;
        }
        if targets
            .iter()
            .any(|t| t.first().is_some_and(|s| s == "http"))
        {
            offenders.push(module.join("::"));
        }
    }
    assert!(
        offenders.is_empty(),
        "these modules import `http` but sit below it: {offenders:?}"
    );
}

#[test]
fn the_reader_sees_every_kind_of_path() {
    let module = vec!["http".to_owned(), "messages".to_owned()];
    let found = paths_in(
        &module,
        "use crate::{auth, ops::messages::{self, accept}};\nuse super::contacts::parse_phone;\n// use crate::nothing;\nlet x = crate::state::AppState::new();\n#[cfg(test)]\nmod tests { use crate::hidden; }",
    );
    let names: BTreeSet<String> = found.iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "auth",
        "ops::messages",
        "http::contacts::parse_phone",
        "ops::messages::accept",
        "state::AppState::new",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);

    let mut graph = Graph::new();
    graph
        .entry("auth".into())
        .or_default()
        .insert("state".into());
    graph
        .entry("state".into())
        .or_default()
        .insert("error".into());
    assert_eq!(find_cycle(&graph), None);
    graph
        .entry("state".into())
        .or_default()
        .insert("auth".into());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["auth".into(), "state".into(), "auth".into()])
    );
}

type Graph = BTreeMap<String, BTreeSet<String>>;

fn graph(edge: impl Fn(&[String], &[String]) -> Option<(String, String)>) -> Graph {
    let mut graph = Graph::new();
    for (module, targets) in references() {
        for target in targets {
            if let Some((a, b)) = edge(&module, &target)
                && a != b
            {
                graph.entry(a).or_default().insert(b);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the nodes along it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a Graph,
        done: &mut BTreeSet<&'a str>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// Every source file's module path and the crate paths it mentions.
fn references() -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for file in rust_files(&src) {
        let module = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("source file reads");
        let paths = paths_in(&module, &text);
        out.push((module, paths));
    }
    assert!(out.len() > 20, "src/ was not found or is nearly empty");
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/ reads") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `src/http/auth.rs` → `[http, auth]`; `src/http/mod.rs` → `[http]`; `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The absolute module paths `text` (the file of `module`) refers to.
fn paths_in(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    let mut out = Vec::new();
    for (start, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = code[start..].split_once("::").map_or("", |(_, r)| r);
        let base: Vec<String> = if code[start..].starts_with("crate::") {
            Vec::new()
        } else {
            let mut up = 1;
            while let Some(r) = rest.strip_prefix("super::") {
                (rest, up) = (r, up + 1);
            }
            module[..module.len().saturating_sub(up)].to_vec()
        };
        for tail in expand(rest) {
            let mut path = base.clone();
            path.extend(tail);
            if !path.is_empty() {
                out.push(path);
            }
        }
    }
    out
}

/// `a::b::{c, d::e}` → `[[a, b, c], [a, b, d, e]]`; stops at the first non-path character.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut s = rest;
    loop {
        if let Some(inner) = s.strip_prefix('{') {
            let mut depth = 1;
            let mut end = inner.len();
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for item in split_top(&inner[..end]) {
                let item = item.trim();
                if item.is_empty() || item == "self" || item.starts_with("self ") {
                    out.push(prefix.clone());
                    continue;
                }
                for tail in expand(item) {
                    let mut p = prefix.clone();
                    p.extend(tail);
                    out.push(p);
                }
            }
            return out;
        }
        let ident: String = s
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() || ident == "self" {
            return vec![prefix];
        }
        s = &s[ident.len()..];
        prefix.push(ident);
        match s.strip_prefix("::") {
            Some(next) => s = next,
            None => return vec![prefix],
        }
    }
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}
