//! protocol.md is the contract, so it must name everything a client can meet: every limit constant in
//! `src/limits.rs` and every command the server answers to. The command names come from the real binary
//! (`COMMAND LIST` over a raw socket), which is what clients see, not from the table's source, so the test
//! holds wherever the table lives. Each check lists every missing name in its failure message.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to start and to answer.
const DEADLINE: Duration = Duration::from_secs(30);

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

/// The dibs binary on an ephemeral port in a fresh data directory; killed and its directory removed when
/// dropped.
struct Server {
    child: Child,
    port: u16,
    directory: PathBuf,
}

impl Server {
    fn start() -> Server {
        let directory = std::env::temp_dir().join(format!(
            "dibs-test-protocol-document-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("create data directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dibs"))
            .arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(&directory)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dibs");
        let stderr = child.stderr.take().expect("stderr piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            directory,
        };
        let needle = "Ready to accept connections on ";
        let mut log = Vec::new();
        loop {
            match lines.recv_timeout(DEADLINE) {
                Ok(line) => {
                    if let Some(position) = line.find(needle) {
                        let address = &line[position + needle.len()..];
                        let port = address.trim().rsplit(':').next().expect("port");
                        server.port = port.parse().expect("a port number");
                        return server;
                    }
                    log.push(line);
                }
                Err(_) => panic!("dibs did not start; log:\n{}", log.join("\n")),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// Reads one line ending in CRLF, without it.
fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a reply line");
    assert!(
        line.ends_with("\r\n"),
        "a reply line ends in CRLF: {line:?}"
    );
    line.truncate(line.len() - 2);
    line
}

/// Reads a RESP2 array of bulk strings, as `COMMAND LIST` answers.
fn read_bulk_string_array(reader: &mut impl BufRead) -> Vec<String> {
    let header = read_line(reader);
    let count: usize = header
        .strip_prefix('*')
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("expected an array, got {header:?}"));
    (0..count)
        .map(|_| {
            let header = read_line(reader);
            let length: usize = header
                .strip_prefix('$')
                .and_then(|length| length.parse().ok())
                .unwrap_or_else(|| panic!("expected a bulk string, got {header:?}"));
            let mut bytes = vec![0; length + 2];
            reader.read_exact(&mut bytes).expect("read a bulk string");
            assert_eq!(&bytes[length..], b"\r\n", "a bulk string ends in CRLF");
            bytes.truncate(length);
            String::from_utf8(bytes).expect("a command name is UTF-8")
        })
        .collect()
}

#[test]
fn every_client_command_is_in_protocol_md() {
    let server = Server::start();
    let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone the stream");
    writer
        .write_all(b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nLIST\r\n")
        .expect("send COMMAND LIST");
    let names = read_bulk_string_array(&mut BufReader::new(stream));
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
