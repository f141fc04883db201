use super::*;
use crate::limits;
use crate::limits::ARGUMENT_RESERVE_MAX;

/// Decodes every request in `input`, returning argument lists or the first error.
fn decode_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let mut decoder = RequestDecoder::new();
    let mut position = 0;
    let mut commands = Vec::new();
    while let Some(request) = decoder.decode(&input[position..], DecodeLimits::AUTHENTICATED)? {
        match request {
            Request::Multibulk { consumed } => {
                let base = &input[position..];
                commands.push(
                    decoder
                        .argument_ranges()
                        .iter()
                        .map(|range| base[range.clone()].to_vec())
                        .collect(),
                );
                position += consumed;
            }
            Request::Inline {
                consumed,
                arguments,
            } => {
                if !arguments.is_empty() {
                    commands.push(arguments);
                }
                position += consumed;
            }
            Request::Empty { consumed } => position += consumed,
        }
    }
    Ok(commands)
}

fn error_of(input: &[u8]) -> &'static str {
    decode_all(input).unwrap_err().0
}

fn arguments(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter()
        .map(|argument| argument.as_bytes().to_vec())
        .collect()
}

#[test]
fn decodes_multibulk_and_inline() {
    let commands =
        decode_all(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nPING\r\nSET a \"b c\"\r\n").unwrap();
    assert_eq!(
        commands,
        vec![
            arguments(&["ECHO", "hello"]),
            arguments(&["PING"]),
            arguments(&["SET", "a", "b c"])
        ]
    );
}

// The cases below are those of Redis's tests/unit/protocol.tcl.
#[test]
fn negative_multibulk_length_is_ignored() {
    assert_eq!(
        decode_all(b"*-10\r\nPING\r\n").unwrap(),
        vec![arguments(&["PING"])]
    );
}

#[test]
fn out_of_range_multibulk_length() {
    assert_eq!(error_of(b"*3000000000\r\n"), "invalid multibulk length");
    assert_eq!(error_of(b"*20000000\r\n"), "invalid multibulk length");
}

#[test]
fn wrong_multibulk_payload_header() {
    assert_eq!(
        error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
        "expected '$', got 'f'"
    );
}

#[test]
fn negative_multibulk_payload_length() {
    assert_eq!(
        error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
        "invalid bulk length"
    );
}

#[test]
fn out_of_range_multibulk_payload_length() {
    assert_eq!(
        error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
        "invalid bulk length"
    );
}

#[test]
fn non_number_multibulk_payload_length() {
    assert_eq!(
        error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
        "invalid bulk length"
    );
}

#[test]
fn non_number_multibulk_length() {
    assert_eq!(error_of(b"*blabla\r\n"), "invalid multibulk length");
}

#[test]
fn too_big_inline_request() {
    let mut input = vec![b'a'; limits::INLINE_LENGTH_MAX + 10];
    input.extend_from_slice(b"\r\n");
    assert_eq!(error_of(&input), "too big inline request");
    // Without any newline at all, too: the decoder must not wait forever.
    assert_eq!(
        error_of(&vec![b'a'; limits::INLINE_LENGTH_MAX + 1]),
        "too big inline request"
    );
}

#[test]
fn unbalanced_quotes_in_inline_request() {
    assert_eq!(
        error_of(b"set \"\"\"test-key\"\"\" test-value\r\n"),
        "unbalanced quotes in request"
    );
    assert_eq!(
        error_of(b"set \"unterminated\r\n"),
        "unbalanced quotes in request"
    );
    assert_eq!(error_of(b"set 'a\r\n"), "unbalanced quotes in request");
}

#[test]
fn too_big_header_lines() {
    let mut input = b"*".to_vec();
    input.extend(std::iter::repeat_n(b'1', limits::INLINE_LENGTH_MAX + 1));
    assert_eq!(error_of(&input), "too big mbulk count string");
    let mut input = b"*1\r\n$".to_vec();
    input.extend(std::iter::repeat_n(b'1', limits::INLINE_LENGTH_MAX + 1));
    assert_eq!(error_of(&input), "too big bulk count string");
}

#[test]
fn unauthenticated_limits() {
    let mut decoder = RequestDecoder::new();
    let error = decoder
        .decode(b"*11\r\n", DecodeLimits::UNAUTHENTICATED)
        .unwrap_err();
    assert_eq!(error.0, "unauthenticated multibulk length");
    let mut decoder = RequestDecoder::new();
    let error = decoder
        .decode(b"*1\r\n$16385\r\n", DecodeLimits::UNAUTHENTICATED)
        .unwrap_err();
    assert_eq!(error.0, "unauthenticated bulk length");
}

