//! One server, raw SIP: registration with Digest (RFC 3261 §10, §22), MESSAGE (RFC 3428),
//! PUBLISH (RFC 3903), SUBSCRIBE/NOTIFY for presence (RFC 6665, RFC 3856), and the refusals
//! of PROFILE.md §7 and §9.

use super::*;

/// The exchanges of PROFILE.md §2-§4 and §6 between two users of one server, over UDP.
#[tokio::test]
async fn sip_spec_exchanges_on_one_server() {
    let server = start(config(
        "a.test",
        &[("alice", "pw-a"), ("bob", "pw-b"), ("carol", "pw-c")],
    ))
    .await;
    let addr = server.addresses.sip;
    let mut alice = Ua::udp(addr, "alice", "a.test", "pw-a").await;
    let mut bob = Ua::udp(addr, "bob", "a.test", "pw-b").await;

    // §10.3: 401 first, then 200 with the binding and its granted interval.
    let challenge = alice
        .send_once(
            &format!(
                "REGISTER sip:a.test SIP/2.0\nContact: {}\nExpires: 600",
                alice.contact_header()
            ),
            "",
            None,
        )
        .await;
    assert_eq!(challenge.status(), 401, "{challenge:?}");
    let www = challenge
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(www.starts_with("Digest "), "{www}");
    assert_eq!(Sip::param(www, "realm"), Some("a.test"));
    let registered = alice.register(600).await;
    assert_eq!(registered.status(), 200, "{registered:?}");
    let contact = registered.header("contact").expect("Contact");
    assert!(contact.contains(&alice.contact.to_string()), "{contact}");
    assert_eq!(Sip::param(contact, "expires"), Some("600"));
    assert_eq!(bob.register(3600).await.status(), 200);

    // Wrong password: challenged again, never 200.
    let mut mallory = Ua::udp(addr, "alice", "a.test", "wrong").await;
    assert_eq!(mallory.register(600).await.status(), 401);
    // Too brief: 423 with Min-Expires (§10.3 step 7) needs a server whose minimum is above 0;
    // the reference's is 1 s, so Expires: 0 is a removal, tested below.

    // RFC 3428: a MESSAGE from alice reaches bob's contact, bob's 200 comes back.
    let message = "MESSAGE sip:bob@a.test SIP/2.0\nTo: <sip:bob@a.test>\nContent-Type: text/plain;charset=UTF-8\nSubject: hello";
    let answered = tokio::join!(
        alice.send(message, "Watson, come here."),
        bob.request("MESSAGE")
    );
    assert_eq!(answered.0.status(), 200, "{:?}", answered.0);
    assert_eq!(answered.1.body, "Watson, come here.");
    assert_eq!(answered.1.header("subject"), Some("hello"));
    assert!(
        answered.1.start.contains(&bob.contact.to_string()),
        "R-URI is the contact: {}",
        answered.1.start
    );

    // PROFILE.md §7: unknown user 404, offline user 480, oversized body 413.
    let to = |user: &str| {
        format!(
            "MESSAGE sip:{user}@a.test SIP/2.0\nTo: <sip:{user}@a.test>\nContent-Type: text/plain"
        )
    };
    assert_eq!(alice.send(&to("nobody"), "hi").await.status(), 404);
    assert_eq!(alice.send(&to("carol"), "hi").await.status(), 480);
    let big = "x".repeat(33_000);
    let mut alice_tcp = Ua::tcp(addr, "alice", "a.test", "pw-a").await;
    assert_eq!(alice_tcp.send(&to("bob"), &big).await.status(), 413);

    // RFC 3856: bob watches alice; the first NOTIFY comes at once, with no tuple yet.
    let subscribe = format!(
        "SUBSCRIBE sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nFrom: <sip:bob@a.test>;tag=w1\nEvent: presence\nAccept: application/pidf+xml\nContact: {}\nExpires: 600",
        bob.contact_header()
    );
    let accepted = bob.send(&subscribe, "").await;
    assert_eq!(accepted.status(), 200, "{accepted:?}");
    let to_tag = accepted
        .header("to")
        .and_then(|to| Sip::param(to, "tag"))
        .expect("a To tag")
        .to_string();
    let first = bob.request("NOTIFY").await;
    let state = first
        .header("subscription-state")
        .expect("Subscription-State");
    assert!(state.starts_with("active"), "{state}");
    assert!(
        !first.body.contains("<tuple"),
        "nothing published yet: {}",
        first.body
    );

    // RFC 3903: alice publishes open; bob is told; the ETag refreshes; a stale one is 412.
    let publish = "PUBLISH sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nEvent: presence\nExpires: 600\nContent-Type: application/pidf+xml";
    let published = alice
        .send(publish, &pidf("sip:alice@a.test", "open", "at lunch"))
        .await;
    assert_eq!(published.status(), 200, "{published:?}");
    let etag = published.header("sip-etag").expect("SIP-ETag").to_string();
    let update = bob.request("NOTIFY").await;
    assert!(
        update.body.contains("open") && update.body.contains("at lunch"),
        "{}",
        update.body
    );
    let refresh = format!(
        "PUBLISH sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nEvent: presence\nExpires: 600\nSIP-If-Match: {etag}"
    );
    let refreshed = alice.send(&refresh, "").await;
    assert_eq!(refreshed.status(), 200);
    assert_ne!(
        refreshed.header("sip-etag"),
        Some(etag.as_str()),
        "a new entity-tag"
    );
    assert_eq!(
        alice.send(&refresh, "").await.status(),
        412,
        "the old entity-tag is gone"
    );
    let bad_event = publish.replace("Event: presence", "Event: dialog");
    let refused = alice
        .send(&bad_event, &pidf("sip:alice@a.test", "open", ""))
        .await;
    assert_eq!(refused.status(), 489);
    assert_eq!(refused.header("allow-events"), Some("presence"));
    // Only the presentity publishes its state.
    let forged = "PUBLISH sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nEvent: presence\nContent-Type: application/pidf+xml";
    assert_eq!(
        bob.send(forged, &pidf("sip:alice@a.test", "closed", ""))
            .await
            .status(),
        403
    );

    // RFC 6665 §4.1.2.3: unsubscribing gives a final NOTIFY, terminated.
    let route = accepted.header("contact").expect("the notifier's Contact");
    let target = route
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let unsubscribe = format!(
        "SUBSCRIBE {target} SIP/2.0\nTo: <sip:alice@a.test>;tag={to_tag}\nFrom: <sip:bob@a.test>;tag=w1\nCall-ID: {}\nEvent: presence\nContact: {}\nExpires: 0",
        first.header("call-id").unwrap(),
        bob.contact_header()
    );
    assert_eq!(bob.send(&unsubscribe, "").await.status(), 200);
    let last = bob.request("NOTIFY").await;
    let state = last.header("subscription-state").unwrap();
    assert!(
        state.starts_with("terminated") && state.contains("reason=timeout"),
        "{state}"
    );
    // After that the dialog is gone: 481.
    assert_eq!(bob.send(&unsubscribe, "").await.status(), 481);

    // OPTIONS to the server itself: 200 with Allow.
    let options = alice
        .send("OPTIONS sip:a.test SIP/2.0\nTo: <sip:a.test>", "")
        .await;
    assert_eq!(options.status(), 200);
    assert!(
        options
            .header("allow")
            .is_some_and(|a| a.contains("MESSAGE"))
    );

    // Logout: Expires 0 removes the binding, and messages to alice are 480 again.
    assert_eq!(alice.register(0).await.status(), 200);
    assert_eq!(bob.send(&to("alice"), "hi").await.status(), 480);
    server.stop().await;
}

