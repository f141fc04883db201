//! STOCK.* against the real binary: every reply shape and error in RESP2 and RESP3, concurrent takes,
//! reservations that expire by themselves (and are logged), request IDs across a kill -9, and identical
//! state after a restart.

mod common;

use std::sync::{Arc, Barrier};

use common::{log_contains, start, wait_until};

/// The RESP2 STOCK.INFO reply for these counts.
fn info2(available: u64, reserved: u64, sold: u64, reservations: u64) -> String {
    let supplied = available + reserved + sold;
    format!(
        "*10\r\n$9\r\navailable\r\n:{available}\r\n$8\r\nreserved\r\n:{reserved}\r\n$4\r\nsold\r\n:{sold}\r\n\
         $12\r\nreservations\r\n:{reservations}\r\n$8\r\nsupplied\r\n:{supplied}\r\n"
    )
}

#[test]
fn replies_in_resp2() {
    let (_dir, server) = start("stock-resp2");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["STOCK.SET", "sku", "5"]), "+OK\r\n");
    assert_eq!(raw.call(&["STOCK.ADD", "sku", "3"]), ":8\r\n");
    assert_eq!(raw.call(&["STOCK.ADD", "new", "2"]), ":2\r\n");
    assert_eq!(
        raw.call(&["STOCK.TAKE", "sku", "2"]),
        "*2\r\n$2\r\nOK\r\n:6\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.TAKE", "sku", "7"]),
        "*2\r\n$7\r\nSOLDOUT\r\n:6\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "2", "60000"]),
        "*3\r\n$2\r\nOK\r\n:1\r\n:4\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "3", "60000"]),
        "*3\r\n$2\r\nOK\r\n:2\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "2", "60000"]),
        "*3\r\n$7\r\nSOLDOUT\r\n$-1\r\n:1\r\n"
    );
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(1, 5, 2, 2));
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "1"]),
        "$9\r\nCONFIRMED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "1"]),
        "$9\r\nCONFIRMED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RELEASE", "sku", "1"]),
        "$9\r\nCONFIRMED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RELEASE", "sku", "2"]),
        "$8\r\nRELEASED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "2"]),
        "$8\r\nRELEASED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "99"]),
        "$7\r\nUNKNOWN\r\n"
    );
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(4, 0, 4, 0));
    // SET corrects the shelf count; sales stand.
    assert_eq!(raw.call(&["STOCK.SET", "sku", "10"]), "+OK\r\n");
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(10, 0, 4, 0));
    assert_eq!(raw.call(&["STOCK.SET", "empty", "0"]), "+OK\r\n");
    assert_eq!(raw.call(&["STOCK.INFO", "empty"]), info2(0, 0, 0, 0));
    assert_eq!(raw.call(&["TYPE", "sku"]), "+stock\r\n");
}

#[test]
fn replies_in_resp3() {
    let (_dir, server) = start("stock-resp3");
    let mut raw = server.raw();
    assert!(raw.call(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(raw.call(&["STOCK.SET", "sku", "1"]), "+OK\r\n");
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "1", "60000"]),
        "*3\r\n$2\r\nOK\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "1", "60000"]),
        "*3\r\n$7\r\nSOLDOUT\r\n_\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.TAKE", "sku", "1"]),
        "*2\r\n$7\r\nSOLDOUT\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.INFO", "sku"]),
        "%5\r\n$9\r\navailable\r\n:0\r\n$8\r\nreserved\r\n:1\r\n$4\r\nsold\r\n:0\r\n\
         $12\r\nreservations\r\n:1\r\n$8\r\nsupplied\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.INFO", "nope"]),
        "-ERR no such stock sku\r\n"
    );
}

