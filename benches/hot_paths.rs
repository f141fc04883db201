//! Criterion micro-benchmarks of the hot paths: RESP decode and encode, command dispatch, COUPON.ISSUE,
//! LIKE.ADD, log record framing with its CRC, and replay. Run with `cargo bench --bench hot_paths`.
//!
//! These measure the CPU cost of one step in isolation; whole-server throughput against Redis is measured
//! with `benches/compare_redis.sh` and `dibs-bench` (see the README).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use dibs::aof::record;
use dibs::command::Mutations;
use dibs::dispatch;
use dibs::resp::{self, DecodeLimits, Protocol, Reply, Request, RequestDecoder};
use dibs::store::likes::Likes;
use dibs::store::Store;

/// A pipeline of `count` SET requests, as a client would send it.
fn pipeline(count: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for index in 0..count {
        let key = format!("key:{index}");
        resp::encode_request(
            &[b"SET", key.as_bytes(), b"value-of-some-length"],
            &mut bytes,
        );
    }
    bytes
}

fn decode(criterion: &mut Criterion) {
    let input = pipeline(100);
    let mut group = criterion.benchmark_group("resp");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode 100 SET requests", |bench| {
        bench.iter(|| {
            let mut decoder = RequestDecoder::new();
            let mut position = 0;
            let mut arguments = 0;
            while let Ok(Some(request)) =
                decoder.decode(&input[position..], DecodeLimits::AUTHENTICATED)
            {
                match request {
                    Request::Multibulk { consumed } => {
                        arguments += decoder.argument_ranges().len();
                        position += consumed;
                    }
                    _ => unreachable!("only multibulks here"),
                }
            }
            black_box(arguments)
        })
    });
    let replies = [
        Reply::OK,
        Reply::Integer(12_345),
        Reply::bulk(b"value-of-some-length"),
        Reply::Array(vec![
            Reply::bulk(b"ISSUED"),
            Reply::Integer(115),
            Reply::Integer(885),
        ]),
        Reply::Null,
    ];
    group.throughput(Throughput::Elements(replies.len() as u64));
    group.bench_function("encode 5 replies (RESP3)", |bench| {
        let mut out = Vec::with_capacity(256);
        bench.iter(|| {
            out.clear();
            for reply in &replies {
                resp::encode(reply, Protocol::Resp3, &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

/// Runs one request through lookup, arity check and the handler, as the event loop does.
fn run(store: &mut Store, arguments: &[&[u8]], now_ms: u64, mutations: &mut Mutations) -> Reply {
    let spec = dispatch::lookup(arguments[0]).expect("known command");
    assert!(spec.arity.accepts(arguments.len()));
    let dispatch::Handler::Store(handler) = spec.handler else {
        unreachable!("a data command")
    };
    let reply = dispatch::execute(store, spec, handler, arguments, now_ms, mutations);
    mutations.clear();
    reply
}

fn dispatch(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("dispatch");
    let mut store = Store::new(7);
    let mut mutations = Mutations::new();
    for index in 0..10_000 {
        let key = format!("key:{index}");
        run(
            &mut store,
            &[b"SET", key.as_bytes(), b"v"],
            1,
            &mut mutations,
        );
    }
    group.bench_function("SET existing key", |bench| {
        bench.iter(|| {
            black_box(run(
                &mut store,
                &[b"SET", b"key:42", b"value"],
                1,
                &mut mutations,
            ))
        })
    });
    group.bench_function("GET", |bench| {
        bench.iter(|| black_box(run(&mut store, &[b"GET", b"key:42"], 1, &mut mutations)))
    });
    group.bench_function("INCR", |bench| {
        bench.iter(|| black_box(run(&mut store, &[b"INCR", b"counter"], 1, &mut mutations)))
    });
    run(
        &mut store,
        &[b"COUPON.CREATE", b"rush", b"10000000"],
        1,
        &mut mutations,
    );
    let mut user = 0u64;
    group.bench_function("COUPON.ISSUE new user", |bench| {
        bench.iter(|| {
            user += 1;
            let name = user.to_string();
            black_box(run(
                &mut store,
                &[b"COUPON.ISSUE", b"rush", name.as_bytes()],
                1,
                &mut mutations,
            ))
        })
    });
    group.finish();
}

fn likes(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("likes");
    group.bench_function("Likes::add integer user to a post of 100k", |bench| {
        bench.iter_batched(
            || {
                let mut likes = Likes::new();
                for user in 0..100_000u32 {
                    likes.add(user.to_string().as_bytes()).expect("add");
                }
                likes
            },
            |mut likes| {
                for user in 1_000_000..1_000_100u32 {
                    black_box(likes.add(user.to_string().as_bytes()).expect("add"));
                }
                likes
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn log_records(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("log");
    let mut mutations = Mutations::new();
    mutations.push(
        1_795_000_000_000,
        [&b"SET"[..], b"key:123456", b"value-of-some-length"],
    );
    let payload = mutations.take_payload().expect("one command").to_vec();
    group.throughput(Throughput::Bytes(
        (payload.len() + record::RECORD_HEADER_SIZE) as u64,
    ));
    group.bench_function("frame one SET record with CRC", |bench| {
        let mut out = Vec::with_capacity(1024);
        let mut sequence = 0;
        bench.iter(|| {
            out.clear();
            sequence += 1;
            record::encode_record(&mut out, sequence, &payload);
            black_box(out.len())
        })
    });
    group.finish();
}

fn replay(criterion: &mut Criterion) {
    const RECORDS: u64 = 100_000;
    let directory = std::env::temp_dir().join(format!("dibs-bench-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("temp dir");
    let mut file = record::file_header(1).to_vec();
    let mut mutations = Mutations::new();
    for sequence in 1..=RECORDS {
        let key = format!("key:{}", sequence % 10_000);
        if sequence % 2 == 0 {
            mutations.push(
                1_795_000_000_000,
                [&b"SET"[..], key.as_bytes(), b"value-of-some-length"],
            );
        } else {
            mutations.push(
                1_795_000_000_000,
                [
                    &b"SET"[..],
                    b"counter",
                    sequence.to_string().as_bytes(),
                    b"KEEPTTL",
                ],
            );
        }
        record::encode_record(
            &mut file,
            sequence,
            mutations.take_payload().expect("payload"),
        );
    }
    std::fs::write(
        directory.join(dibs::aof::directory::log_file_name(1)),
        &file,
    )
    .expect("write log");
    let config = dibs::config::Config::for_tests(0, directory.clone());
    let mut group = criterion.benchmark_group("replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("recover 100k SET records", |bench| {
        bench.iter(|| {
            let recovered = dibs::recovery::recover(&config, 7).expect("recover");
            black_box(recovered.records_replayed)
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&directory);
}

criterion_group!(hot_paths, decode, dispatch, likes, log_records, replay);
criterion_main!(hot_paths);
