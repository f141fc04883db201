//! Argument parsing shared by the handlers: options, integers, cursors, request IDs and the SCAN
//! family's options. Each parser answers the error reply a client should hear, so handlers parse with `?`
//! before they change anything.

use super::call::Call;
use super::error::{not_an_integer, syntax_error, INVALID_CURSOR};
use crate::limits::SCAN_COUNT_MAX;
use crate::resp::Reply;

/// Case-insensitive comparison of an argument with an option name given in upper case.
pub fn is_option(argument: &[u8], upper: &str) -> bool {
    argument.eq_ignore_ascii_case(upper.as_bytes())
}

/// Parses argument `index` of `call` as an unsigned integer. A negative value becomes `u64::MAX`, which
/// every range check of the value types refuses with its own message ("total must be between 1 and ..."),
/// so the client hears the bound rather than a bare "not an integer".
pub fn unsigned_or_out_of_range(call: &Call, index: usize) -> Result<u64, Reply> {
    let value = call.integer(index)?;
    Ok(u64::try_from(value).unwrap_or(u64::MAX))
}

/// Parses an unsigned integer argument (a reservation id), or answers Redis's "not an integer".
pub fn unsigned(argument: &[u8]) -> Result<u64, Reply> {
    crate::resp::parse_integer(argument)
        .and_then(|value| u64::try_from(value).ok())
        .ok_or_else(not_an_integer)
}

/// Parses an optional trailing `ID request-id` starting at argument `index`: nothing, or exactly those
/// two arguments.
pub fn parse_request_id<'a>(call: &Call<'a>, index: usize) -> Result<Option<&'a [u8]>, Reply> {
    match call.arguments.len().saturating_sub(index) {
        0 => Ok(None),
        2 if is_option(call.argument(index), "ID") => Ok(Some(call.argument(index + 1))),
        _ => Err(syntax_error()),
    }
}

/// Parses a SCAN-family cursor, answering Redis's error for anything but an unsigned integer.
pub fn parse_cursor(argument: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(argument)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| Reply::error(INVALID_CURSOR))
}

/// Parses the `MATCH pattern` / `COUNT n` options shared by SCAN and SSCAN, starting at `index`.
/// `extra` gets a chance at options only one command knows (TYPE for SCAN).
pub fn parse_scan_options<'a>(
    arguments: &[&'a [u8]],
    mut index: usize,
    mut extra: impl FnMut(&[u8], &'a [u8]) -> bool,
) -> Result<(Option<&'a [u8]>, usize), Reply> {
    let mut pattern = None;
    let mut count = 10usize;
    while index < arguments.len() {
        let Some(&value) = arguments.get(index + 1) else {
            return Err(syntax_error());
        };
        let option = arguments[index];
        if is_option(option, "MATCH") {
            pattern = Some(value);
        } else if is_option(option, "COUNT") {
            match crate::resp::parse_integer(value) {
                Some(given) if given >= 1 => count = (given as usize).min(SCAN_COUNT_MAX),
                Some(_) => return Err(syntax_error()),
                None => return Err(not_an_integer()),
            }
        } else if !extra(option, value) {
            return Err(syntax_error());
        }
        index += 2;
    }
    Ok((pattern, count))
}
