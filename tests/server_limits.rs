//! Limits against the real binary: declared sizes don't allocate, unauthenticated clients get tight bounds,
//! `--maxclients`, and the output buffer limit for clients that stop reading.
mod common;

use common::{info_field, resident_bytes, wait_until, RawClient, Server, TempDir};

#[test]
fn declared_huge_bulks_do_not_allocate() {
    let dir = TempDir::new("huge-bulk");
    let server = Server::start(dir.path(), &[]);
    let mut normal = server.raw();
    assert_eq!(normal.call(&["PING"]), "+PONG\r\n");
    let before = resident_bytes(&server);
    let mut clients: Vec<RawClient> = (0..20).map(|_| server.raw()).collect();
    for client in &mut clients {
        client.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\nsome bytes");
    }
    // Once the server has read every client's bytes (CLIENT LIST shows them waiting in each query
    // buffer), memory must still be near where it was.
    let sent = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\nsome bytes".len();
    wait_until("the server to read every header", || {
        let list = normal.call(&["CLIENT", "LIST"]);
        list.matches(&format!(" qbuf={sent} ")).count() == 20
    });
    assert_eq!(normal.call(&["SET", "small", "v"]), "+OK\r\n");
    assert_eq!(normal.call(&["GET", "small"]), "$1\r\nv\r\n");
    let after = resident_bytes(&server);
    let grown = after.saturating_sub(before);
    assert!(
        grown < 50 * 1024 * 1024,
        "RSS grew by {} MB ({} -> {})",
        grown >> 20,
        before,
        after
    );
    assert_eq!(info_field(&mut normal, "connected_clients"), 21);
    // The waiting clients are still connected; when they leave, their partial requests go with them.
    drop(clients);
    wait_until("the big clients to be gone", || {
        info_field(&mut normal, "connected_clients") == 1
    });
    assert_eq!(normal.call(&["EXISTS", "k"]), ":0\r\n");
}

#[test]
fn unauthenticated_clients_get_tight_limits() {
    let dir = TempDir::new("unauthenticated");
    let server = Server::start(dir.path(), &["--requirepass", "secret"]);
    let mut bystander = server.raw();
    assert_eq!(bystander.call(&["AUTH", "secret"]), "+OK\r\n");

    let mut client = server.raw();
    client.send(b"*11\r\n");
    assert_eq!(
        client.read_reply_string(),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert!(client.is_closed_by_server());

    let mut client = server.raw();
    client.send(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n");
    assert_eq!(
        client.read_reply_string(),
        "-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    assert!(client.is_closed_by_server());

    // At the limits exactly: served (and refused for want of a password).
    let mut client = server.raw();
    let mut request = b"*10\r\n$4\r\nMGET\r\n".to_vec();
    for _ in 0..9 {
        request.extend_from_slice(b"$1\r\nk\r\n");
    }
    client.send(&request);
    assert_eq!(
        client.read_reply_string(),
        "-NOAUTH Authentication required.\r\n"
    );
    let value = "x".repeat(16 * 1024);
    assert_eq!(
        client.call(&["ECHO", &value]),
        "-NOAUTH Authentication required.\r\n"
    );
    // After AUTH the same connection may send big requests.
    assert_eq!(client.call(&["AUTH", "secret"]), "+OK\r\n");
    let big = "y".repeat(100_000);
    assert_eq!(client.call(&["SET", "big", &big]), "+OK\r\n");
    let many: Vec<String> = (0..50).map(|index| format!("key:{index}")).collect();
    let mut arguments = vec!["EXISTS"];
    arguments.extend(many.iter().map(String::as_str));
    assert_eq!(client.call(&arguments), ":0\r\n");
    assert_eq!(bystander.call(&["STRLEN", "big"]), ":100000\r\n");
}

#[test]
fn maxclients_refuses_the_client_past_the_limit() {
    let dir = TempDir::new("maxclients");
    let server = Server::start(dir.path(), &["--maxclients", "5"]);
    let mut clients: Vec<RawClient> = (0..5).map(|_| server.raw()).collect();
    for client in &mut clients {
        assert_eq!(client.call(&["PING"]), "+PONG\r\n");
    }
    let mut sixth = server.raw();
    assert_eq!(
        sixth.read_reply_string(),
        "-ERR max number of clients reached\r\n"
    );
    assert!(sixth.is_closed_by_server());
    // The five are still served; when one leaves, a newcomer gets its place.
    for client in &mut clients {
        assert_eq!(client.call(&["PING"]), "+PONG\r\n");
    }
    assert_eq!(info_field(&mut clients[0], "rejected_connections"), 1);
    clients.pop();
    wait_until("a slot to free up", || {
        info_field(&mut clients[0], "connected_clients") == 4
    });
    let mut newcomer = server.raw();
    assert_eq!(newcomer.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_client_that_never_reads_is_cut_off_by_the_output_buffer_limit() {
    let dir = TempDir::new("output-limit");
    let server = Server::start(dir.path(), &["--client-output-buffer-limit", "1048576"]);
    let mut normal = server.raw();
    let value = "v".repeat(100 * 1024);
    assert_eq!(normal.call(&["SET", "big", &value]), "+OK\r\n");
    assert_eq!(
        info_field(&mut normal, "client_output_buffer_limit_disconnections"),
        0
    );

    // 2000 GETs of 100 KB, never read: 200 MB of replies against a 1 MB limit.
    let mut greedy = server.raw();
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(2000);
    // The server may cut the connection while we are still writing; that is the point.
    let _ = std::io::Write::write_all(&mut greedy.stream, &request);
    wait_until("the greedy client to be disconnected", || {
        info_field(&mut normal, "client_output_buffer_limit_disconnections") == 1
    });
    assert!(greedy.is_closed_by_server());
    assert_eq!(info_field(&mut normal, "connected_clients"), 1);
    // Others keep working, including with large replies they do read.
    assert_eq!(normal.call(&["PING"]), "+PONG\r\n");
    for _ in 0..20 {
        assert_eq!(normal.read_reply_len_of_get("big"), 100 * 1024);
    }
    // CONFIG SET changes the limit for everyone.
    assert_eq!(
        normal.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 104857600 0 0"
        ]),
        "+OK\r\n"
    );
    let reply = normal.call(&["CONFIG", "GET", "client-output-buffer-limit"]);
    assert!(reply.contains("normal 104857600 0 0"), "{reply:?}");
}

trait GetLength {
    fn read_reply_len_of_get(&mut self, key: &str) -> usize;
}

impl GetLength for RawClient {
    /// GETs `key` and returns the length of the value received.
    fn read_reply_len_of_get(&mut self, key: &str) -> usize {
        self.command(&["GET", key]);
        let reply = self.read_reply();
        let header_end = reply
            .windows(2)
            .position(|window| window == b"\r\n")
            .unwrap();
        reply.len() - header_end - 4
    }
}