/// Leases (PROFILE.md §2-§4): a registration, a publication and a subscription of 1 s each
/// lapse on their own, and the watcher gets the final NOTIFY.
#[tokio::test]
async fn sip_leases_lapse() {
    let server = start(config("a.test", &[("alice", "pw-a"), ("bob", "pw-b")])).await;
    let addr = server.addresses.sip;
    let mut alice = Ua::udp(addr, "alice", "a.test", "pw-a").await;
    let mut bob = Ua::udp(addr, "bob", "a.test", "pw-b").await;
    assert_eq!(alice.register(1).await.status(), 200);
    assert_eq!(bob.register(3600).await.status(), 200);
    let publish = "PUBLISH sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nEvent: presence\nExpires: 1\nContent-Type: application/pidf+xml";
    assert_eq!(
        alice
            .send(publish, &pidf("sip:alice@a.test", "open", ""))
            .await
            .status(),
        200
    );
    let subscribe = format!(
        "SUBSCRIBE sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nFrom: <sip:bob@a.test>;tag=w2\nEvent: presence\nContact: {}\nExpires: 2",
        bob.contact_header()
    );
    assert_eq!(bob.send(&subscribe, "").await.status(), 200);
    let first = bob.request("NOTIFY").await;
    assert!(first.body.contains("open"), "{}", first.body);
    // The publication lapses after 1 s: a NOTIFY with no tuple.
    let lapsed = bob.request("NOTIFY").await;
    assert!(!lapsed.body.contains("<tuple"), "{}", lapsed.body);
    // The subscription lapses after 2 s: terminated.
    let last = bob.request("NOTIFY").await;
    assert!(
        last.header("subscription-state")
            .unwrap()
            .starts_with("terminated")
    );
    // The registration lapsed too.
    let to_alice =
        "MESSAGE sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nContent-Type: text/plain";
    assert_eq!(bob.send(to_alice, "hi").await.status(), 480);
    server.stop().await;
}

