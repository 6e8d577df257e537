//! One server driven with raw HTTP text shaped like the spec's example exchanges.

use super::*;

/// §5.1.7.1 login, §5.5.1 PROPPATCH with a lease, §5.1.7.2 subscription with its 207
/// snapshot, a change notification, renewal (§5.1.2), §5.3 SUBSCRIPTIONS, §5.4.1 PROPFIND,
/// §5.6.1 NOTIFY (200 once delivered, 412 without an endpoint), §5.2.1 UNSUBSCRIBE.
#[tokio::test]
async fn rvp_spec_exchanges_on_one_server() {
    let server = start(config("a.test", &[("alice", "pw-a"), ("bob", "pw-b")])).await;
    let addr = server.addresses.rvp;
    let mut alice = Raw::connect(addr, "alice", "a.test", "pw-a").await;
    let mut bob = Raw::connect(addr, "bob", "a.test", "pw-b").await;
    let mut alice_cb = Callback::start().await;
    let mut bob_cb = Callback::start().await;

    // No credentials: 401 with a Digest challenge for the user's realm.
    let challenge = alice
        .send_plain(
            "PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nDepth: 0\nRVP-Notifications-Version: 0.2",
            "",
        )
        .await;
    assert_eq!(challenge.status(), 401, "{challenge:?}");
    let www = challenge.header("www-authenticate").unwrap();
    assert!(
        www.starts_with("Digest ")
            && www.contains("realm=\"a.test\"")
            && www.contains("qop=\"auth\""),
        "{www}"
    );

    let alice_login = login(&mut alice, &alice_cb).await;
    let _bob_login = login(&mut bob, &bob_cb).await;

    // Bob watches alice: 207 with the offline snapshot.
    let subscribe = format!(
        "SUBSCRIBE http://a.test/instmsg/aliases/alice HTTP/1.1
Subscription-Lifetime: 14400
Notification-Type: update/propchange
Call-Back: {}
RVP-Notifications-Version: 0.2
Host: a.test
RVP-From-Principal: {}",
        bob.url(),
        bob.url()
    );
    let snapshot = bob.send(&subscribe, "").await;
    assert_eq!(snapshot.start, "HTTP/1.1 207 Multi-Status", "{snapshot:?}");
    assert_eq!(snapshot.header("subscription-lifetime"), Some("14400"));
    assert!(snapshot.header("rvp-notifications-version").is_some());
    assert!(snapshot.body.contains("offline"), "{}", snapshot.body);
    let watch_id = snapshot.header("subscription-id").unwrap().to_string();

    // Alice goes online on her login view; the 207 gives the lease and the view-id.
    let (head, body) = proppatch(&alice, "online", 1200, Some(&alice_login));
    let patched = alice.send(&head, &body).await;
    assert_eq!(patched.status(), 207, "{patched:?}");
    assert!(
        patched.body.contains("1200") && patched.body.contains(&alice_login),
        "{}",
        patched.body
    );
    // Bob's endpoint hears of it (§5.6.1 example g).
    let change = bob_cb
        .expect("propnotification online", |r| {
            r.body.contains("propnotification") && r.body.contains("online")
        })
        .await;
    assert!(change.start.starts_with("NOTIFY "), "{change:?}");
    assert!(change.header("rvp-from-principal").is_some());

    // Renewal: 200, no body; an unknown id: 412.
    let renew = |id: &str| {
        format!(
            "SUBSCRIBE http://a.test/instmsg/aliases/alice HTTP/1.1
Subscription-Lifetime: 600
Subscription-Id: {id}
RVP-Notifications-Version: 0.2
Host: a.test
RVP-From-Principal: {}",
            "http://a.test/instmsg/aliases/bob"
        )
    };
    let renewed = bob.send(&renew(&watch_id), "").await;
    assert_eq!(renewed.start, "HTTP/1.1 200 Successful", "{renewed:?}");
    assert_eq!(renewed.header("subscription-lifetime"), Some("600"));
    assert!(renewed.body.is_empty());
    assert_eq!(bob.send(&renew("424242"), "").await.status(), 412);

    // SUBSCRIPTIONS on her own node lists bob (§5.3).
    let list = alice
        .send(
            "SUBSCRIPTIONS /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nNotification-Type: update/propchange\nRVP-Notifications-Version: 0.2",
            "",
        )
        .await;
    assert_eq!(list.status(), 200, "{list:?}");
    assert!(
        list.body.contains(&watch_id) && list.body.contains("bob"),
        "{}",
        list.body
    );

    // PROPFIND Depth 0 (§5.4.1): 207 with the state; other depths 412.
    let propfind = |depth: &str| {
        format!(
            "PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\n{depth}RVP-Notifications-Version: 0.2\nContent-Type: text/xml"
        )
    };
    let query = "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\" xmlns:r=\"http://schemas.microsoft.com/rvp/\"><d:prop><r:state/></d:prop></d:propfind>";
    let found = bob.send(&propfind("Depth: 0\n"), query).await;
    assert_eq!(found.status(), 207, "{found:?}");
    assert!(found.body.contains("online"), "{}", found.body);
    assert_eq!(bob.send(&propfind("Depth: 1\n"), query).await.status(), 412);
    assert_eq!(bob.send(&propfind(""), query).await.status(), 412);

    // NOTIFY a message (§5.6.1): 200 once alice's endpoint took it.
    let (head, body) = message(
        &bob,
        "http://a.test/instmsg/aliases/alice",
        "Let's have lunch",
        1,
    );
    let sent = bob.send(&head, &body).await;
    assert_eq!(sent.start, "HTTP/1.1 200 Successful", "{sent:?}");
    let got = alice_cb
        .expect("the message", |r| r.body.contains("Let's have lunch"))
        .await;
    assert_eq!(got.header("rvp-hop-count"), Some("2"));

    // UNSUBSCRIBE (§5.2.1) of bob's watch: 200; again: 412.
    let unsubscribe = |id: &str| {
        format!(
            "UNSUBSCRIBE http://a.test/instmsg/aliases/alice HTTP/1.1\nHost: a.test\nRVP-Notifications-Version: 0.2\nRVP-From-Principal: http://a.test/instmsg/aliases/bob\nSubscription-Id: {id}"
        )
    };
    assert_eq!(bob.send(&unsubscribe(&watch_id), "").await.status(), 200);
    assert_eq!(bob.send(&unsubscribe(&watch_id), "").await.status(), 412);

    // Alice signs off: her login subscription ends, so a message gets 412.
    let end = format!(
        "UNSUBSCRIBE /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nRVP-Notifications-Version: 0.2\nSubscription-Id: {alice_login}"
    );
    assert_eq!(alice.send(&end, "").await.status(), 200);
    let (head, body) = message(&bob, "http://a.test/instmsg/aliases/alice", "anyone?", 1);
    assert_eq!(bob.send(&head, &body).await.status(), 412);
    // An unknown principal: 404.
    let (head, body) = message(&bob, "http://a.test/instmsg/aliases/nobody", "hi", 1);
    assert_eq!(bob.send(&head, &body).await.status(), 404);
    server.stop().await;
}

