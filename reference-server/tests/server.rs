//! imfed-server over real sockets: client streams, and two server processes federating with
//! dialback on loopback, in plaintext and with STARTTLS.

mod rvp;
mod sip;
mod support;

use std::time::Duration;

use imfed_xmpp::client::{Mechanism, TlsPolicy};
use imfed_xmpp::{Element, StreamEvent, ns};
use support::{Client, ServerProc, federated_pair, stanza_from};

fn error_condition(stanza: &Element) -> Option<String> {
    stanza
        .child("error", ns::CLIENT)
        .and_then(|error| error.elements().find(|c| c.ns == ns::STANZA_ERRORS))
        .map(|c| c.name.clone())
}

/// One user on each server: cross-domain subscribe/approve both ways, presence broadcast
/// with show and status, chat both ways with Unicode intact, and unavailable presence when
/// one side vanishes without logging out.
pub async fn exchange(
    alice: (&std::net::SocketAddr, &str, &str),
    bob: (&std::net::SocketAddr, &str, &str),
) {
    let alice_bare = alice.1.split('/').next().unwrap().to_string();
    let bob_bare = bob.1.split('/').next().unwrap().to_string();
    let mut a = Client::login(*alice.0, alice.1, alice.2).await;
    let mut b = Client::login(*bob.0, bob.1, bob.2).await;
    a.roster().await;
    b.roster().await;
    a.presence(None, None).await;
    b.presence(None, None).await;

    // alice asks for bob's presence; bob approves (RFC 6121 §3.1).
    a.presence(Some("subscribe"), Some(&bob_bare)).await;
    a.expect("roster push with ask", |e| {
        e.child("query", ns::ROSTER)
            .and_then(|q| q.child("item", ns::ROSTER))
            .is_some_and(|item| item.attr("ask") == Some("subscribe"))
    })
    .await;
    b.expect(
        "subscribe",
        stanza_from("presence", &alice_bare, Some("subscribe")),
    )
    .await;
    b.presence(Some("subscribed"), Some(&alice_bare)).await;
    a.expect(
        "subscribed",
        stanza_from("presence", &bob_bare, Some("subscribed")),
    )
    .await;
    // §3.1.5: bob's server sends bob's current presence once approved.
    a.expect("bob's presence", stanza_from("presence", &bob_bare, None))
        .await;

    // And the other way round.
    b.presence(Some("subscribe"), Some(&alice_bare)).await;
    a.expect(
        "subscribe",
        stanza_from("presence", &bob_bare, Some("subscribe")),
    )
    .await;
    a.presence(Some("subscribed"), Some(&bob_bare)).await;
    b.expect(
        "subscribed",
        stanza_from("presence", &alice_bare, Some("subscribed")),
    )
    .await;
    b.expect(
        "alice's presence",
        stanza_from("presence", &alice_bare, None),
    )
    .await;
    for client in [&mut a, &mut b] {
        let roster = client.roster().await;
        assert_eq!(roster.len(), 1, "{}", client.jid);
        assert_eq!(
            roster[0].attr("subscription"),
            Some("both"),
            "{}",
            client.jid
        );
    }

    // Presence broadcast with show and status (RFC 6121 §4.4).
    a.send(
        Element::new("presence", ns::CLIENT)
            .with_child(Element::new("show", ns::CLIENT).with_text("away"))
            .with_child(Element::new("status", ns::CLIENT).with_text("lunch ☕")),
    )
    .await;
    let seen = b
        .expect("alice away", |e| {
            stanza_from("presence", &alice_bare, None)(e)
                && e.child_text("show", ns::CLIENT).as_deref() == Some("away")
        })
        .await;
    assert_eq!(
        seen.child_text("status", ns::CLIENT).as_deref(),
        Some("lunch ☕")
    );

    // Chat both ways, Unicode intact, the sender's full JID stamped.
    a.chat(&bob_bare, "héllo ☃ 你好").await;
    let message = b
        .expect("chat", stanza_from("message", &alice_bare, Some("chat")))
        .await;
    assert_eq!(
        message.child_text("body", ns::CLIENT).as_deref(),
        Some("héllo ☃ 你好")
    );
    assert_eq!(message.attr("from"), Some(a.jid.to_string().as_str()));
    let alice_full = a.jid.to_string();
    b.chat(&alice_full, "hi back").await;
    let reply = a
        .expect("reply", stanza_from("message", &bob_bare, Some("chat")))
        .await;
    assert_eq!(
        reply.child_text("body", ns::CLIENT).as_deref(),
        Some("hi back")
    );

    // bob vanishes without unavailable presence: alice hears of it (RFC 6121 §4.5.3.2).
    b.abort();
    a.expect(
        "bob unavailable",
        stanza_from("presence", &bob_bare, Some("unavailable")),
    )
    .await;
    a.logout().await;
}