#[test]
fn errors_and_types() {
    let (_dir, server) = start("stock-errors");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["STOCK.SET", "sku", "5"]), "+OK\r\n");
    let errors: &[(&[&str], &str)] = &[
        (&["STOCK.TAKE", "nope", "1"], "-ERR no such stock sku\r\n"),
        (
            &["STOCK.RESERVE", "nope", "1", "100"],
            "-ERR no such stock sku\r\n",
        ),
        (
            &["STOCK.CONFIRM", "nope", "1"],
            "-ERR no such stock sku\r\n",
        ),
        (
            &["STOCK.RELEASE", "nope", "1"],
            "-ERR no such stock sku\r\n",
        ),
        (&["STOCK.INFO", "nope"], "-ERR no such stock sku\r\n"),
        (
            &["STOCK.SET", "sku", "-1"],
            "-ERR quantity must be between 0 and 1000000000\r\n",
        ),
        (
            &["STOCK.SET", "sku", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["STOCK.ADD", "sku", "0"],
            "-ERR quantity must be between 1 and 1000000000\r\n",
        ),
        (
            &["STOCK.TAKE", "sku", "0"],
            "-ERR quantity must be between 1 and 1000000000\r\n",
        ),
        (
            &["STOCK.ADD", "sku", "1000000000"],
            "-ERR available would exceed 1000000000\r\n",
        ),
        (
            &["STOCK.RESERVE", "sku", "1", "0"],
            "-ERR ttl must be between 1 and 86400000 milliseconds\r\n",
        ),
        (
            &["STOCK.RESERVE", "sku", "1"],
            "-ERR wrong number of arguments for 'stock.reserve' command\r\n",
        ),
        (&["STOCK.TAKE", "sku", "1", "ID"], "-ERR syntax error\r\n"),
        (
            &["STOCK.TAKE", "sku", "1", "ID", "a", "b"],
            "-ERR syntax error\r\n",
        ),
        (
            &["STOCK.CONFIRM", "sku", "-1"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["STOCK.EXPIRE", "sku", "1"],
            "-ERR unknown command 'STOCK.EXPIRE', with args beginning with: 'sku' '1' \r\n",
        ),
    ];
    for (arguments, expected) in errors {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
    // One ID for two different commands on one sku is an error.
    assert_eq!(
        raw.call(&["STOCK.TAKE", "sku", "1", "ID", "r"]),
        "*2\r\n$2\r\nOK\r\n:4\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.ADD", "sku", "1", "ID", "r"]),
        "-ERR request id was already used by another command on this key\r\n"
    );
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(4, 0, 1, 0));
    assert!(
        !raw.call(&["EXISTS", "nope"]).contains(":1"),
        "errors create no key"
    );

    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(raw.call(&["SADD", "set", "m"]), ":1\r\n");
    assert_eq!(raw.call(&["STOCK.SET", "set", "1"]), WRONGTYPE);
    assert_eq!(raw.call(&["STOCK.ADD", "set", "1"]), WRONGTYPE);
    assert_eq!(raw.call(&["STOCK.TAKE", "set", "1"]), WRONGTYPE);
    assert_eq!(raw.call(&["STOCK.INFO", "set"]), WRONGTYPE);
    assert_eq!(raw.call(&["GET", "sku"]), WRONGTYPE);
    assert_eq!(raw.call(&["SCARD", "sku"]), WRONGTYPE);
    assert_eq!(raw.call(&["COUPON.INFO", "sku"]), WRONGTYPE);
    assert_eq!(raw.call(&["TYPE", "sku"]), "+stock\r\n");
    assert_eq!(
        raw.call(&["COMMAND", "INFO", "stock.expire"]),
        "*1\r\n*-1\r\n"
    );
}