/// §5.7 ACL read and replace, 400 "credentials not specified", 403 denials; §5.8 other
/// methods; malformed bodies and headers; forged RVP-From-Principal.
#[tokio::test]
async fn rvp_acl_errors_and_other_methods() {
    let server = start(config("a.test", &[("alice", "pw-a"), ("bob", "pw-b")])).await;
    let addr = server.addresses.rvp;
    let mut alice = Raw::connect(addr, "alice", "a.test", "pw-a").await;
    let mut bob = Raw::connect(addr, "bob", "a.test", "pw-b").await;
    let acl_head = "ACL /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nRVP-Notifications-Version: 0.2\nContent-Type: text/xml";
    let read = alice.send(acl_head, "").await;
    assert_eq!(read.status(), 200, "{read:?}");
    assert!(
        read.body.contains("allprincipals") && read.body.contains("presence"),
        "{}",
        read.body
    );
    let acl = |credentials: &str| {
        format!(
            "<?xml version=\"1.0\"?><a:rvpacl xmlns:a=\"http://schemas.microsoft.com/rvp/acl/\"><a:acl><a:inheritance>none</a:inheritance>\
<a:ace><a:principal><a:rvp-principal>http://a.test/instmsg/aliases/bob</a:rvp-principal>{credentials}</a:principal><a:grant/><a:deny><a:send-to/><a:presence/></a:deny></a:ace>\
<a:ace><a:principal><a:allprincipals/><a:credentials><a:assertion/><a:digest/></a:credentials></a:principal><a:grant><a:list/><a:read/><a:send-to/><a:presence/></a:grant><a:deny/></a:ace></a:acl></a:rvpacl>"
        )
    };
    let refused = alice.send(acl_head, &acl("")).await;
    assert_eq!(
        refused.start, "HTTP/1.1 400 credentials not specified",
        "{refused:?}"
    );
    assert_eq!(
        bob.send(acl_head, &acl("<a:credentials><a:any/></a:credentials>"))
            .await
            .status(),
        403
    );
    let replaced = alice
        .send(acl_head, &acl("<a:credentials><a:any/></a:credentials>"))
        .await;
    assert_eq!(replaced.status(), 200, "{replaced:?}");
    // Bob is now denied presence and send-to.
    let subscribe = "SUBSCRIBE /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nSubscription-Lifetime: 60\nNotification-Type: update/propchange\nCall-Back: http://a.test/instmsg/aliases/bob\nRVP-Notifications-Version: 0.2";
    assert_eq!(bob.send(subscribe, "").await.status(), 403);
    let (head, body) = message(&bob, "http://a.test/instmsg/aliases/alice", "hi", 1);
    assert_eq!(bob.send(&head, &body).await.status(), 403);

    // §5.8: other methods.
    for (method, status) in [
        ("GET", 501),
        ("POST", 501),
        ("OPTIONS", 501),
        ("LOCK", 501),
        ("COPY", 405),
        ("MOVE", 405),
        ("BREW", 501),
    ] {
        let answer = alice
            .send_plain(&format!("{method} /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nRVP-Notifications-Version: 0.2"), "")
            .await;
        assert_eq!(answer.status(), status, "{method}: {answer:?}");
    }
    // Malformed XML and headers: 400 naming the problem.
    let (head, _) = proppatch(&alice, "online", 60, None);
    let bad = alice
        .send(&head, "<d:propertyupdate xmlns:d='DAV:'><d:set>")
        .await;
    assert_eq!(bad.status(), 400, "{bad:?}");
    assert!(bad.start.contains("PROPPATCH body"), "{}", bad.start);
    let bad_lifetime = alice
        .send("SUBSCRIBE /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nSubscription-Lifetime: soon\nNotification-Type: pragma/notify\nCall-Back: http://127.0.0.1:9\nRVP-Notifications-Version: 0.2", "")
        .await;
    assert_eq!(bad_lifetime.status(), 400);
    assert!(
        bad_lifetime.start.contains("Subscription-Lifetime"),
        "{}",
        bad_lifetime.start
    );
    let no_version = alice
        .send(
            "PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nDepth: 0",
            "",
        )
        .await;
    assert_eq!(no_version.status(), 400);
    let remote_callback = alice
        .send("SUBSCRIBE /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nSubscription-Lifetime: 60\nNotification-Type: pragma/notify\nCall-Back: http://192.0.2.1:1234\nRVP-Notifications-Version: 0.2", "")
        .await;
    assert_eq!(remote_callback.status(), 400, "{remote_callback:?}");
    // Someone else's identity: 403.
    let forged = bob
        .send("PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nDepth: 0\nRVP-Notifications-Version: 0.2\nRVP-From-Principal: http://a.test/instmsg/aliases/alice", "")
        .await;
    assert_eq!(forged.status(), 403);
    // Garbage does not take the server down.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"\x00\xffNOT HTTP\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(BOUND, junk.read_to_end(&mut sink)).await;
    let alive = alice.send("PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nDepth: 0\nRVP-Notifications-Version: 0.2", "").await;
    assert_eq!(alive.status(), 207);
    server.stop().await;
}