/// [`exchange`] between two imfed-server processes, then the federation log and links.
async fn federation_round(args: &[&str], expect_tls: bool) {
    let (a, b) = federated_pair(args).await;
    a.create_account("alice", "pw-a").await;
    b.create_account("bob", "pw-b").await;
    let probe = Client::login(a.c2s, "alice@a.test/probe", "pw-a").await;
    assert_eq!(probe.secure(), expect_tls);
    probe.logout().await;
    exchange(
        (&a.c2s, "alice@a.test/phone", "pw-a"),
        (&b.c2s, "bob@b.test/laptop", "pw-b"),
    )
    .await;

    // The federation log saw stanzas both ways on both servers, and the links say so.
    for (server, remote) in [(&a, "b.test"), (&b, "a.test")] {
        for direction in ["in", "out"] {
            let log = server
                .get(&format!(
                    "/log?remote={remote}&direction={direction}&kind=stanza"
                ))
                .await;
            let entries = log["entries"].as_array().expect("entries");
            assert!(
                !entries.is_empty(),
                "{} logged nothing {direction}",
                server.domain
            );
        }
        let links = server.get("/links").await;
        let established: Vec<&serde_json::Value> = links
            .as_array()
            .expect("links")
            .iter()
            .filter(|l| l["state"] == "established" && l["remote"] == remote)
            .collect();
        assert!(
            established.iter().any(|l| l["direction"] == "outbound"),
            "{}: {links}",
            server.domain
        );
        assert!(established.iter().any(|l| l["direction"] == "inbound"));
        assert!(
            established.iter().all(|l| l["tls"] == expect_tls),
            "{links}"
        );
    }
    let dialback = a.get("/log?remote=b.test&kind=dialback").await;
    let xml: Vec<&str> = dialback["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["xml"].as_str().unwrap())
        .collect();
    assert!(
        xml.iter()
            .any(|x| x.starts_with("<db:result") && x.contains("type='valid'")),
        "{xml:?}"
    );
    assert!(xml.iter().any(|x| x.starts_with("<db:verify")), "{xml:?}");
}

#[tokio::test]
async fn federation_in_plaintext() {
    federation_round(&["--tls", "off"], false).await;
}

#[tokio::test]
async fn federation_with_starttls() {
    federation_round(&["--tls", "required"], true).await;
}

/// XEP-0178 both ways: two servers that authenticate by certificate only exchange
/// everything [`exchange`] does over SASL EXTERNAL, no dialback on the wire; a third whose
/// certificate no trusted CA signed is refused, and its user's message bounces.
#[tokio::test]
async fn federation_by_certificate_only() {
    let dir = std::env::temp_dir().join(format!(
        "imfed-external-{}-{}",
        std::process::id(),
        imfed_server::xmpp::random_id(6)
    ));
    let pki = imfed_server::tls::RunPki::new(&[&["a.test"], &["b.test"]]).unwrap();
    let mut paths = Vec::new();
    for index in 0..2 {
        let mut config = imfed_server::config::Config::default();
        pki.configure(index, &dir, &mut config).unwrap();
        let show = |path: Option<std::path::PathBuf>| path.unwrap().display().to_string();
        paths.push((
            show(config.tls_cert),
            show(config.tls_key),
            show(config.tls_trust),
        ));
    }
    let start = |domain: &str, (cert, key, trust): &(String, String, String)| {
        ServerProc::start(
            domain,
            &[
                "--tls",
                "required",
                "--s2s-secure-auth",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--tls-trust",
                trust,
                "--s2s-timeout-ms",
                "3000",
            ],
        )
    };
    let a = start("a.test", &paths[0]);
    let b = start("b.test", &paths[1]);
    // c.test trusts the run's CA but presents the self-signed certificate made at start.
    let c = ServerProc::start(
        "c.test",
        &[
            "--tls",
            "required",
            "--s2s-secure-auth",
            "--tls-trust",
            &paths[0].2,
            "--s2s-timeout-ms",
            "3000",
        ],
    );
    a.route("b.test", &b.s2s.to_string()).await;
    b.route("a.test", &a.s2s.to_string()).await;
    c.route("b.test", &b.s2s.to_string()).await;
    a.create_account("alice", "pw-a").await;
    b.create_account("bob", "pw-b").await;
    c.create_account("carol", "pw-c").await;
    exchange(
        (&a.c2s, "alice@a.test/phone", "pw-a"),
        (&b.c2s, "bob@b.test/laptop", "pw-b"),
    )
    .await;
    for (server, remote) in [(&a, "b.test"), (&b, "a.test")] {
        let log = server.get(&format!("/log?remote={remote}")).await;
        let xml: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["xml"].as_str().unwrap())
            .collect();
        assert!(
            xml.iter()
                .any(|x| x.starts_with("<auth") && x.contains("EXTERNAL")),
            "{}: {xml:?}",
            server.domain
        );
        assert!(xml.iter().any(|x| x.starts_with("<success")), "{xml:?}");
        assert!(!xml.iter().any(|x| x.starts_with("<db:")), "{xml:?}");
    }
    let mut carol = Client::login(c.c2s, "carol@c.test/r", "pw-c").await;
    carol.chat("bob@b.test", "let me in").await;
    let bounce = carol
        .expect(
            "bounce",
            stanza_from("message", "bob@b.test", Some("error")),
        )
        .await;
    assert!(error_condition(&bounce).is_some(), "{bounce:?}");
    let links = b.get("/links").await;
    assert!(
        !links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["remote"] == "c.test" && l["state"] == "established"),
        "{links}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn unreachable_domains_bounce_within_the_bound() {
    // A closed port: connection refused, so remote-server-not-found.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    // A listener that accepts and never speaks: remote-server-timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let a = ServerProc::start(
        "a.test",
        &[
            "--tls",
            "off",
            "--remote",
            &format!("closed.test={closed_addr}"),
            "--remote",
            &format!("silent.test={silent_addr}"),
            "--s2s-timeout-ms",
            "1500",
        ],
    );
    a.create_account("alice", "pw").await;
    let mut alice = Client::login(a.c2s, "alice@a.test/r", "pw").await;
    for (domain, condition) in [
        ("closed.test", "remote-server-not-found"),
        ("nowhere.test", "remote-server-not-found"),
        ("silent.test", "remote-server-timeout"),
    ] {
        let started = std::time::Instant::now();
        alice
            .chat(&format!("someone@{domain}"), "anyone there?")
            .await;
        let error = alice
            .expect(
                "bounce",
                stanza_from("message", &format!("someone@{domain}"), Some("error")),
            )
            .await;
        assert_eq!(
            error_condition(&error).as_deref(),
            Some(condition),
            "{domain}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{domain}: {:?}",
            started.elapsed()
        );
    }
    held.abort();
}

