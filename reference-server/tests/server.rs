//! imfed-server over real sockets: client streams, and two server processes federating with
//! dialback on loopback, in plaintext and with STARTTLS.

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

/// Cross-domain subscribe/approve both ways, presence broadcast, chat both ways, and
/// unavailable on disconnect, between alice@a.test and bob@b.test.
async fn federation_round(args: &[&str], expect_tls: bool) {
    let (a, b) = federated_pair(args).await;
    a.create_account("alice", "pw-a").await;
    b.create_account("bob", "pw-b").await;
    let mut alice = Client::login(a.c2s, "alice@a.test/phone", "pw-a").await;
    let mut bob = Client::login(b.c2s, "bob@b.test/laptop", "pw-b").await;
    assert_eq!(alice.secure(), expect_tls);
    alice.roster().await;
    bob.roster().await;
    alice.presence(None, None).await;
    bob.presence(None, None).await;

    // alice asks for bob's presence; bob approves (RFC 6121 §3.1).
    alice.presence(Some("subscribe"), Some("bob@b.test")).await;
    alice
        .expect("roster push with ask", |e| {
            e.child("query", ns::ROSTER)
                .and_then(|q| q.child("item", ns::ROSTER))
                .is_some_and(|item| item.attr("ask") == Some("subscribe"))
        })
        .await;
    bob.expect(
        "subscribe",
        stanza_from("presence", "alice@a.test", Some("subscribe")),
    )
    .await;
    bob.presence(Some("subscribed"), Some("alice@a.test")).await;
    alice
        .expect(
            "subscribed",
            stanza_from("presence", "bob@b.test", Some("subscribed")),
        )
        .await;
    // §3.1.5: bob's server sends bob's current presence once approved.
    alice
        .expect(
            "bob's presence",
            stanza_from("presence", "bob@b.test", None),
        )
        .await;

    // And the other way round.
    bob.presence(Some("subscribe"), Some("alice@a.test")).await;
    alice
        .expect(
            "subscribe",
            stanza_from("presence", "bob@b.test", Some("subscribe")),
        )
        .await;
    alice.presence(Some("subscribed"), Some("bob@b.test")).await;
    bob.expect(
        "subscribed",
        stanza_from("presence", "alice@a.test", Some("subscribed")),
    )
    .await;
    bob.expect(
        "alice's presence",
        stanza_from("presence", "alice@a.test", None),
    )
    .await;
    let roster = alice.roster().await;
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].attr("subscription"), Some("both"));
    let roster = bob.roster().await;
    assert_eq!(roster[0].attr("subscription"), Some("both"));

    // Presence broadcast with show and status (RFC 6121 §4.4).
    alice
        .send(
            Element::new("presence", ns::CLIENT)
                .with_child(Element::new("show", ns::CLIENT).with_text("away"))
                .with_child(Element::new("status", ns::CLIENT).with_text("lunch ☕")),
        )
        .await;
    let seen = bob
        .expect("alice away", |e| {
            stanza_from("presence", "alice@a.test", None)(e)
                && e.child_text("show", ns::CLIENT).as_deref() == Some("away")
        })
        .await;
    assert_eq!(
        seen.child_text("status", ns::CLIENT).as_deref(),
        Some("lunch ☕")
    );

    // Chat both ways, Unicode intact.
    alice.chat("bob@b.test", "héllo ☃ 你好").await;
    let message = bob
        .expect("chat", stanza_from("message", "alice@a.test", Some("chat")))
        .await;
    assert_eq!(
        message.child_text("body", ns::CLIENT).as_deref(),
        Some("héllo ☃ 你好")
    );
    assert_eq!(message.attr("from"), Some("alice@a.test/phone"));
    bob.chat("alice@a.test/phone", "hi back").await;
    let reply = alice
        .expect("reply", stanza_from("message", "bob@b.test", Some("chat")))
        .await;
    assert_eq!(
        reply.child_text("body", ns::CLIENT).as_deref(),
        Some("hi back")
    );

    // bob vanishes without unavailable presence: alice hears of it (RFC 6121 §4.5.3.2).
    bob.abort();
    alice
        .expect(
            "bob unavailable",
            stanza_from("presence", "bob@b.test", Some("unavailable")),
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
            .any(|x| x.starts_with("<result") && x.contains("type='valid'")),
        "{xml:?}"
    );
    assert!(xml.iter().any(|x| x.starts_with("<verify")), "{xml:?}");
    alice.logout().await;
}

#[tokio::test]
async fn federation_in_plaintext() {
    federation_round(&["--tls", "off"], false).await;
}

#[tokio::test]
async fn federation_with_starttls() {
    federation_round(&["--tls", "required"], true).await;
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
