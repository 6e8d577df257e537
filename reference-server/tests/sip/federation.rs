//! Two servers federating over SIP (PROFILE.md §5): MESSAGE and presence across domains over
//! UDP and over TCP, NOTIFYs and the unsubscribe through the watcher's server
//! (Record-Route), the bytes on the tap tagged `sip`, 604 for a domain with no route, 482 for
//! a loop; and two `imfed-server` processes doing the same from their command lines.

use imfed_server::sip::Route;

use super::*;
use crate::support::{ServerProc, free_port};

async fn pair(transport: &str) -> (Running, Running) {
    let a = start(config("a.test", &[("alice", "pw-a")])).await;
    let b = start(config("b.test", &[("bob", "pw-b")])).await;
    let route = |addr: SocketAddr| Route::parse(&format!("{addr};transport={transport}")).unwrap();
    a.state.sip.set_route("b.test", route(b.addresses.sip));
    b.state.sip.set_route("a.test", route(a.addresses.sip));
    (a, b)
}

/// Chunks of SIP on a server's tap, as text.
fn tapped(server: &Running) -> String {
    let page = server
        .state
        .tap
        .read_filtered(0, imfed_server::tap::TapFilter::Sip);
    page.chunks
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect()
}

async fn exchange(transport: &str) {
    let (a, b) = pair(transport).await;
    let mut alice = Ua::udp(a.addresses.sip, "alice", "a.test", "pw-a").await;
    let mut bob = Ua::tcp(b.addresses.sip, "bob", "b.test", "pw-b").await;
    assert_eq!(alice.register(600).await.status(), 200);
    assert_eq!(bob.register(600).await.status(), 200);

    // A MESSAGE across domains, and bob's 200 back through both servers.
    let message = "MESSAGE sip:bob@b.test SIP/2.0\nTo: <sip:bob@b.test>\nContent-Type: text/plain;charset=UTF-8";
    let (answer, received) = tokio::join!(alice.send(message, "grüß dich"), bob.request("MESSAGE"));
    assert_eq!(answer.status(), 200, "{answer:?}");
    assert_eq!(received.body, "grüß dich");
    assert_eq!(
        received.all("via").len(),
        3,
        "alice, a.test, b.test: {:?}",
        received.all("via")
    );
    let reply =
        "MESSAGE sip:alice@a.test SIP/2.0\nTo: <sip:alice@a.test>\nContent-Type: text/plain";
    let (answer, received) = tokio::join!(bob.send(reply, "hi alice"), alice.request("MESSAGE"));
    assert_eq!(answer.status(), 200);
    assert_eq!(received.body, "hi alice");

    // Over 1300 bytes the link is TCP whatever the route says (RFC 3261 §18.1.1).
    let long = "long ".repeat(400);
    let (answer, received) = tokio::join!(alice.send(message, &long), bob.request("MESSAGE"));
    assert_eq!(answer.status(), 200, "{answer:?}");
    assert_eq!(received.body, long);
    // Vias top down: b.test's (to bob), a.test's (to b.test), alice's.
    let vias = received.all("via");
    assert!(
        vias.len() == 3 && vias[1].starts_with("SIP/2.0/TCP"),
        "b.test got it from a.test over TCP: {vias:?}"
    );

    // Presence across domains: alice watches bob; the NOTIFYs come through a.test.
    let subscribe = format!(
        "SUBSCRIBE sip:bob@b.test SIP/2.0\nTo: <sip:bob@b.test>\nFrom: <sip:alice@a.test>;tag=x1\nEvent: presence\nContact: {}\nExpires: 600",
        alice.contact_header()
    );
    let accepted = alice.send(&subscribe, "").await;
    assert_eq!(accepted.status(), 200, "{accepted:?}");
    let record_route = accepted.all("record-route");
    assert!(
        record_route
            .iter()
            .any(|rr| rr.contains(&a.addresses.sip.to_string())),
        "a.test Record-Routes the SUBSCRIBE: {record_route:?}"
    );
    let first = alice.request("NOTIFY").await;
    assert!(
        first
            .header("subscription-state")
            .unwrap()
            .starts_with("active")
    );
    let publish = "PUBLISH sip:bob@b.test SIP/2.0\nTo: <sip:bob@b.test>\nEvent: presence\nExpires: 600\nContent-Type: application/pidf+xml";
    assert_eq!(
        bob.send(publish, &pidf("sip:bob@b.test", "open", "hacking"))
            .await
            .status(),
        200
    );
    let update = alice.request("NOTIFY").await;
    assert!(update.body.contains("hacking"), "{}", update.body);
    assert!(
        update.all("via").len() >= 2,
        "the NOTIFY came through a.test: {:?}",
        update.all("via")
    );

    // The unsubscribe is an in-dialog SUBSCRIBE along the route set: a.test proxies it to
    // b.test's presence agent (RFC 3261 §16.12) rather than taking it for a dialog of its
    // own, and the final NOTIFY comes back (RFC 6665 §4.1.2.3).
    let target = accepted.header("contact").expect("the agent's Contact");
    let target = target.trim_start_matches('<').split('>').next().unwrap();
    let unsubscribe = format!(
        "SUBSCRIBE {target} SIP/2.0\nTo: {}\nFrom: <sip:alice@a.test>;tag=x1\nCall-ID: {}\nCSeq: 100 SUBSCRIBE\nRoute: {}\nEvent: presence\nContact: {}\nExpires: 0",
        accepted.header("to").unwrap(),
        accepted.header("call-id").unwrap(),
        record_route[0],
        alice.contact_header()
    );
    let ended = alice.send(&unsubscribe, "").await;
    assert_eq!(ended.status(), 200, "{ended:?}");
    let last = alice.request("NOTIFY").await;
    assert!(
        last.header("subscription-state")
            .unwrap()
            .starts_with("terminated"),
        "{last:?}"
    );

    // A domain with no route: 604; a user unknown over there: 404 relayed.
    let lost =
        "MESSAGE sip:x@nowhere.test SIP/2.0\nTo: <sip:x@nowhere.test>\nContent-Type: text/plain";
    assert_eq!(alice.send(lost, "hi").await.status(), 604);
    let unknown =
        "MESSAGE sip:nobody@b.test SIP/2.0\nTo: <sip:nobody@b.test>\nContent-Type: text/plain";
    assert_eq!(alice.send(unknown, "hi").await.status(), 404);

    // The tap on a.test saw the link's bytes, both ways, tagged sip.
    let seen = tapped(&a);
    assert!(seen.contains("MESSAGE sip:bob@b.test SIP/2.0"), "{seen}");
    assert!(seen.contains("SUBSCRIBE sip:bob@b.test"), "{seen}");
    assert!(seen.contains("NOTIFY "), "{seen}");
    assert!(
        !seen.contains("REGISTER"),
        "the users' own traffic is not on the link: {seen}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn sip_two_servers_federate_over_udp() {
    exchange("udp").await;
}

#[tokio::test]
async fn sip_two_servers_federate_over_tcp() {
    exchange("tcp").await;
}

/// Routes that point back (a.test → b.test → a.test for loop.test): the request comes back
/// to a.test unchanged and is refused with 482 (§16.3 step 4), before Max-Forwards runs out.
#[tokio::test]
async fn sip_loops_are_detected() {
    let (a, b) = pair("udp").await;
    a.state.sip.set_route(
        "loop.test",
        Route::parse(&b.addresses.sip.to_string()).unwrap(),
    );
    b.state.sip.set_route(
        "loop.test",
        Route::parse(&a.addresses.sip.to_string()).unwrap(),
    );
    let mut alice = Ua::udp(a.addresses.sip, "alice", "a.test", "pw-a").await;
    let looped = "MESSAGE sip:x@loop.test SIP/2.0\nTo: <sip:x@loop.test>\nContent-Type: text/plain";
    assert_eq!(alice.send(looped, "round and round").await.status(), 482);
    a.stop().await;
    b.stop().await;
}

/// Two `imfed-server` processes, each told of the other with `--sip-remote`.
#[tokio::test]
async fn sip_two_server_processes_federate() {
    let (pa, pb) = (free_port(), free_port());
    let a_addr = format!("127.0.0.1:{pa}");
    let b_addr = format!("127.0.0.1:{pb}");
    let mut a = ServerProc::start(
        "a.test",
        &[
            "--sip",
            &a_addr,
            "--sip-remote",
            &format!("b.test={b_addr};transport=tcp"),
            "--account",
            "alice@a.test:pw-a",
        ],
    );
    let mut b = ServerProc::start(
        "b.test",
        &[
            "--sip",
            &b_addr,
            "--sip-remote",
            &format!("a.test={a_addr};transport=tcp"),
            "--account",
            "bob@b.test:pw-b",
        ],
    );
    let mut alice = Ua::udp(a_addr.parse().unwrap(), "alice", "a.test", "pw-a").await;
    let mut bob = Ua::udp(b_addr.parse().unwrap(), "bob", "b.test", "pw-b").await;
    assert_eq!(alice.register(600).await.status(), 200);
    assert_eq!(bob.register(600).await.status(), 200);
    let message = "MESSAGE sip:bob@b.test SIP/2.0\nTo: <sip:bob@b.test>\nContent-Type: text/plain";
    let (answer, received) = tokio::join!(
        alice.send(message, "between processes"),
        bob.request("MESSAGE")
    );
    assert_eq!(answer.status(), 200);
    assert_eq!(received.body, "between processes");
    assert!(a.terminate() && b.terminate(), "both stop on SIGTERM");
}