#[tokio::test]
async fn client_streams_login_roster_and_errors() {
    let server = ServerProc::start("a.test", &["--c2s-tls", "optional"]);
    server.create_account("alice", "secret").await;
    server.create_account("carol", "pw").await;

    // SCRAM over TLS, PLAIN without TLS (allowed by --allow-plain), bad password refused.
    let mut alice = Client::login_with(
        server.c2s,
        "alice@a.test/one",
        "secret",
        TlsPolicy::Required,
        Some(Mechanism::ScramSha1),
    )
    .await
    .unwrap();
    assert!(alice.secure());
    let plain = Client::login_with(
        server.c2s,
        "alice@a.test/two",
        "secret",
        TlsPolicy::Never,
        Some(Mechanism::Plain),
    )
    .await
    .unwrap();
    assert!(!plain.secure());
    plain.logout().await;
    for mechanism in [Mechanism::ScramSha1, Mechanism::Plain] {
        let refused = Client::login_with(
            server.c2s,
            "alice@a.test",
            "wrong",
            TlsPolicy::Never,
            Some(mechanism),
        )
        .await;
        assert!(
            refused.err().unwrap().contains("not-authorized"),
            "{mechanism:?}"
        );
    }
    // Resource conflict is refused (RFC 6120 §7.7.2.2, option 2).
    let twice = Client::login_with(
        server.c2s,
        "alice@a.test/one",
        "secret",
        TlsPolicy::IfOffered,
        None,
    )
    .await;
    assert!(
        twice.err().unwrap().contains("conflict"),
        "the same resource must not bind twice"
    );

    // Roster set, get and remove, with pushes (RFC 6121 §2).
    alice.roster().await;
    let set = alice
        .iq(
            "set",
            None,
            Element::new("query", ns::ROSTER).with_child(
                Element::new("item", ns::ROSTER)
                    .with_attr("jid", "carol@a.test")
                    .with_attr("name", "Carol")
                    .with_child(Element::new("group", ns::ROSTER).with_text("Friends")),
            ),
        )
        .await;
    assert_eq!(set.attr("type"), Some("result"));
    let roster = alice.roster().await;
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].attr("name"), Some("Carol"));
    assert_eq!(roster[0].attr("subscription"), Some("none"));
    let remove = alice
        .iq(
            "set",
            None,
            Element::new("query", ns::ROSTER).with_child(
                Element::new("item", ns::ROSTER)
                    .with_attr("jid", "carol@a.test")
                    .with_attr("subscription", "remove"),
            ),
        )
        .await;
    assert_eq!(remove.attr("type"), Some("result"));
    assert!(alice.roster().await.is_empty());

    // Messages: unknown user and offline user get service-unavailable (RFC 6121 §8.5.1,
    // §8.5.2.2.1); a headline to an offline user is dropped silently.
    alice.chat("nobody@a.test", "hello?").await;
    let error = alice
        .expect(
            "error",
            stanza_from("message", "nobody@a.test", Some("error")),
        )
        .await;
    assert_eq!(
        error_condition(&error).as_deref(),
        Some("service-unavailable")
    );
    alice.chat("carol@a.test", "are you there?").await;
    let error = alice
        .expect(
            "error",
            stanza_from("message", "carol@a.test", Some("error")),
        )
        .await;
    assert_eq!(
        error_condition(&error).as_deref(),
        Some("service-unavailable")
    );

    // Ping the server (XEP-0199).
    let pong = alice
        .iq("get", Some("a.test"), Element::new("ping", ns::PING))
        .await;
    assert_eq!(pong.attr("type"), Some("result"));

    // Bad XML ends the stream with not-well-formed (RFC 6120 §4.9.3.13).
    alice.send_raw(b"<message><body>oops</message>").await;
    let mut saw = None;
    for _ in 0..10 {
        match alice.next_event().await {
            Ok(StreamEvent::Element(e)) if e.name == "error" && e.ns == ns::STREAM => {
                saw = e.elements().next().map(|c| c.name.clone());
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert_eq!(saw.as_deref(), Some("not-well-formed"));
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let mut server = ServerProc::start("a.test", &[]);
    server.create_account("alice", "pw").await;
    let client = Client::login(server.c2s, "alice@a.test/r", "pw").await;
    assert!(
        server.terminate(),
        "imfed-server did not exit after SIGTERM"
    );
    drop(client);
}

/// A real server nobody here wrote: Prosody 0.12 (Debian's package) federates with
/// imfed-server in both directions, with users on each side driving each exchange.
#[tokio::test]
async fn prosody_federates_with_imfed_server_both_ways() {
    support::ensure_prosody();
    let (p_c2s, p_s2s) = (support::free_port(), support::free_port());
    let imfed = ServerProc::start(
        "a.test",
        &[
            "--tls",
            "off",
            "--remote",
            &format!("pb.test=127.0.0.1:{p_s2s}"),
        ],
    );
    let prosody = support::start_prosody("pb.test", p_c2s, p_s2s, ("a.test", imfed.s2s.port()));
    imfed.create_account("alice", "pw-a").await;
    imfed.create_account("dave", "pw-d").await;
    support::prosody_register(&prosody, "bob", "pb.test", "pw-b");
    support::prosody_register(&prosody, "carol", "pb.test", "pw-c");
    // imfed-server's user leads, then Prosody's user leads (each exchange subscribes both
    // ways, so both s2s directions carry requests, approvals, presence and messages).
    exchange(
        (&imfed.c2s, "alice@a.test/phone", "pw-a"),
        (&prosody.c2s, "bob@pb.test/laptop", "pw-b"),
    )
    .await;
    exchange(
        (&prosody.c2s, "carol@pb.test/desk", "pw-c"),
        (&imfed.c2s, "dave@a.test/tablet", "pw-d"),
    )
    .await;
    for direction in ["in", "out"] {
        let log = imfed
            .get(&format!(
                "/log?remote=pb.test&direction={direction}&kind=stanza"
            ))
            .await;
        assert!(
            !log["entries"].as_array().unwrap().is_empty(),
            "no stanzas {direction} with Prosody"
        );
    }
    let links = imfed.get("/links").await;
    let established = |direction: &str| {
        links.as_array().unwrap().iter().any(|l| {
            l["remote"] == "pb.test" && l["direction"] == direction && l["state"] == "established"
        })
    };
    assert!(established("outbound") && established("inbound"), "{links}");
    drop(prosody);
}

/// An independent client library (slixmpp, Python) logs in to imfed-server and uses the
/// roster, presence subscriptions and messages against it.
#[tokio::test]
async fn an_independent_client_library_works_against_imfed_server() {
    let setup = std::process::Command::new(support::repo_path("interop/slixmpp/setup.sh"))
        .output()
        .expect("run interop/slixmpp/setup.sh");
    assert!(
        setup.status.success(),
        "slixmpp setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8_lossy(&setup.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let (a, b) = federated_pair(&["--tls", "off"]).await;
    a.create_account("alice", "pw-a").await;
    b.create_account("bob", "pw-b").await;
    for (label, b_jid, b_addr) in [
        ("same server", "alice2@a.test", a.c2s),
        ("across federation", "bob@b.test", b.c2s),
    ] {
        if label == "same server" {
            a.create_account("alice2", "pw-b").await;
        }
        let output = tokio::process::Command::new(&python)
            .arg(support::repo_path("interop/slixmpp/scenario.py"))
            .args([
                "--tls",
                "never",
                "--a-jid",
                "alice@a.test",
                "--a-password",
                "pw-a",
            ])
            .args(["--a-addr", &a.c2s.to_string()])
            .args([
                "--b-jid",
                b_jid,
                "--b-password",
                "pw-b",
                "--b-addr",
                &b_addr.to_string(),
            ])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(90), output)
            .await
            .expect("slixmpp scenario exceeded 90s")
            .expect("run scenario.py");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "slixmpp scenario ({label}) failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!stdout.contains("FAIL"), "{label}: {stdout}");
        assert!(
            stdout.matches(" ok ").count() >= 4,
            "{label}: too few steps ran:\n{stdout}"
        );
        // The scenario's subscriptions leave state behind; the next round uses new accounts.
    }
}

/// A recipient that does not read for a while loses nothing: delivery waits for room in
/// the session queue (backpressure to the sender's stream) instead of dropping stanzas,
/// and order is kept (RFC 6120 §10.1).
#[tokio::test]
async fn a_slow_reader_loses_no_messages_across_federation() {
    const COUNT: usize = 10_000;
    let (a, b) = federated_pair(&["--tls", "off"]).await;
    a.create_account("alice", "pw").await;
    b.create_account("bob", "pw").await;
    let mut alice = Client::login(a.c2s, "alice@a.test/r", "pw").await;
    let mut bob = Client::login(b.c2s, "bob@b.test/r", "pw").await;
    bob.presence(None, None).await;
    // The link is up once one message went through.
    alice.chat("bob@b.test/r", "first").await;
    bob.expect(
        "first",
        stanza_from("message", "alice@a.test", Some("chat")),
    )
    .await;
    let (sent_tx, mut sent_rx) = tokio::sync::watch::channel(0usize);
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            alice.chat("bob@b.test/r", &format!("m{i}")).await;
            sent_tx.send_replace(i + 1);
        }
        alice
    });
    // bob reads nothing until more than a session queue's worth is under way (or the
    // sender is held back by backpressure for a while, which is also fine).
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        sent_rx.wait_for(|sent| *sent > imfed_server::xmpp::QUEUE + 1000),
    )
    .await;
    for i in 0..COUNT {
        let message = bob
            .expect(
                "message",
                stanza_from("message", "alice@a.test", Some("chat")),
            )
            .await;
        assert_eq!(
            message.child_text("body", ns::CLIENT),
            Some(format!("m{i}")),
            "message {i} lost or out of order"
        );
    }
    sender.await.unwrap().logout().await;
}