/// 200 clients each take one unit of 100: exactly 100 succeed.
#[test]
fn concurrent_takes_sell_exactly_the_stock() {
    const CLIENTS: usize = 200;
    let (_dir, server) = start("stock-takes");
    let mut connection = server.connection();
    let _: () = redis::cmd("STOCK.SET")
        .arg("sku")
        .arg(100)
        .query(&mut connection)
        .unwrap();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let mut connection = server.connection();
            std::thread::spawn(move || {
                barrier.wait();
                let (status, _available): (String, u64) = redis::cmd("STOCK.TAKE")
                    .arg("sku")
                    .arg(1)
                    .query(&mut connection)
                    .unwrap();
                status
            })
        })
        .collect();
    let statuses: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "OK").count(), 100);
    assert_eq!(statuses.iter().filter(|s| *s == "SOLDOUT").count(), 100);
    let info: Vec<(String, u64)> = redis::cmd("STOCK.INFO")
        .arg("sku")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        info,
        [
            ("available", 0),
            ("reserved", 0),
            ("sold", 100),
            ("reservations", 0),
            ("supplied", 100)
        ]
        .map(|(name, value)| (name.to_string(), value))
    );
}

/// A short reservation comes back by itself: the active cycle expires it and logs STOCK.EXPIRE; a
/// CONFIRM after that says EXPIRED, before and after a restart.
#[test]
fn reservations_expire_by_themselves() {
    let (dir, mut server) = start("stock-expiry");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["STOCK.SET", "sku", "3"]), "+OK\r\n");
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "2", "200"]),
        "*3\r\n$2\r\nOK\r\n:1\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "1", "3600000"]),
        "*3\r\n$2\r\nOK\r\n:2\r\n:0\r\n"
    );
    // Nothing but the server's own active cycle touches the sku from here on.
    wait_until("the active cycle logs the expiry", || {
        log_contains(dir.path(), b"STOCK.EXPIRE")
    });
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(2, 1, 0, 1));
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "1"]),
        "$7\r\nEXPIRED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.TAKE", "sku", "2"]),
        "*2\r\n$2\r\nOK\r\n:0\r\n"
    );

    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info2(0, 1, 2, 1));
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "1"]),
        "$7\r\nEXPIRED\r\n"
    );
    assert_eq!(
        raw.call(&["STOCK.CONFIRM", "sku", "2"]),
        "$9\r\nCONFIRMED\r\n"
    );
}

/// An ID pins the first reply of ADD, TAKE and RESERVE: repeats replay it and change nothing, also after
/// kill -9; a restart gives identical STOCK.INFO.
#[test]
fn request_ids_and_restart() {
    let (_dir, mut server) = start("stock-restart");
    let mut raw = server.raw();
    assert_eq!(
        raw.call(&["STOCK.ADD", "sku", "10", "ID", "add-1"]),
        ":10\r\n"
    );
    let take = raw.call(&["STOCK.TAKE", "sku", "3", "ID", "take-1"]);
    assert_eq!(take, "*2\r\n$2\r\nOK\r\n:7\r\n");
    let reserve = raw.call(&["STOCK.RESERVE", "sku", "2", "3600000", "ID", "res-1"]);
    assert_eq!(reserve, "*3\r\n$2\r\nOK\r\n:1\r\n:5\r\n");
    raw.call(&["STOCK.TAKE", "sku", "1"]);
    let repeats = [
        (
            &["STOCK.ADD", "sku", "10", "ID", "add-1"][..],
            ":10\r\n".to_string(),
        ),
        (&["STOCK.TAKE", "sku", "3", "ID", "take-1"], take.clone()),
        (
            &["STOCK.RESERVE", "sku", "2", "3600000", "ID", "res-1"],
            reserve.clone(),
        ),
    ];
    for (arguments, expected) in &repeats {
        assert_eq!(&raw.call(arguments), expected);
    }
    let info = raw.call(&["STOCK.INFO", "sku"]);
    assert_eq!(info, info2(4, 2, 4, 1));

    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info);
    for (arguments, expected) in &repeats {
        assert_eq!(&raw.call(arguments), expected);
    }
    assert_eq!(raw.call(&["STOCK.INFO", "sku"]), info);
    // Reservation ids continue after the restart.
    assert_eq!(
        raw.call(&["STOCK.RESERVE", "sku", "1", "3600000"]),
        "*3\r\n$2\r\nOK\r\n:2\r\n:3\r\n"
    );
}