/// Bad input (PROFILE.md §9): each gets a 400 (or 513) naming the problem, over UDP and
/// TCP, and the server still serves afterwards.
#[tokio::test]
async fn sip_bad_input_gets_a_clear_400() {
    let server = start(config("a.test", &[("alice", "pw-a")])).await;
    let addr = server.addresses.sip;
    let mut ua = Ua::udp(addr, "alice", "a.test", "pw-a").await;
    let via = format!("Via: SIP/2.0/UDP {};branch=z9hG4bKbad1\r\n", ua.contact);
    let base = |extra: &str| {
        format!(
            "OPTIONS sip:a.test SIP/2.0\r\n{via}From: <sip:x@b.test>;tag=1\r\nTo: <sip:a.test>\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    // No Call-ID.
    ua.send_text(&base("")).await;
    let missing = ua.next(BOUND).await.expect("an answer");
    assert_eq!(missing.status(), 400, "{missing:?}");
    assert!(missing.start.contains("Call-ID"), "{}", missing.start);
    // A CSeq method that is not the request's.
    let mismatched = base("Call-ID: c2\r\n").replace("CSeq: 1 OPTIONS", "CSeq: 1 MESSAGE");
    ua.send_text(&mismatched).await;
    assert_eq!(ua.next(BOUND).await.expect("an answer").status(), 400);
    // A Content-Length longer than the datagram (§18.3).
    let long = base("Call-ID: c3\r\n").replace("Content-Length: 0", "Content-Length: 500");
    ua.send_text(&long).await;
    let answer = ua.next(BOUND).await.expect("an answer");
    assert_eq!(answer.status(), 400, "{answer:?}");
    // A start line that is not SIP.
    let garbage = base("Call-ID: c4\r\n").replace("OPTIONS sip:a.test SIP/2.0", "HELLO THERE");
    ua.send_text(&garbage).await;
    assert_eq!(ua.next(BOUND).await.expect("an answer").status(), 400);
    // Another URI scheme: 416.
    let scheme = base("Call-ID: c5\r\n").replace("OPTIONS sip:a.test", "OPTIONS http:a.test");
    ua.send_text(&scheme).await;
    assert_eq!(ua.next(BOUND).await.expect("an answer").status(), 416);
    // Max-Forwards: 0 on a request to forward: 483.
    let mut alice = Ua::udp(addr, "alice", "a.test", "pw-a").await;
    assert_eq!(alice.register(60).await.status(), 200);
    let hops = "MESSAGE sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nMax-Forwards: 0\nContent-Type: text/plain";
    assert_eq!(ua.send(hops, "hi").await.status(), 483);
    // TCP without Content-Length: 400, then the connection closes.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let framing = base("Call-ID: c6\r\n").replace("Content-Length: 0\r\n", "");
    stream.write_all(framing.as_bytes()).await.unwrap();
    stream
        .write_all(b"more bytes that are not SIP\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server closes the connection");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("SIP/2.0 400"), "{text}");
    // Still serving.
    let options = alice
        .send("OPTIONS sip:a.test SIP/2.0\nTo: <sip:a.test>", "")
        .await;
    assert_eq!(options.status(), 200);
    server.stop().await;
}
