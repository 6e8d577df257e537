//! Two servers, in-process and as `imfed-server` processes, federating over RVP with mutual
//! TLS and a per-run CA.

use std::sync::Arc;

use imfed_server::tls::RunPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::*;
use crate::support::{ServerProc, free_port};

fn pki_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("imfed-rvp-{name}-{}", std::process::id()))
}

async fn pair(name: &str) -> (Running, Running, RunPki) {
    let pki = RunPki::new(&[&["a.test"], &["b.test"], &["c.test"]]).expect("pki");
    let dir = pki_dir(name);
    let mut a = config("a.test", &[("alice", "pw-a")]);
    pki.configure(0, &dir, &mut a).expect("pki files");
    let mut b = config("b.test", &[("bob", "pw-b"), ("carol", "pw-c")]);
    pki.configure(1, &dir, &mut b).expect("pki files");
    let (a, b) = (start(a).await, start(b).await);
    a.state
        .rvp
        .set_route("b.test", &b.addresses.rvp_s2s.to_string());
    b.state
        .rvp
        .set_route("a.test", &a.addresses.rvp_s2s.to_string());
    (a, b, pki)
}

/// A raw TLS client to `addr` presenting `cert`/`key`, trusting `ca`; sends `request` and
/// returns what came back (empty when the server refused the handshake).
async fn tls_exchange(addr: SocketAddr, ca: &str, cert: &str, key: &str, request: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let Ok(mut tls) = connector
        .connect(ServerName::try_from("b.test").unwrap(), tcp)
        .await
    else {
        return String::new();
    };
    if tls.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(read)) = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buf)).await
    {
        if read == 0 {
            break;
        }
        out.extend_from_slice(&buf[..read]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cross-domain presence and messages (PROFILE.md §3, §4, §6): snapshot, change
/// notification relayed by the watcher's home server, DeepOr delivery, 412, 404, 508,
/// and the s2s bytes on the tap tagged `rvp`.
#[tokio::test]
async fn rvp_two_servers_federate() {
    let (a, b, _pki) = pair("federate").await;
    let mut alice = Raw::connect(a.addresses.rvp, "alice", "a.test", "pw-a").await;
    let mut bob = Raw::connect(b.addresses.rvp, "bob", "b.test", "pw-b").await;
    let mut alice_cb = Callback::start().await;
    let mut bob_cb = Callback::start().await;
    login(&mut alice, &alice_cb).await;
    let bob_login = login(&mut bob, &bob_cb).await;

    let subscribe = "SUBSCRIBE http://b.test/instmsg/aliases/bob HTTP/1.1\nHost: b.test\nSubscription-Lifetime: 14400\nNotification-Type: update/propchange\nCall-Back: http://a.test/instmsg/aliases/alice\nRVP-Notifications-Version: 0.2\nRVP-From-Principal: http://a.test/instmsg/aliases/alice";
    let snapshot = alice.send(subscribe, "").await;
    assert_eq!(snapshot.status(), 207, "{snapshot:?}");
    assert!(snapshot.body.contains("offline"), "{}", snapshot.body);
    assert!(snapshot.header("subscription-id").is_some());

    let (head, body) = proppatch(&bob, "busy", 1200, Some(&bob_login));
    assert_eq!(bob.send(&head, &body).await.status(), 207);
    let change = alice_cb
        .expect("bob's busy", |r| {
            r.body.contains("propnotification") && r.body.contains("busy")
        })
        .await;
    assert_eq!(change.header("rvp-from-principal"), Some("b.test"));
    assert_eq!(change.header("rvp-hop-count"), Some("3"));

    let (head, body) = message(
        &alice,
        "http://b.test/instmsg/aliases/bob",
        "over the border",
        1,
    );
    let sent = alice.send(&head, &body).await;
    assert_eq!(sent.status(), 200, "{sent:?}");
    let got = bob_cb
        .expect("alice's message", |r| r.body.contains("over the border"))
        .await;
    assert_eq!(got.header("rvp-hop-count"), Some("3"));

    let (head, body) = message(&alice, "http://b.test/instmsg/aliases/carol", "offline?", 1);
    assert_eq!(alice.send(&head, &body).await.status(), 412);
    let (head, body) = message(&alice, "http://b.test/instmsg/aliases/nobody", "who?", 1);
    assert_eq!(alice.send(&head, &body).await.status(), 404);
    let (head, body) = message(&alice, "http://b.test/instmsg/aliases/bob", "loop", 4);
    assert_eq!(alice.send(&head, &body).await.status(), 508);
    let (head, body) = message(&alice, "http://nowhere.test/instmsg/aliases/x", "hi", 1);
    assert_eq!(alice.send(&head, &body).await.status(), 502);

    let page = a
        .state
        .tap
        .read_filtered(0, imfed_server::tap::TapFilter::Rvp);
    let bytes: Vec<u8> = page.chunks.iter().flat_map(|c| c.data.clone()).collect();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("NOTIFY http://b.test/instmsg/aliases/bob"),
        "{text}"
    );
    assert!(
        a.state.tap.read(0).chunks.is_empty(),
        "no RVP bytes in XMPP pages"
    );
    a.stop().await;
    b.stop().await;
}

/// PROFILE.md §6: a peer whose certificate is from another CA gets no HTTP; one whose
/// certificate does not name the RVP-From-Principal's domain gets 403, unless the
/// `rvp_accept_unauthenticated_peer` fault is on.
#[tokio::test]
async fn rvp_peer_authentication() {
    let (a, b, pki) = pair("peers").await;
    let request = "NOTIFY http://b.test/instmsg/aliases/bob HTTP/1.1\r\nHost: b.test\r\nRVP-Notifications-Version: 0.2\r\nRVP-From-Principal: http://a.test/instmsg/aliases/alice\r\nRVP-Hop-Count: 2\r\nContent-Length: 0\r\n\r\n";
    let other = RunPki::new(&[&["a.test"]]).unwrap();
    let (cert, key) = &other.servers[0];
    let refused = tls_exchange(b.addresses.rvp_s2s, &pki.ca_pem, cert, key, request).await;
    assert!(
        !refused.contains("HTTP/1.1"),
        "another CA's peer got HTTP: {refused}"
    );
    let (cert, key) = &pki.servers[2];
    let wrong = tls_exchange(b.addresses.rvp_s2s, &pki.ca_pem, cert, key, request).await;
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    b.state
        .faults
        .set_global([imfed_server::faults::Switch::RvpAcceptUnauthenticatedPeer]);
    let accepted = tls_exchange(b.addresses.rvp_s2s, &pki.ca_pem, cert, key, request).await;
    assert!(!accepted.starts_with("HTTP/1.1 403"), "{accepted}");
    let (cert, key) = &pki.servers[0];
    let right = tls_exchange(b.addresses.rvp_s2s, &pki.ca_pem, cert, key, request).await;
    assert!(
        right.starts_with("HTTP/1.1 400"),
        "a valid peer reaches the method (empty body): {right}"
    );
    a.stop().await;
    b.stop().await;
}

/// The same federation between two `imfed-server` processes configured only by their
/// command line (`--tls-*`, `--rvp-s2s`, `--rvp-remote`, `--account`): snapshot, a change
/// relayed to the watcher's callback, DeepOr delivery across the border, 404 for an
/// unknown principal.
#[tokio::test]
async fn rvp_two_server_processes_federate() {
    let pki = RunPki::new(&[&["a.test"], &["b.test"]]).expect("pki");
    let dir = pki_dir("processes");
    let files = |index: usize| -> [String; 3] {
        let mut paths = Config::default();
        pki.configure(index, &dir, &mut paths).expect("pki files");
        [paths.tls_cert, paths.tls_key, paths.tls_trust]
            .map(|path| path.expect("written").display().to_string())
    };
    let [a_cert, a_key, trust] = files(0);
    let [b_cert, b_key, _] = files(1);
    // b's RVP s2s port is fixed so a can be told it; a's is read back from its ready line.
    let b_rvp_s2s = format!("127.0.0.1:{}", free_port());
    let mut a = ServerProc::start(
        "a.test",
        &[
            "--tls-cert",
            &a_cert,
            "--tls-key",
            &a_key,
            "--tls-trust",
            &trust,
            "--rvp",
            "127.0.0.1:0",
            "--rvp-s2s",
            "127.0.0.1:0",
            "--rvp-remote",
            &format!("b.test={b_rvp_s2s}"),
            "--account",
            "alice@a.test:pw-a",
        ],
    );
    let mut b = ServerProc::start(
        "b.test",
        &[
            "--tls-cert",
            &b_cert,
            "--tls-key",
            &b_key,
            "--tls-trust",
            &trust,
            "--rvp",
            "127.0.0.1:0",
            "--rvp-s2s",
            &b_rvp_s2s,
            "--rvp-remote",
            &format!("a.test={}", a.rvp_s2s),
            "--account",
            "bob@b.test:pw-b",
        ],
    );
    assert_eq!(b.rvp_s2s.to_string(), b_rvp_s2s);

    let mut alice = Raw::connect(a.rvp, "alice", "a.test", "pw-a").await;
    let mut bob = Raw::connect(b.rvp, "bob", "b.test", "pw-b").await;
    let mut alice_cb = Callback::start().await;
    let mut bob_cb = Callback::start().await;
    login(&mut alice, &alice_cb).await;
    let bob_login = login(&mut bob, &bob_cb).await;
    let (head, body) = proppatch(&bob, "online", 1200, Some(&bob_login));
    let published = bob.send(&head, &body).await;
    assert_eq!(published.status(), 207, "{published:?}");

    let subscribe = "SUBSCRIBE http://b.test/instmsg/aliases/bob HTTP/1.1\nHost: b.test\nSubscription-Lifetime: 14400\nNotification-Type: update/propchange\nCall-Back: http://a.test/instmsg/aliases/alice\nRVP-Notifications-Version: 0.2\nRVP-From-Principal: http://a.test/instmsg/aliases/alice";
    let snapshot = alice.send(subscribe, "").await;
    assert_eq!(snapshot.status(), 207, "{snapshot:?}");
    assert!(snapshot.body.contains("online"), "{}", snapshot.body);

    let (head, body) = proppatch(&bob, "away", 1200, Some(&bob_login));
    assert_eq!(bob.send(&head, &body).await.status(), 207);
    let change = alice_cb
        .expect("bob's away", |r| {
            r.body.contains("propnotification") && r.body.contains("away")
        })
        .await;
    assert!(change.start.starts_with("NOTIFY "), "{change:?}");
    assert_eq!(change.header("rvp-hop-count"), Some("3"));
    assert_eq!(change.header("rvp-from-principal"), Some("b.test"));

    let (head, body) = message(
        &alice,
        "http://b.test/instmsg/aliases/bob",
        "between two processes",
        1,
    );
    let sent = alice.send(&head, &body).await;
    assert_eq!(sent.start, "HTTP/1.1 200 Successful", "{sent:?}");
    let got = bob_cb
        .expect("alice's message", |r| {
            r.body.contains("between two processes")
        })
        .await;
    assert!(got.start.starts_with("NOTIFY "), "{got:?}");

    let (head, body) = message(&alice, "http://b.test/instmsg/aliases/carol", "who?", 1);
    let unknown = alice.send(&head, &body).await;
    assert_eq!(unknown.status(), 404, "{unknown:?}");

    assert!(
        a.terminate(),
        "a.test did not exit on SIGTERM within the bound"
    );
    assert!(
        b.terminate(),
        "b.test did not exit on SIGTERM within the bound"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `dns_fallback` on, a domain without a static route whose nameserver never answers
/// is a 502 within the lookup bound, the reason phrase naming the failed lookup (PROFILE.md
/// §6).
#[tokio::test]
async fn rvp_dns_lookup_failure_is_502_with_the_reason() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut a = config("a.test", &[("alice", "pw-a")]);
    a.dns_fallback = true;
    a.dns_server = Some(silent.local_addr().unwrap());
    a.s2s_timeout_ms = 500;
    let a = start(a).await;
    let mut alice = Raw::connect(a.addresses.rvp, "alice", "a.test", "pw-a").await;
    let (head, body) = message(&alice, "http://b.test/instmsg/aliases/bob", "anyone?", 1);
    let started = std::time::Instant::now();
    let answer = alice.send(&head, &body).await;
    assert_eq!(answer.status(), 502, "{answer:?}");
    assert!(answer.start.contains("DNS lookup for b.test"), "{answer:?}");
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    a.stop().await;
}
