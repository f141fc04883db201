//! protocol.md is the contract, so it must name everything a client can meet: every limit constant in
//! `src/limits.rs` and every command the server answers to. The command names come from the real binary
//! (`COMMAND LIST`), which is what clients see, not from the table's source, so the test
//! holds wherever the table lives. Each check lists every missing name in its failure message.

mod common;

use std::path::Path;

fn repository_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_' || character == '.'
}

/// Whether `name` occurs in `text` as a whole word: not as part of a longer name such as `GETDEL` for
/// `GET` or `LIKES_PER_POST_MAX_X` for `LIKES_PER_POST_MAX`.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + name.len()..].chars().next();
        // A '.' right after a name ends a sentence; it only continues a name when a letter follows.
        let after_continues = match after {
            Some('.') => text[start + name.len() + 1..]
                .chars()
                .next()
                .is_some_and(|next| next.is_ascii_alphanumeric()),
            Some(character) => is_name_character(character),
            None => false,
        };
        !before.is_some_and(is_name_character) && !after_continues
    })
}

/// The names of `pub const` items in `src/limits.rs`.
fn limit_constant_names(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub const "))
        .map(|rest| {
            rest.chars()
                .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn every_limit_constant_is_in_protocol_md() {
    let protocol = repository_file("protocol.md");
    let names = limit_constant_names(&repository_file("src/limits.rs"));
    assert!(
        names.len() > 20,
        "found only {} constants in src/limits.rs: {names:?}",
        names.len()
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !mentions(&protocol, name))
        .collect();
    assert!(
        missing.is_empty(),
        "protocol.md does not mention these constants of src/limits.rs (add each to its Limits section): {missing:?}"
    );
}

#[test]
fn protocol_md_has_one_limits_section() {
    let protocol = repository_file("protocol.md");
    let headings: Vec<&str> = protocol
        .lines()
        .filter(|line| {
            line.starts_with('#')
                && line
                    .trim_start_matches('#')
                    .trim_start()
                    .starts_with("Limits")
        })
        .collect();
    assert_eq!(
        headings,
        vec!["## Limits"],
        "protocol.md should have exactly one Limits section"
    );
}

#[test]
fn every_client_command_is_in_protocol_md() {
    let (_dir, server) = common::start("protocol-document");
    let names: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .query(&mut server.connection())
        .expect("COMMAND LIST");
    assert!(
        names.len() > 50,
        "COMMAND LIST answered only {} names: {names:?}",
        names.len()
    );

    let protocol = repository_file("protocol.md");
    let missing: Vec<String> = names
        .iter()
        .map(|name| name.to_ascii_uppercase())
        .filter(|name| !mentions(&protocol, name))
        .collect();
    assert!(
        missing.is_empty(),
        "protocol.md does not document these commands the server answers to: {missing:?}"
    );
}

#[test]
fn mentions_matches_whole_names_only() {
    assert!(mentions("`GET key` returns", "GET"));
    assert!(!mentions("`GETDEL key`", "GET"));
    assert!(mentions("ends with SET.", "SET"));
    assert!(!mentions("STOCK.SET sku", "SET"));
    assert!(!mentions("COUPON.ISSUE", "COUPON"));
    assert!(mentions("(`LIKES_PER_POST_MAX`)", "LIKES_PER_POST_MAX"));
    assert!(!mentions("SCAN_COUNT_MAX", "SCAN"));
}