/// What a hostile s2s connection got back: the stream error condition, if any, and how long
/// the server took to end the connection.
async fn hostile(
    s2s: std::net::SocketAddr,
    bytes: Vec<u8>,
    bound: Duration,
) -> (Option<String>, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(s2s).await.expect("connect");
    // The server may cut the connection while the bytes are still going out.
    let _ = tcp.write_all(&bytes).await;
    let mut received = Vec::new();
    let mut buf = vec![0; 8192];
    loop {
        match tokio::time::timeout(bound, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept a hostile connection open for {bound:?}"),
        }
    }
    let text = String::from_utf8_lossy(&received);
    let condition = text
        .split("xmlns='urn:ietf:params:xml:ns:xmpp-streams'")
        .next()
        .filter(|_| text.contains("stream:error"))
        .and_then(|before| before.rsplit('<').next())
        .map(|name| name.trim().to_string());
    (condition, started.elapsed())
}

/// imfed-server refuses hostile input on its s2s listener with the stream error RFC 6120
/// §4.9.3 names, within its documented bounds (`--s2s-auth-timeout-ms`, the per-address
/// connection limit, stanza size, nesting depth and attribute count), and afterwards still
/// serves its users. The figures it prints are in the README.
#[tokio::test]
async fn hostile_input_is_refused_within_bounds_and_users_are_still_served() {
    let server = ServerProc::start(
        "a.test",
        &[
            "--s2s-auth-timeout-ms",
            "1000",
            "--s2s-max-connections-per-ip",
            "16",
        ],
    );
    server.create_account("alice", "pw").await;
    server.create_account("bob", "pw").await;
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
        xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
        from='evil.test' to='a.test' version='1.0'>";
    let deep = format!("{header}{}", "<a>".repeat(100));
    let attributes: String = (0..2000).map(|i| format!(" a{i}='x'")).collect();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "a 300 KiB stanza",
            format!(
                "{header}<message><body>{}</body></message>",
                "x".repeat(300 * 1024)
            )
            .into_bytes(),
            &["policy-violation"],
        ),
        (
            "100 levels of nesting",
            deep.into_bytes(),
            &["policy-violation"],
        ),
        (
            "2000 attributes",
            format!("{header}<message{attributes}/>").into_bytes(),
            &["policy-violation"],
        ),
        (
            "a comment",
            format!("{header}<!-- x -->").into_bytes(),
            &["restricted-xml"],
        ),
        (
            "an entity declaration",
            format!("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>{header}").into_bytes(),
            &["restricted-xml"],
        ),
        (
            "bytes that are not XML",
            b"\x00\xff\xfe GET / HTTP/1.1\r\n\r\n".to_vec(),
            &["not-well-formed", "unsupported-encoding"],
        ),
        (
            "a stanza before authentication",
            format!("{header}<message from='x@evil.test' to='alice@a.test'/>").into_bytes(),
            &["not-authorized"],
        ),
        (
            "a header that never ends",
            header.trim_end_matches('>').as_bytes().to_vec(),
            &["connection-timeout"],
        ),
        (
            "a stream that never authenticates",
            header.as_bytes().to_vec(),
            &["connection-timeout"],
        ),
    ];
    let bound = Duration::from_secs(5);
    for (what, bytes, conditions) in &cases {
        let (condition, took) = hostile(server.s2s, bytes.clone(), bound).await;
        eprintln!("hostile input: {what}: {condition:?} after {took:?}");
        assert!(
            condition
                .as_deref()
                .is_some_and(|c| conditions.contains(&c)),
            "{what}: {condition:?}, expected one of {conditions:?}"
        );
        if conditions == &["connection-timeout"] {
            assert!(
                took >= Duration::from_millis(900) && took < Duration::from_secs(3),
                "{what}: {took:?}"
            );
        }
    }
    // 40 silent connections at once from one address: 16 are held until the bound, the
    // other 24 refused at once.
    let started = std::time::Instant::now();
    let flood: Vec<_> = (0..40)
        .map(|_| tokio::spawn(hostile(server.s2s, Vec::new(), bound)))
        .collect();
    let mut refused = 0;
    let mut timed_out = 0;
    for joined in flood {
        match joined.await.expect("flood task").0.as_deref() {
            Some("policy-violation") => refused += 1,
            Some("connection-timeout") => timed_out += 1,
            other => panic!("a flood connection ended with {other:?}"),
        }
    }
    eprintln!(
        "hostile input: 40 connections at once: {refused} refused, {timed_out} timed out, all closed after {:?}",
        started.elapsed()
    );
    assert_eq!((refused, timed_out), (24, 16));
    // The server still serves its users.
    let mut alice = Client::login(server.c2s, "alice@a.test/r", "pw").await;
    let mut bob = Client::login(server.c2s, "bob@a.test/r", "pw").await;
    alice.chat("bob@a.test/r", "still here").await;
    bob.expect("alice's message after the attack", |e| {
        e.name == "message"
            && e.child("body", ns::CLIENT)
                .is_some_and(|b| b.text() == "still here")
    })
    .await;
}