/// Leases: a presence value reverts when its lease runs out and watchers hear of it;
/// `rvp_ignore_presence_lease` breaks exactly that.
#[tokio::test]
async fn rvp_presence_lease_reverts_and_its_fault_breaks_it() {
    for broken in [false, true] {
        let mut cfg = config("a.test", &[("alice", "pw-a"), ("bob", "pw-b")]);
        if broken {
            cfg.misbehave = vec!["rvp_ignore_presence_lease".into()];
        }
        let server = start(cfg).await;
        let addr = server.addresses.rvp;
        let mut alice = Raw::connect(addr, "alice", "a.test", "pw-a").await;
        let mut bob = Raw::connect(addr, "bob", "a.test", "pw-b").await;
        let mut bob_cb = Callback::start().await;
        login(&mut bob, &bob_cb).await;
        let subscribe = "SUBSCRIBE /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nSubscription-Lifetime: 60\nNotification-Type: update/propchange\nCall-Back: http://a.test/instmsg/aliases/bob\nRVP-Notifications-Version: 0.2";
        assert_eq!(bob.send(subscribe, "").await.status(), 207);
        let (head, body) = proppatch(&alice, "online", 1, None);
        assert_eq!(alice.send(&head, &body).await.status(), 207);
        bob_cb.expect("online", |r| r.body.contains("online")).await;
        let reverted = tokio::time::timeout(
            Duration::from_secs(4),
            bob_cb.expect("offline", |r| r.body.contains("offline")),
        );
        if broken {
            let probe = alice.send("PROPFIND /instmsg/aliases/alice HTTP/1.1\nHost: a.test\nDepth: 0\nRVP-Notifications-Version: 0.2", "");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(
                probe.await.body.contains("online"),
                "the fault keeps the value"
            );
        } else {
            reverted.await.expect("reverted to offline");
        }
        server.stop().await;
    }
}
