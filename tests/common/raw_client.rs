//! A client speaking raw RESP bytes over TCP, for what a client library would not send (half requests,
//! garbage, deep pipelines), and a reader that knows where one reply ends.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::DEADLINE;

/// A client speaking raw RESP bytes, for what a library would not send.
pub struct RawClient {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        RawClient {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a command as a multibulk.
    pub fn command(&mut self, arguments: &[&str]) {
        let mut request = format!("*{}\r\n", arguments.len());
        for argument in arguments {
            request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
        }
        self.send(request.as_bytes());
    }

    /// Reads one whole RESP reply and returns its bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(length) = reply_length(&self.buffer) {
                return self.buffer.drain(..length).collect();
            }
            let mut chunk = [0u8; 65536];
            let count = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                count > 0,
                "connection closed while waiting for a reply; got {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..count]);
        }
    }

    pub fn read_reply_string(&mut self) -> String {
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }

    /// Sends a command and returns its whole reply as text: one round trip.
    pub fn call(&mut self, arguments: &[&str]) -> String {
        self.command(arguments);
        self.read_reply_string()
    }

    /// True once the server has closed the connection (reads return 0 or fail), within the deadline.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error)
                    if error.kind() == std::io::ErrorKind::WouldBlock
                        || error.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// The length of the first complete RESP value in `bytes`, if it is all there.
pub fn reply_length(bytes: &[u8]) -> Option<usize> {
    let line_end = bytes.windows(2).position(|window| window == b"\r\n")?;
    let header = std::str::from_utf8(&bytes[1..line_end]).ok()?;
    let after = line_end + 2;
    match bytes[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(after);
            }
            let end = after + length as usize + 2;
            (bytes.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count: i64 = header.parse().ok()?;
            let elements = if bytes[0] == b'%' || bytes[0] == b'|' {
                count * 2
            } else {
                count
            };
            let mut offset = after;
            for _ in 0..elements.max(0) {
                offset += reply_length(&bytes[offset..])?;
            }
            Some(offset)
        }
        _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(bytes)),
    }
}

/// The value of `field` in INFO's text.
pub fn info_field(client: &mut RawClient, field: &str) -> u64 {
    let info = client.call(&["INFO"]);
    info.split(&format!("{field}:"))
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{field} missing in {info}"))
}
