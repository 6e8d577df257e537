//! Federation benchmark: start-up time, idle memory, and chat throughput between users of
//! two servers over s2s, for imfed-server and (when installed) Prosody, with the same client.
//!
//! Run with `cargo bench -p imfed-server --bench federation`. Options (environment):
//! `IMFED_BENCH_MESSAGES` (default 5000), `IMFED_BENCH_PROSODY` (`0` skips Prosody).
//! Loops are bounded in count and time; everything binds to loopback.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use imfed_xmpp::{Element, ns};
use support::{Client, ServerProc, federated_pair, free_port, start_prosody, vendor};

/// Bound on the whole throughput run of one pair.
const RUN_BOUND: Duration = Duration::from_secs(120);

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Sends `count` chat messages from `alice` to `bob` as fast as the socket takes them and
/// returns the time until bob has them all, checking order on the way.
async fn throughput(alice: &mut Client, bob: &mut Client, bob_jid: &str, count: usize) -> Duration {
    // Warm the link up: the first message sets up the s2s stream and dialback.
    alice.chat(bob_jid, "warm-up").await;
    bob.expect("warm-up", |e| {
        e.child_text("body", ns::CLIENT).as_deref() == Some("warm-up")
    })
    .await;
    let started = Instant::now();
    let sender = async {
        for i in 0..count {
            alice.chat(bob_jid, &format!("m{i}")).await;
        }
    };
    let receiver = async {
        for i in 0..count {
            let want = format!("m{i}");
            let got = bob
                .expect("bench message", |e: &Element| {
                    e.name == "message" && e.child("body", ns::CLIENT).is_some()
                })
                .await;
            assert_eq!(
                got.child_text("body", ns::CLIENT).as_deref(),
                Some(want.as_str()),
                "order kept"
            );
        }
    };
    tokio::time::timeout(RUN_BOUND, async { tokio::join!(sender, receiver) })
        .await
        .expect("throughput run exceeded its bound");
    started.elapsed()
}

fn report(label: &str, count: usize, elapsed: Duration) {
    println!(
        "{label:<28} {count} messages in {:>8.1} ms = {:>9.0} msg/s",
        elapsed.as_secs_f64() * 1e3,
        count as f64 / elapsed.as_secs_f64()
    );
}

async fn imfed(count: usize) {
    let mut startups = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let server = ServerProc::start("a.test", &["--tls", "off"]);
        startups.push(started.elapsed());
        drop(server);
    }
    startups.sort();
    println!(
        "imfed-server start-up (spawn to ready line): median {:.1} ms, max {:.1} ms",
        startups[2].as_secs_f64() * 1e3,
        startups[4].as_secs_f64() * 1e3
    );
    let (a, b) = federated_pair(&["--tls", "off"]).await;
    println!(
        "imfed-server idle RSS: {} KiB",
        rss_kib(a.pid()).map_or("?".into(), |k| k.to_string())
    );
    a.create_account("alice", "pw").await;
    b.create_account("bob", "pw").await;
    let mut alice = Client::login(a.c2s, "alice@a.test/bench", "pw").await;
    let mut bob = Client::login(b.c2s, "bob@b.test/bench", "pw").await;
    bob.presence(None, None).await;
    let elapsed = throughput(&mut alice, &mut bob, "bob@b.test/bench", count).await;
    report("imfed-server -> imfed-server", count, elapsed);
    println!(
        "imfed-server RSS after run: {} KiB / {} KiB",
        rss_kib(a.pid()).map_or("?".into(), |k| k.to_string()),
        rss_kib(b.pid()).map_or("?".into(), |k| k.to_string())
    );
}

async fn prosody(count: usize) {
    if !support::prosody_installed() {
        println!("Prosody not installed (vendors/prosody/install.sh): skipped");
        return;
    }
    let (a_c2s, a_s2s, b_c2s, b_s2s) = (free_port(), free_port(), free_port(), free_port());
    let started = Instant::now();
    let a = start_prosody("pa.test", a_c2s, a_s2s, ("pb.test", b_s2s));
    println!(
        "Prosody start-up (to ports open): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let b = start_prosody("pb.test", b_c2s, b_s2s, ("pa.test", a_s2s));
    println!(
        "Prosody idle RSS: {} KiB",
        rss_kib(a.pid).map_or("?".into(), |k| k.to_string())
    );
    for (server, user) in [(&a, "alice"), (&b, "bob")] {
        let domain = if user == "alice" {
            "pa.test"
        } else {
            "pb.test"
        };
        let status = Command::new(vendor("register.sh"))
            .args([server.dir.to_str().unwrap(), user, domain, "pw"])
            .status()
            .expect("register");
        assert!(status.success());
    }
    let mut alice = Client::login(a.c2s, "alice@pa.test/bench", "pw").await;
    let mut bob = Client::login(b.c2s, "bob@pb.test/bench", "pw").await;
    bob.presence(None, None).await;
    let elapsed = throughput(&mut alice, &mut bob, "bob@pb.test/bench", count).await;
    report("Prosody -> Prosody", count, elapsed);
}

fn main() {
    // `cargo bench` passes --bench; anything else (like `cargo test --benches`) lists nothing.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let count: usize = std::env::var("IMFED_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
        .min(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        imfed(count).await;
        if std::env::var("IMFED_BENCH_PROSODY").as_deref() != Ok("0") {
            prosody(count).await;
        }
    });
}
