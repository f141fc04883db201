//! The library's modules form layers, and a module never imports from a layer above its own: reading a
//! layer needs only the layers below it, and a request's path from socket to log to reply goes down the
//! layers once and back up once (lib.rs draws it). This test reads the sources, collects every `crate::`
//! path outside test code and checks each against the layer table below; modules of one layer may use each
//! other only without a cycle. A cycle inside one folder (a `mod.rs` and its children) is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every top-level module of the library and its layer, lowest first. A new module gets a line here.
const LAYERS: &[(&str, u32)] = &[
    // Leaves: bounds, time, byte strings, patterns, logging, the allocator, the wire format.
    ("limits", 0),
    ("clock", 0),
    ("glob", 0),
    ("small_bytes", 0),
    ("logging", 0),
    ("memory", 0),
    ("resp", 0),
    // The log's building blocks: framing, payloads, storage, the syncer, the data directory's files.
    ("aof", 1),
    // What a handler works with: one call, its mutations, argument parsing, error replies.
    ("command", 2),
    // The state: the keyspace and one folder per value type with its handlers and codec.
    ("store", 3),
    // The command table and the checks before a handler runs; live traffic and replay both use it.
    ("dispatch", 4),
    // Around the state: the loop's side of the log, start-up, snapshots and rotation, the command line.
    ("journal", 5),
    ("recovery", 5),
    ("compaction", 5),
    ("config", 5),
    // The event loop and everything that touches connections.
    ("connection", 6),
    ("server", 6),
];

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(directory).expect("read src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/store/coupon/mod.rs` -> `store`); `None` for lib.rs and
/// main.rs.
fn top_module(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(source_root()).expect("under src");
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Files that exist only for tests: those whose module is declared right after `#[cfg(test)]`.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_only = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).expect("read source");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let declaration = pair[1]
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            let Some(name) = declaration
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
            else {
                continue;
            };
            let directory = if file
                .file_name()
                .is_some_and(|name| name == "mod.rs" || name == "lib.rs")
            {
                file.parent().expect("parent").to_path_buf()
            } else {
                file.with_extension("")
            };
            test_only.insert(directory.join(format!("{name}.rs")));
            test_only.insert(directory.join(name).join("mod.rs"));
        }
    }
    test_only
}

/// The text of a file without its inline test module (`#[cfg(test)]` followed by `mod tests {`, which
/// by convention runs to the end of the file).
fn without_inline_tests(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == "#[cfg(test)]" {
            let rest = text[offset + line.len()..].trim_start();
            if rest.starts_with("mod tests {") || rest.starts_with("mod test {") {
                return &text[..offset];
            }
        }
        offset += line.len();
    }
    text
}

/// The top-level modules a source text names through `crate::`, including `use crate::{a, b::c}` groups.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut search_from = 0;
    while let Some(position) = text[search_from..].find("crate::") {
        let start = search_from + position;
        search_from = start + "crate::".len();
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = &text[search_from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (index, character) in group.char_indices() {
                match character {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    character if item_start && (character.is_alphabetic() || character == '_') => {
                        item_start = false;
                        found.insert(identifier_at(&group[index..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier_at(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn identifier_at(text: &str) -> String {
    text.chars()
        .take_while(|character| character.is_alphanumeric() || *character == '_')
        .collect()
}

/// Edges between top-level modules: (from, to) -> one file that makes it.
fn module_edges() -> BTreeMap<(String, String), PathBuf> {
    let mut files = Vec::new();
    rust_files(&source_root(), &mut files);
    let test_only = test_only_files(&files);
    let mut edges = BTreeMap::new();
    for file in &files {
        if test_only.contains(file) || file.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let Some(from) = top_module(file) else {
            continue;
        };
        let text = fs::read_to_string(file).expect("read source");
        for to in referenced_modules(without_inline_tests(&text)) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| file.clone());
            }
        }
    }
    edges
}

#[test]
fn every_module_has_a_layer() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&source_root(), &mut files);
    let unknown: BTreeSet<String> = files
        .iter()
        .filter_map(|file| top_module(file))
        .filter(|module| !layers.contains_key(module.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "modules without a layer in LAYERS: {unknown:?}"
    );
}

#[test]
fn no_module_imports_from_a_layer_above() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut upward = Vec::new();
    for ((from, to), file) in module_edges() {
        let (Some(&from_layer), Some(&to_layer)) =
            (layers.get(from.as_str()), layers.get(to.as_str()))
        else {
            continue;
        };
        if to_layer > from_layer {
            upward.push(format!(
                "{from} (layer {from_layer}) imports {to} (layer {to_layer}) in {}",
                file.display()
            ));
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle_between_modules() {
    let edges = module_edges();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    // Depth-first search with three colours; a grey node reached again closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let start = path
                        .iter()
                        .position(|step| step == next)
                        .expect("on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
                let files: Vec<String> = cycle
                    .windows(2)
                    .map(|pair| {
                        let file = &edges[&(pair[0].clone(), pair[1].clone())];
                        format!("{} -> {} ({})", pair[0], pair[1], file.display())
                    })
                    .collect();
                panic!("import cycle: {}", files.join(", "));
            }
        }
    }
}

#[test]
fn the_reference_scanner_sees_groups_and_paths() {
    let text = "use crate::{limits, resp::{self, Reply}};\nfn f() { crate::store::Value::x(); }\n";
    let found: Vec<String> = referenced_modules(text).into_iter().collect();
    assert_eq!(found, ["limits", "resp", "store"]);
    let tested = "fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::server;\n}\n";
    assert!(referenced_modules(without_inline_tests(tested)).is_empty());
}
