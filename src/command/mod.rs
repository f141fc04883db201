//! The vocabulary of handlers: what every data command's handler reads, answers and logs with, shared by
//! all value types so that each parses, refuses and replies the same way.
//!
//! - [`call`]: [`Call`], one command being executed (its arguments, the loop's clock value, where its
//!   log record goes), and [`Mutations`], the canonical log record it builds.
//! - [`parse`]: argument parsing: options, integers, cursors, request IDs, SCAN options.
//! - [`error`]: the error replies and their texts (WRONGTYPE, syntax error, not an integer, wrong arity,
//!   unknown command).
//! - [`reply`]: reply shapes several commands share (integers as replies and as bytes, SCAN's reply).
//!
//! Layering: this module sits below the store and dispatch and imports only the leaves (`resp`, `limits`)
//! and the log's payload format (`aof::payload`), never `store` or `dispatch`, so a new value type's
//! handlers find everything they need here without reaching sideways into another type.

pub mod call;
pub mod error;
pub mod parse;
pub mod reply;

pub use call::{Call, Mutations};