#[test]
fn inline_quoting() {
    assert_eq!(
        split_arguments(br#"set "a\x41\n" 'it\'s' plain"#).unwrap(),
        vec![
            b"set".to_vec(),
            b"aA\n".to_vec(),
            b"it's".to_vec(),
            b"plain".to_vec()
        ]
    );
    assert_eq!(split_arguments(b"   ").unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(split_arguments(b"\"\"").unwrap(), vec![Vec::<u8>::new()]);
}

#[test]
fn a_large_declared_bulk_reserves_nothing_and_waits() {
    let mut decoder = RequestDecoder::new();
    let input = b"*1\r\n$400000000\r\nabc";
    assert_eq!(
        decoder.decode(input, DecodeLimits::AUTHENTICATED).unwrap(),
        None
    );
    assert!(decoder.bytes_needed() > 400_000_000);
    assert!(decoder.ranges.capacity() <= ARGUMENT_RESERVE_MAX);
}

#[test]
fn integers_parse_like_redis() {
    assert_eq!(parse_integer(b"0"), Some(0));
    assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_integer(b"9223372036854775808"), None);
    for bad in [&b""[..], b"-", b"01", b"-0", b"+1", b" 1", b"1 ", b"1a"] {
        assert_eq!(
            parse_integer(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// The second arguments `peek_second_arguments` finds, and the bytes it walked.
fn peek_all(input: &[u8], requests_max: usize, arguments_max: usize) -> (Vec<Vec<u8>>, usize) {
    let mut seen = Vec::new();
    let walked = peek_second_arguments(input, requests_max, arguments_max, |argument| {
        seen.push(argument.to_vec())
    });
    (seen, walked)
}

#[test]
fn peeks_second_arguments_of_complete_requests() {
    let stream = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$2\r\nbc\r\n";
    assert_eq!(
        peek_all(stream, 16, 8),
        (vec![b"a".to_vec(), b"bc".to_vec()], stream.len())
    );
    // Stops at the limit of requests, at an incomplete request, at an inline one, at a long one.
    assert_eq!(peek_all(stream, 1, 8), (vec![b"a".to_vec()], 27));
    assert_eq!(peek_all(&stream[..stream.len() - 1], 16, 8).1, 41);
    assert_eq!(peek_all(b"PING\r\n", 16, 8), (vec![], 0));
    assert_eq!(peek_all(stream, 16, 2), (vec![], 0));
    assert_eq!(
        peek_all(b"*1\r\n$99999999999999999999\r\n", 16, 8),
        (vec![], 0)
    );
}

#[test]
fn encodes_both_protocols() {
    let reply = Reply::Map(vec![(Reply::bulk(b"a"), Reply::Null)]);
    let mut resp2 = Vec::new();
    encode(&reply, Protocol::Resp2, &mut resp2);
    assert_eq!(resp2, b"*2\r\n$1\r\na\r\n$-1\r\n");
    let mut resp3 = Vec::new();
    encode(&reply, Protocol::Resp3, &mut resp3);
    assert_eq!(resp3, b"%1\r\n$1\r\na\r\n_\r\n");
    let mut out = Vec::new();
    encode(&Reply::error("ERR a\r\nb"), Protocol::Resp2, &mut out);
    assert_eq!(out, b"-ERR a  b\r\n");
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
    }

    proptest! {
        /// Any split of a valid stream into reads decodes to the same commands as the whole stream.
        #[test]
        fn any_split_decodes_the_same(
            commands in prop::collection::vec(command(), 1..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut stream = Vec::new();
            for command in &commands {
                let slices: Vec<&[u8]> = command.iter().map(|argument| argument.as_slice()).collect();
                encode_request(&slices, &mut stream);
            }
            let mut cut_points: Vec<usize> = cuts.iter().map(|index| index.index(stream.len() + 1)).collect();
            cut_points.push(stream.len());
            cut_points.sort_unstable();

            // Feed the stream chunk by chunk into a growing buffer, as a connection does.
            let mut decoder = RequestDecoder::new();
            let mut buffer = Vec::new();
            let mut decoded = Vec::new();
            let mut fed = 0;
            for cut in cut_points {
                buffer.extend_from_slice(&stream[fed..cut]);
                fed = cut;
                while let Some(request) = decoder.decode(&buffer, DecodeLimits::AUTHENTICATED).unwrap() {
                    let Request::Multibulk { consumed } = request else { panic!("unexpected {request:?}") };
                    decoded.push(decoder.argument_ranges().iter().map(|range| buffer[range.clone()].to_vec()).collect::<Vec<_>>());
                    buffer.drain(..consumed);
                }
            }
            prop_assert_eq!(decoded, commands);
            prop_assert!(buffer.is_empty());
        }

        /// On any prefix of a valid stream, the look-ahead finds the second argument of each complete
        /// request, in order, as the decoder reads them.
        #[test]
        fn peek_agrees_with_the_decoder(
            commands in prop::collection::vec(command(), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut stream = Vec::new();
            for command in &commands {
                let slices: Vec<&[u8]> = command.iter().map(|argument| argument.as_slice()).collect();
                encode_request(&slices, &mut stream);
            }
            let prefix = &stream[..cut.index(stream.len() + 1)];
            let complete = decode_all(prefix).unwrap();
            let expected: Vec<Vec<u8>> = complete.iter().filter_map(|command| command.get(1).cloned()).collect();
            prop_assert_eq!(peek_all(prefix, 16, 8).0, expected);
        }

        /// Arbitrary bytes never panic the look-ahead.
        #[test]
        fn arbitrary_bytes_never_panic_the_peek(input in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = peek_all(&input, 16, 8);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_all(&input);
        }
    }
}
