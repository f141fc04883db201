//! `dibs-aof`: check, dump and repair a dibs log file, the analogue of `redis-check-aof`.
//!
//! Every judgement comes from the library's scanner (`dibs::aof::record::Scanner`) and payload decoder,
//! so this tool and the server can never disagree about a file. Run it while the server is stopped: the
//! file is memory-mapped, and a server appending or cutting it at the same time makes the answer stale.
//!
//! Exit status: `check` and `dump` exit 0 for a clean file, 1 for a torn tail (the server cuts it and
//! starts), 2 for corruption (the server refuses to start). `fix` exits 0 when the file is clean
//! afterwards and 1 when it left the file alone (declined, no terminal to ask on, or a damaged file
//! header). Any command exits 3 when it cannot run at all (bad arguments, unreadable file).
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dibs::aof::payload::decode_payload;
use dibs::aof::record::{Damage, ScanVerdict, Scanner};
use memmap2::Mmap;

const EXIT_CLEAN: u8 = 0;
const EXIT_TORN_TAIL: u8 = 1;
const EXIT_CORRUPT: u8 = 2;
const EXIT_LEFT_ALONE: u8 = 1;
const EXIT_CANNOT_RUN: u8 = 3;

#[derive(Parser)]
#[command(
    name = "dibs-aof",
    version,
    about = "Check, dump and repair a dibs append-only log file",
    long_about = "Check, dump and repair a dibs append-only log file (the analogue of redis-check-aof).\n\n\
        A torn tail (a last record cut short or garbled by a crash, with nothing valid after it) is what \
        the server cuts by itself at startup. Damage with valid records after it is corruption: the \
        server refuses to start, and only `fix` (a human decision) cuts it away, losing the records after \
        the damage. Run this tool while the server is stopped.",
    after_help = "Exit status:\n  check, dump: 0 clean, 1 torn tail, 2 corruption, 3 could not run\n  \
        fix: 0 clean afterwards, 1 left unchanged, 3 could not run"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge a log file: clean, torn tail or corrupt
    ///
    /// Prints the record count, the sequence range, the last good offset, and where and what any damage is.
    /// Given `MANIFEST` it checks the manifest and the snapshot it names; given a `.snap` file, the
    /// snapshot (every checksum, every entry decoded, the trailer). A damaged one exits 2.
    Check {
        /// The log file (e.g. log-00000000000000000001.aof), MANIFEST, or a snapshot file.
        file: PathBuf,
    },
    /// Print every good record, one per line
    ///
    /// Each line holds the record's offset, its sequence, the loop clock it ran with, and each command's
    /// arguments quoted as redis-cli shows them; the commands of one transaction are separated by " ; ".
    Dump {
        /// The log file.
        file: PathBuf,
    },
    /// Cut the file at its first damage, after asking
    ///
    /// Asks y/N on the terminal unless --yes is given. Corruption is cut too, which loses every record
    /// after it: run `check` first and keep a copy. A damaged file header is never cut (the file may not
    /// be a dibs log). The cut is fsync'd, then the file is scanned again.
    Fix {
        /// The log file.
        file: PathBuf,
        /// Cut without asking. Required when standard input is not a terminal.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let arguments = match Arguments::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            // --help and --version are not failures; everything else is a usage error, kept apart from
            // the verdict codes 1 and 2 (clap's own code for it would be 2, which means corruption here).
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                EXIT_CANNOT_RUN
            } else {
                EXIT_CLEAN
            });
        }
    };
    let result = match arguments.command {
        Command::Check { file } => check(&file),
        Command::Dump { file } => dump(&file),
        Command::Fix { file, yes } => fix(&file, yes),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_CLEAN),
        Err(error) => {
            eprintln!("dibs-aof: {error}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

/// A read-only view of a whole file.
struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    fn open(path: &Path) -> io::Result<MappedFile> {
        let file = File::open(path).map_err(|error| {
            io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        })?;
        if file.metadata()?.len() == 0 {
            return Ok(MappedFile { map: None });
        }
        // Safety: the map is only read; the tool's documentation asks for the server to be stopped, and
        // `fix` drops the map before it cuts the file.
        let map = unsafe { Mmap::map(&file)? };
        Ok(MappedFile { map: Some(map) })
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// `check MANIFEST`: the manifest itself, then the snapshot it names (in the same directory).
fn check_manifest(path: &Path) -> io::Result<u8> {
    let bytes = std::fs::read(path)?;
    let mut out = io::stdout().lock();
    writeln!(out, "file: {} (manifest)", path.display())?;
    let manifest = match dibs::aof::manifest::Manifest::parse(&bytes) {
        Ok(manifest) => manifest,
        Err(reason) => {
            writeln!(out, "damage: {reason}")?;
            writeln!(out, "verdict: corrupt (the server refuses to start)")?;
            return Ok(EXIT_CORRUPT);
        }
    };
    writeln!(out, "snapshot: {}", manifest.snapshot_file)?;
    writeln!(out, "sequence: {}", manifest.sequence)?;
    drop(out);
    let snapshot_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.snapshot_file);
    let mapped = match MappedFile::open(&snapshot_path) {
        Ok(mapped) => mapped,
        Err(error) => {
            println!("damage: the snapshot the manifest names cannot be read: {error}");
            println!("verdict: corrupt (the server refuses to start)");
            return Ok(EXIT_CORRUPT);
        }
    };
    check_snapshot(&snapshot_path, mapped.bytes())
}

/// `check FILE.snap`: every checksum, every entry decoded, the trailer's counts.
fn check_snapshot(path: &Path, bytes: &[u8]) -> io::Result<u8> {
    let mut out = io::stdout().lock();
    writeln!(out, "file: {} (snapshot)", path.display())?;
    writeln!(out, "size: {} bytes", bytes.len())?;
    let mut by_type: std::collections::BTreeMap<u8, u64> = std::collections::BTreeMap::new();
    let verdict = dibs::compaction::snapshot_entries::read_snapshot(bytes, |entry| {
        dibs::store::encoding::decode_value(entry.tag, entry.value)?;
        *by_type.entry(entry.tag).or_default() += 1;
        Ok(())
    });
    match verdict {
        Ok(summary) => {
            writeln!(out, "sequence: {}", summary.sequence)?;
            writeln!(out, "now_ms: {}", summary.now_ms)?;
            writeln!(out, "keys: {}", summary.entry_count)?;
            writeln!(out, "chunks: {}", summary.chunk_count)?;
            for (tag, count) in by_type {
                writeln!(out, "keys with type tag {tag}: {count}")?;
            }
            writeln!(out, "verdict: clean")?;
            Ok(EXIT_CLEAN)
        }
        Err(damage) => {
            writeln!(out, "damage: {damage}")?;
            writeln!(out, "verdict: corrupt (the server refuses to start)")?;
            Ok(EXIT_CORRUPT)
        }
    }
}

/// What a full pass over a file found.
struct Summary {
    first_sequence: Option<u64>,
    records_count: u64,
    last_sequence: Option<u64>,
    last_record_offset: Option<u64>,
    verdict: ScanVerdict,
    /// Good records whose payload does not decode: (offset, sequence, error).
    payload_errors: Vec<(u64, u64, String)>,
}

impl Summary {
    fn exit_code(&self) -> u8 {
        match self.verdict {
            _ if !self.payload_errors.is_empty() => EXIT_CORRUPT,
            ScanVerdict::Clean { .. } => EXIT_CLEAN,
            ScanVerdict::TornTail { .. } => EXIT_TORN_TAIL,
            ScanVerdict::Corrupt { .. } => EXIT_CORRUPT,
        }
    }
}

/// Scans `bytes`, calling `each` on every good record and its decoded payload.
fn summarize(
    bytes: &[u8],
    mut each: impl FnMut(&dibs::aof::record::RecordView<'_>) -> io::Result<()>,
) -> io::Result<Summary> {
    let mut scanner = Scanner::new(bytes);
    let mut last_record_offset = None;
    let mut payload_errors = Vec::new();
    for record in scanner.by_ref() {
        last_record_offset = Some(record.offset);
        if let Err(error) = decode_payload(record.payload) {
            payload_errors.push((record.offset, record.sequence, error.to_string()));
        }
        each(&record)?;
    }
    Ok(Summary {
        first_sequence: scanner.first_sequence(),
        records_count: scanner.records_count(),
        last_sequence: scanner.last_sequence(),
        last_record_offset,
        verdict: scanner
            .verdict()
            .expect("a finished scan has a verdict")
            .clone(),
        payload_errors,
    })
}

fn check(path: &Path) -> io::Result<u8> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == dibs::aof::directory::MANIFEST_FILE_NAME {
        return check_manifest(path);
    }
    let mapped = MappedFile::open(path)?;
    if mapped
        .bytes()
        .starts_with(dibs::aof::snapshot::SNAPSHOT_MAGIC)
        || name.ends_with(".snap")
    {
        return check_snapshot(path, mapped.bytes());
    }
    let summary = summarize(mapped.bytes(), |_| Ok(()))?;
    let mut out = io::stdout().lock();
    writeln!(out, "file: {}", path.display())?;
    writeln!(out, "size: {} bytes", mapped.bytes().len())?;
    match summary.first_sequence {
        Some(first_sequence) => writeln!(out, "file header: first sequence {first_sequence}")?,
        None => writeln!(out, "file header: damaged")?,
    }
    writeln!(out, "records: {}", summary.records_count)?;
    match (summary.first_sequence, summary.last_sequence) {
        (Some(first), Some(last)) => writeln!(out, "sequences: {first}..={last}")?,
        _ => writeln!(out, "sequences: none")?,
    }
    if let Some(offset) = summary.last_record_offset {
        writeln!(out, "last good record at offset: {offset}")?;
    }
    writeln!(out, "last good offset: {}", summary.verdict.good_length())?;
    for (offset, sequence, error) in &summary.payload_errors {
        writeln!(
            out,
            "payload error: record {sequence} at offset {offset}: {error}"
        )?;
    }
    let judgement = match &summary.verdict {
        ScanVerdict::Clean { .. } => "the file is clean",
        ScanVerdict::TornTail { .. } => "the server will cut this torn tail at startup",
        ScanVerdict::Corrupt { .. } => "the server will refuse to start; see `dibs-aof fix --help`",
    };
    writeln!(out, "verdict: {}", summary.verdict)?;
    writeln!(out, "{judgement}")?;
    Ok(summary.exit_code())
}

fn dump(path: &Path) -> io::Result<u8> {
    let mapped = MappedFile::open(path)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let summary = summarize(mapped.bytes(), |record| {
        write!(out, "offset={} sequence={}", record.offset, record.sequence)?;
        match decode_payload(record.payload) {
            Ok(payload) => {
                write!(out, " now_ms={}", payload.now_ms)?;
                for (index, command) in payload.commands.iter().enumerate() {
                    out.write_all(if index == 0 { b" " } else { b" ; " })?;
                    for (position, argument) in command.iter().enumerate() {
                        if position > 0 {
                            out.write_all(b" ")?;
                        }
                        out.write_all(quote_argument(argument).as_bytes())?;
                    }
                }
                writeln!(out)
            }
            Err(error) => writeln!(out, " payload error: {error}"),
        }
    })?;
    out.flush()?;
    if !matches!(summary.verdict, ScanVerdict::Clean { .. }) {
        eprintln!("dibs-aof: {}", summary.verdict);
    }
    Ok(summary.exit_code())
}

/// Quotes bytes as redis-cli prints a bulk string: in double quotes, with `\\`, `\"`, `\n`, `\r`, `\t`,
/// `\a`, `\b` escaped and any other byte outside printable ASCII as `\xHH`.
fn quote_argument(argument: &[u8]) -> String {
    let mut quoted = String::with_capacity(argument.len() + 2);
    quoted.push('"');
    for &byte in argument {
        match byte {
            b'\\' => quoted.push_str("\\\\"),
            b'"' => quoted.push_str("\\\""),
            b'\n' => quoted.push_str("\\n"),
            b'\r' => quoted.push_str("\\r"),
            b'\t' => quoted.push_str("\\t"),
            0x07 => quoted.push_str("\\a"),
            0x08 => quoted.push_str("\\b"),
            0x20..=0x7e => quoted.push(byte as char),
            _ => quoted.push_str(&format!("\\x{byte:02x}")),
        }
    }
    quoted.push('"');
    quoted
}

fn fix(path: &Path, yes: bool) -> io::Result<u8> {
    let mapped = MappedFile::open(path)?;
    let file_length = mapped.bytes().len() as u64;
    let summary = summarize(mapped.bytes(), |_| Ok(()))?;
    // The map must be gone before the file is cut: touching a mapped page past the new end is SIGBUS.
    drop(mapped);
    let mut out = io::stdout().lock();
    let cut_offset = match &summary.verdict {
        ScanVerdict::Clean { .. } => {
            if summary.payload_errors.is_empty() {
                writeln!(out, "{}: clean, nothing to fix", path.display())?;
                return Ok(EXIT_CLEAN);
            }
            // A record whose checksum holds but whose payload does not decode was written that way;
            // cutting cannot be told apart from losing data on purpose. Leave it to a human.
            writeln!(
                out,
                "{}: records with undecodable payloads; not cutting",
                path.display()
            )?;
            return Ok(EXIT_LEFT_ALONE);
        }
        ScanVerdict::Corrupt {
            offset: 0,
            reason:
                Damage::FileHeaderIncomplete { .. }
                | Damage::FileMagicWrong
                | Damage::FileFirstSequenceZero,
            ..
        } => {
            writeln!(
                out,
                "{}: {}\nthe file header is damaged: this may not be a dibs log; not touching it",
                path.display(),
                summary.verdict
            )?;
            return Ok(EXIT_LEFT_ALONE);
        }
        ScanVerdict::TornTail { offset, .. } => {
            writeln!(out, "{}: {}", path.display(), summary.verdict)?;
            *offset
        }
        ScanVerdict::Corrupt {
            offset,
            valid_record_offset,
            ..
        } => {
            writeln!(out, "{}: {}", path.display(), summary.verdict)?;
            writeln!(
                out,
                "WARNING: cutting at offset {offset} also drops the valid records from offset \
                 {valid_record_offset} on; keep a copy of the file first"
            )?;
            *offset
        }
    };
    let discarded_bytes = file_length - cut_offset;
    writeln!(
        out,
        "cutting keeps {} records ({cut_offset} bytes) and drops {discarded_bytes} bytes",
        summary.records_count
    )?;
    if !yes {
        if !io::stdin().is_terminal() {
            writeln!(
                out,
                "not cutting: standard input is not a terminal to ask on; pass --yes"
            )?;
            return Ok(EXIT_LEFT_ALONE);
        }
        write!(out, "cut {} to {cut_offset} bytes? [y/N] ", path.display())?;
        out.flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            writeln!(out, "left unchanged")?;
            return Ok(EXIT_LEFT_ALONE);
        }
    }
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(cut_offset)?;
    file.sync_all()?;
    drop(file);
    // Read the result back and judge it again: a cut that did not leave a clean file is a bug here.
    let mapped = MappedFile::open(path)?;
    let after = summarize(mapped.bytes(), |_| Ok(()))?;
    let clean = matches!(after.verdict, ScanVerdict::Clean { .. }) || cut_offset == 0;
    assert!(clean, "the cut file is not clean: {}", after.verdict);
    writeln!(
        out,
        "cut {} to {cut_offset} bytes; {} records remain",
        path.display(),
        after.records_count
    )?;
    Ok(EXIT_CLEAN)
}
