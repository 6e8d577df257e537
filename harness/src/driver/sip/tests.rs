//! The driver against small in-test SIP servers on real loopback sockets, scripted step by
//! step: each test plays the home server's side of PROFILE.md (the Digest challenges, the
//! NOTIFYs and MESSAGEs it relays, a server that stops answering, a TCP connection it
//! closes) and checks what the driver put on the wire and what it made of the answers.

use std::net::SocketAddr;

use imfed_model::{Availability, ErrorClass, MessageKind, Show, SubscriptionSignal};
use imfed_sip::codec::{Limits, StreamDecoder, parse_datagram};
use imfed_sip::digest;
use imfed_sip::{Message, Method, Request, Response, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::*;
use crate::driver::event::{Pattern, SipStart, SipWanted, Wire};

const DOMAIN: &str = "sut.test";
const NONCE: &str = "fakenonce";
const BOUND: Duration = Duration::from_secs(5);

fn credentials(user: &str, transport: Transport) -> Credentials {
    Credentials {
        user: user.into(),
        domain: DOMAIN.into(),
        password: "pw".into(),
        settings: Settings {
            transport,
            ..Settings::default()
        },
    }
}

fn address(user: &str, domain: &str) -> Address {
    parse_address(&format!("{user}@{domain}")).unwrap()
}

/// Whether `request` carries valid Digest credentials for the fake's nonce in `header`,
/// and with which `nc`.
fn authorized(request: &Request, header: &str) -> Option<String> {
    let value = request.headers.get(header)?;
    let credentials = digest::Credentials::parse(value).ok()?;
    (credentials.verify(request.method.as_str(), "pw", NONCE)
        && credentials.uri == request.uri.to_string())
    .then(|| credentials.nc.unwrap_or_default())
}

fn challenge() -> String {
    digest::Challenge::new(DOMAIN, NONCE).to_string()
}

/// A response to `request` with extra headers.
fn answer(request: &Request, status: u16, headers: &[(&str, &str)]) -> Response {
    let tag = request
        .to()
        .ok()
        .is_some_and(|to| to.tag().is_none())
        .then_some("srv");
    let mut response = Response::to(request, status, None, tag);
    for (name, value) in headers {
        response.headers.push(name, *value);
    }
    response
}

/// The home server's side over UDP: one socket, scripted.
struct FakeUdp {
    socket: UdpSocket,
}

impl FakeUdp {
    async fn bind() -> FakeUdp {
        FakeUdp {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next message and where it came from, within the bound.
    async fn next(&self) -> (Message, SocketAddr) {
        let mut buf = vec![0; 65_536];
        let (read, from) = tokio::time::timeout(BOUND, self.socket.recv_from(&mut buf))
            .await
            .expect("a datagram within the bound")
            .unwrap();
        let message = parse_datagram(&buf[..read], &Limits::default())
            .expect("valid SIP")
            .expect("not a keep-alive");
        (message, from)
    }

    async fn request(&self) -> (Request, SocketAddr) {
        match self.next().await {
            (Message::Request(request), from) => (request, from),
            (Message::Response(response), _) => panic!("a response: {}", response.status),
        }
    }

    async fn response(&self) -> Response {
        match self.next().await {
            (Message::Response(response), _) => response,
            (Message::Request(request), _) => panic!("a request: {}", request.method),
        }
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).await.unwrap();
    }

    /// Answers a REGISTER: 401 first, then 200 once it carries credentials.
    async fn register(&self) -> SocketAddr {
        let (first, from) = self.request().await;
        assert_eq!(first.method, Method::Register);
        assert!(first.headers.get("Authorization").is_none());
        self.send(
            &answer(&first, 401, &[("WWW-Authenticate", &challenge())]).to_bytes(),
            from,
        )
        .await;
        let (second, from) = self.request().await;
        assert_eq!(
            authorized(&second, "Authorization").as_deref(),
            Some("00000001")
        );
        assert_eq!(second.call_id(), first.call_id());
        assert_eq!(second.cseq().unwrap().seq, first.cseq().unwrap().seq + 1);
        assert_ne!(
            second.top_via().unwrap().branch(),
            first.top_via().unwrap().branch()
        );
        let contact = second.contacts().unwrap().remove(0);
        assert_eq!(contact.uri.transport(), Some("udp"));
        let held = format!("<{}>;expires=3600", contact.uri);
        self.send(
            &answer(&second, 200, &[("Contact", &held)]).to_bytes(),
            from,
        )
        .await;
        from
    }
}

/// A request from the fake server to the user agent.
fn to_agent(method: Method, agent: SocketAddr, from: &str, branch: &str) -> Request {
    let mut request = Request::new(
        method.clone(),
        Uri::parse(&format!("sip:bob@{agent}")).unwrap(),
    );
    request.headers.push(
        "Via",
        format!("SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}"),
    );
    request
        .headers
        .push("From", format!("<{from}>;tag=f{branch}"));
    request.headers.push("To", "<sip:bob@sut.test>");
    request.headers.push("Call-ID", format!("c{branch}@fake"));
    request.headers.push("CSeq", format!("1 {method}"));
    request.headers.push("Max-Forwards", "69");
    request
}

fn presence_matcher(from: &Address, availability: Availability, show: Option<Show>) -> Matcher {
    Matcher::Presence {
        from: Some(from.clone()),
        availability: Some(availability),
        show,
        status: None,
        priority: None,
    }
}

#[tokio::test]
async fn registers_through_a_digest_challenge_answers_messages_and_reports_480() {
    let home = FakeUdp::bind().await;
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let transcript = transcript.clone();
        let addr = home.addr();
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    let agent = home.register().await;
    let mut bob = login.await.unwrap().expect("logged in");
    assert_eq!(bob.contact().host_port(), agent.to_string());
    assert_eq!(render(&bob.address()), "sip:bob@sut.test");
    // The REGISTER's 200 is there for expect_sip, and is no event.
    let registered = Matcher::Pattern(Pattern::Sip {
        wanted: SipWanted::Response {
            status: 200,
            reason: None,
        },
        headers: vec![("contact".into(), "expires=3600".into())],
    });
    assert!(bob.take_matching(&registered).is_some());
    assert!(bob.unmatched().is_empty(), "{:?}", bob.unmatched());

    // A MESSAGE arrives and is answered 200 with a To tag; the event has the subject.
    let mut message = to_agent(Method::Message, agent, "sip:alice@ref.test", "m1");
    message.headers.push("Subject", "Grüße");
    message
        .headers
        .push("Content-Type", "text/plain;charset=UTF-8");
    message.body = "Ça va? 🙂".as_bytes().to_vec();
    home.send(&message.to_bytes(), agent).await;
    let ok = home.response().await;
    assert_eq!(ok.status, 200);
    assert!(ok.to_header().unwrap().tag().is_some());
    let alice = address("alice", "ref.test");
    let received = bob
        .wait_for(
            &Matcher::Message {
                from: Some(alice.clone()),
                kind: Some(MessageKind::Chat),
                body: Some("Ça va? 🙂".into()),
                thread: None,
                subject: Some("Grüße".into()),
            },
            BOUND,
        )
        .await
        .expect("the message");
    assert!(matches!(
        &received.wire,
        Wire::Sip(form) if matches!(&form.start, SipStart::Request { method, .. } if method == "MESSAGE")
    ));

    // A MESSAGE to a user without contact: 407 answered once, then 480.
    let out = |to: &str| OutMessage {
        to: address(to, "ref.test"),
        kind: MessageKind::Chat,
        id: None,
        subject: Some("hi".into()),
        body: Some("anyone?".into()),
        thread: None,
    };
    let server = async {
        let (first, from) = home.request().await;
        assert_eq!(first.method, Method::Message);
        assert_eq!(first.uri.to_string(), "sip:nobody@ref.test");
        assert_eq!(first.headers.get("Subject"), Some("hi"));
        assert!(first.headers.get("Proxy-Authorization").is_none());
        home.send(
            &answer(&first, 407, &[("Proxy-Authenticate", &challenge())]).to_bytes(),
            from,
        )
        .await;
        let (second, from) = home.request().await;
        assert_eq!(
            authorized(&second, "Proxy-Authorization").as_deref(),
            Some("00000001")
        );
        home.send(&answer(&second, 480, &[]).to_bytes(), from).await;
        // The next request carries the held challenge at once, with the next nc.
        let (third, from) = home.request().await;
        assert_eq!(
            authorized(&third, "Proxy-Authorization").as_deref(),
            Some("00000002")
        );
        home.send(&answer(&third, 200, &[]).to_bytes(), from).await;
    };
    let driver = async {
        // The MESSAGE goes out in the background; its final response comes by itself.
        bob.send_message(&out("nobody")).await.unwrap();
        let bounce = bob
            .wait_for(
                &Matcher::Error {
                    from: Some(address("nobody", "ref.test")),
                    about: Some(StanzaKind::Message),
                    classes: vec![ErrorClass::Undelivered],
                    conditions: vec!["480".into()],
                },
                BOUND,
            )
            .await
            .expect("the 480 as an undelivered error");
        assert!(bounce.text.starts_with("SIP/2.0 480"));
        bob.send_message(&out("alice")).await.unwrap();
    };
    tokio::join!(server, driver);
    // The 200 to the second MESSAGE is no event.
    assert!(bob.take_matching(&Matcher::Any).is_none());
    assert_eq!(*transcript.lost_streams().borrow(), 0);
}

#[tokio::test]
async fn notifies_become_presence_and_the_end_of_the_subscription() {
    let home = FakeUdp::bind().await;
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (home.addr(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    let agent = home.register().await;
    let mut bob = login.await.unwrap().unwrap();
    let alice = address("alice", "ref.test");

    // The first NOTIFY comes before the 202 (RFC 6665 §4.1.2.4).
    let pidf = |basic: &str, note: &str, activity: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@ref.test\">\
             <tuple id=\"t1\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\
             {activity}</presence>"
        )
    };
    let notify_in = |subscribe: &Request, cseq: u32, state: &str, body: String| {
        let mut notify = Request::new(Method::Notify, subscribe.contacts().unwrap().remove(0).uri);
        notify.headers.push(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKn{cseq}"),
        );
        notify.headers.push(
            "From",
            format!("{};tag=presentity", subscribe.to().unwrap()),
        );
        notify
            .headers
            .push("To", subscribe.from().unwrap().to_string());
        notify.headers.push("Call-ID", subscribe.call_id().unwrap());
        notify.headers.push("CSeq", format!("{cseq} NOTIFY"));
        notify.headers.push("Event", "presence");
        notify.headers.push("Subscription-State", state);
        notify.headers.push("Contact", "<sip:alice@127.0.0.1:5999>");
        notify.headers.push("Content-Type", "application/pidf+xml");
        notify.body = body.into_bytes();
        notify
    };
    let server = async {
        let (subscribe, from) = home.request().await;
        assert_eq!(subscribe.method, Method::Subscribe);
        assert_eq!(subscribe.headers.get("Event"), Some("presence"));
        assert_eq!(
            subscribe.headers.get("Accept"),
            Some("application/pidf+xml")
        );
        assert_eq!(subscribe.expires(), Some(60));
        let notify = notify_in(
            &subscribe,
            1,
            "active;expires=60",
            pidf(
                "open",
                "fishing",
                "<dm:person id=\"p\"><rpid:activities><rpid:away/></rpid:activities></dm:person>",
            ),
        );
        home.send(&notify.to_bytes(), agent).await;
        assert_eq!(home.response().await.status, 200);
        // A retransmission of the NOTIFY is answered again and not handed up twice.
        home.send(&notify.to_bytes(), agent).await;
        assert_eq!(home.response().await.status, 200);
        let mut accepted = answer(&subscribe, 202, &[("Expires", "60")]);
        accepted
            .headers
            .set("To", format!("{};tag=presentity", subscribe.to().unwrap()));
        home.send(&accepted.to_bytes(), from).await;
        subscribe
    };
    let (subscribe, subscribed) =
        tokio::join!(server, bob.subscribe(&alice, Some(Duration::from_secs(60))));
    subscribed.unwrap();
    bob.wait_for(
        &Matcher::Presence {
            from: Some(alice.clone()),
            availability: Some(Availability::Available),
            show: Some(Show::Away),
            status: Some("fishing".into()),
            priority: None,
        },
        BOUND,
    )
    .await
    .expect("the first NOTIFY as presence");

    // The subscription ends: the last NOTIFY is unavailable and the end of it.
    let last = notify_in(
        &subscribe,
        2,
        "terminated;reason=timeout",
        pidf("closed", "gone", ""),
    );
    home.send(&last.to_bytes(), agent).await;
    assert_eq!(home.response().await.status, 200);
    bob.wait_for(
        &presence_matcher(&alice, Availability::Unavailable, None),
        BOUND,
    )
    .await
    .expect("unavailable from the last NOTIFY");
    bob.wait_for(
        &Matcher::Signal {
            signal: SubscriptionSignal::Refused,
            from: Some(alice.clone()),
        },
        BOUND,
    )
    .await
    .expect("the end of the subscription");
    // No second presence from the retransmitted NOTIFY.
    assert!(
        bob.take_matching(&presence_matcher(&alice, Availability::Available, None))
            .is_none()
    );
    // A NOTIFY of a dialog the agent does not have (the subscription ended) is a 481.
    home.send(
        &notify_in(&subscribe, 3, "active", pidf("open", "", "")).to_bytes(),
        agent,
    )
    .await;
    assert_eq!(home.response().await.status, 481);
    // Unsubscribing from no subscription sends nothing: the next request is the ping.
    bob.subscription(SubscriptionAction::Unsubscribe, &alice)
        .await
        .unwrap();

    // Raw requests: written as they are, their answers observable.
    bob.send_raw("OPTIONS sip:sut.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKraw\r\n\r\n")
        .await
        .unwrap();
    let (raw, from) = home.request().await;
    assert_eq!(raw.top_via().unwrap().branch(), Some("z9hG4bKraw"));
    assert!(raw.call_id().is_none(), "nothing added");
    let mut refused = Response::new(400, "Missing Call-ID");
    refused
        .headers
        .push("Via", "SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKraw");
    refused.headers.push("To", "<sip:sut.test>");
    home.send(&refused.to_bytes(), from).await;
    let answered = bob
        .wait_for(
            &Matcher::Pattern(Pattern::Sip {
                wanted: SipWanted::Response {
                    status: 400,
                    reason: Some("Call-ID".into()),
                },
                headers: vec![("v".into(), "z9hG4bKraw".into())],
            }),
            BOUND,
        )
        .await
        .expect("the raw request's answer");
    assert!(matches!(
        answered.event,
        Event::Error {
            class: ErrorClass::BadRequest,
            ..
        }
    ));
    let ping = async {
        let (options, from) = home.request().await;
        assert_eq!(options.method, Method::Options);
        assert_eq!(options.uri.to_string(), "sip:sut.test");
        home.send(&answer(&options, 200, &[]).to_bytes(), from)
            .await;
    };
    let (_, live) = tokio::join!(ping, bob.round_trip(BOUND));
    live.unwrap();
    assert_eq!(*transcript.lost_streams().borrow(), 0);
}

#[tokio::test]
async fn retransmits_over_udp_and_fails_liveness_when_the_server_stops_answering() {
    let home = FakeUdp::bind().await;
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (home.addr(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    home.register().await;
    let mut bob = login.await.unwrap().unwrap();
    // The first OPTIONS is lost; the retransmission (Timer A, 500 ms) is answered.
    let server = async {
        let (lost, _) = home.request().await;
        let (again, from) = home.request().await;
        assert_eq!(lost.to_bytes(), again.to_bytes(), "the same request again");
        home.send(&answer(&again, 200, &[]).to_bytes(), from).await;
    };
    let (_, live) = tokio::join!(server, bob.round_trip(BOUND));
    live.expect("answered on retransmission");

    // The server stops answering: the round trip fails within its bound, and the session
    // is not called ended before Timer F.
    let started = std::time::Instant::now();
    let bound = Duration::from_millis(1500);
    let failure = bob.round_trip(bound).await.unwrap_err();
    assert!(
        matches!(failure, Liveness::NoAnswer(b) if b == bound),
        "{failure:?}"
    );
    assert!(started.elapsed() < bound + Duration::from_secs(1));
    assert!(bob.ended().is_none());
    assert!(
        bob.describe_liveness(&failure)
            .contains("no final response to a liveness OPTIONS within 1500ms")
    );
    // Meanwhile the OPTIONS was retransmitted on the wire.
    let (options, _) = home.request().await;
    assert_eq!(options.method, Method::Options);
}

/// The home server's side over TCP.
struct FakeTcp {
    stream: TcpStream,
    decoder: StreamDecoder,
}

impl FakeTcp {
    async fn next(&mut self) -> Message {
        let mut buf = vec![0; 16 * 1024];
        tokio::time::timeout(BOUND, async {
            loop {
                if let Some(message) = self.decoder.next_message().expect("valid SIP") {
                    return message;
                }
                let read = self.stream.read(&mut buf).await.unwrap();
                assert!(read > 0, "the agent closed the connection");
                self.decoder.feed(&buf[..read]);
            }
        })
        .await
        .expect("a message within the bound")
    }

    async fn request(&mut self) -> Request {
        match self.next().await {
            Message::Request(request) => request,
            Message::Response(response) => panic!("a response: {}", response.status),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

#[tokio::test]
async fn over_tcp_requests_come_to_the_contact_and_a_closed_connection_ends_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (listener.local_addr().unwrap(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Tcp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut home = FakeTcp {
        stream,
        decoder: StreamDecoder::new(Limits::default()),
    };
    let register = home.request().await;
    assert_eq!(register.top_via().unwrap().transport, "TCP");
    let contact = register.contacts().unwrap().remove(0).uri;
    assert_eq!(contact.transport(), Some("tcp"));
    home.send(&answer(&register, 200, &[]).to_bytes()).await;
    let mut bob = login.await.unwrap().unwrap();

    // The server connects to the Contact to deliver a MESSAGE; the answer comes back on
    // that connection.
    let mut relay = FakeTcp {
        stream: TcpStream::connect(contact.host_port()).await.unwrap(),
        decoder: StreamDecoder::new(Limits::default()),
    };
    let agent: SocketAddr = bob.contact().host_port().parse().unwrap();
    let mut message = to_agent(Method::Message, agent, "sip:alice@ref.test", "t1");
    message
        .headers
        .set("Via", "SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt1");
    message.body = b"over tcp".to_vec();
    relay.send(&message.to_bytes()).await;
    match relay.next().await {
        Message::Response(response) => assert_eq!(response.status, 200),
        Message::Request(request) => panic!("{}", request.method),
    }
    bob.wait_for(
        &Matcher::Message {
            from: Some(address("alice", "ref.test")),
            kind: None,
            body: Some("over tcp".into()),
            thread: None,
            subject: None,
        },
        BOUND,
    )
    .await
    .expect("the message over the Contact connection");

    // The home server closes the connection: the session ends unasked, and waits end.
    drop(home);
    let wait = bob.wait_for(&Matcher::Any, BOUND).await.unwrap_err();
    let ended = wait.ended.expect("the session ended");
    assert!(!ended.expected);
    assert!(
        bob.describe_end(&ended)
            .contains("the home server closed the TCP connection"),
        "{}",
        bob.describe_end(&ended)
    );
    assert_eq!(*transcript.lost_streams().borrow(), 1);
    assert!(matches!(
        bob.round_trip(BOUND).await,
        Err(Liveness::Ended(_))
    ));
    assert!(matches!(
        bob.send_message(&OutMessage {
            to: address("alice", "ref.test"),
            kind: MessageKind::Chat,
            id: None,
            subject: None,
            body: Some("x".into()),
            thread: None,
        })
        .await,
        Err(DriverError::Stream(_))
    ));
    bob.close().await;
}

#[tokio::test]
async fn a_request_too_long_for_udp_goes_over_tcp_and_logout_signs_off_in_order() {
    // UDP and TCP on one port, as PROFILE.md §1 has it.
    let home = FakeUdp::bind().await;
    let listener = TcpListener::bind(home.addr()).await.unwrap();
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (home.addr(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    home.register().await;
    let mut bob = login.await.unwrap().unwrap();
    let long = "x".repeat(2000);
    let server = async {
        let (stream, _) = listener.accept().await.unwrap();
        let mut tcp = FakeTcp {
            stream,
            decoder: StreamDecoder::new(Limits::default()),
        };
        let message = tcp.request().await;
        assert_eq!(message.top_via().unwrap().transport, "TCP");
        assert_eq!(message.body.len(), 2000);
        tcp.send(&answer(&message, 200, &[]).to_bytes()).await;
    };
    let out = OutMessage {
        to: address("alice", "ref.test"),
        kind: MessageKind::Chat,
        id: None,
        subject: None,
        body: Some(long),
        thread: None,
    };
    let (_, sent) = tokio::join!(server, bob.send_message(&out));
    sent.unwrap();

    // Publish: the 200's SIP-ETag is kept, and the answer is the actor's own presence.
    let server = async {
        let (publish, from) = home.request().await;
        assert_eq!(publish.method, Method::Publish);
        assert_eq!(publish.headers.get("Event"), Some("presence"));
        assert!(publish.headers.get("SIP-If-Match").is_none());
        let document = pidf::Presence::parse(&publish.body).unwrap();
        assert!(document.is_open());
        home.send(
            &answer(&publish, 200, &[("SIP-ETag", "e1"), ("Expires", "3600")]).to_bytes(),
            from,
        )
        .await;
    };
    let busy = OutPresence {
        to: None,
        availability: Availability::Available,
        show: Some(Show::Dnd),
        status: Some("busy".into()),
        priority: None,
        lease: None,
    };
    let (_, published) = tokio::join!(server, bob.publish(&busy));
    published.unwrap();
    bob.wait_for(
        &presence_matcher(
            &address("bob", DOMAIN),
            Availability::Available,
            Some(Show::Dnd),
        ),
        BOUND,
    )
    .await
    .expect("the own presence");

    // Logout: PUBLISH closed with SIP-If-Match, its removal, then REGISTER Expires 0.
    let server = async {
        let (closed, from) = home.request().await;
        assert_eq!(closed.headers.get("SIP-If-Match"), Some("e1"));
        assert!(!pidf::Presence::parse(&closed.body).unwrap().is_open());
        home.send(
            &answer(&closed, 200, &[("SIP-ETag", "e2")]).to_bytes(),
            from,
        )
        .await;
        let (removal, from) = home.request().await;
        assert_eq!(removal.method, Method::Publish);
        assert_eq!(removal.expires(), Some(0));
        assert!(removal.body.is_empty());
        home.send(&answer(&removal, 200, &[]).to_bytes(), from)
            .await;
        let (unregister, from) = home.request().await;
        assert_eq!(unregister.method, Method::Register);
        assert_eq!(unregister.expires(), Some(0));
        home.send(&answer(&unregister, 200, &[]).to_bytes(), from)
            .await;
    };
    tokio::join!(server, bob.logout());
    assert_eq!(*transcript.lost_streams().borrow(), 0);
}

#[tokio::test]
async fn messages_to_one_recipient_go_in_order_and_a_round_trip_waits_for_their_answers() {
    let home = FakeUdp::bind().await;
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (home.addr(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    home.register().await;
    let mut bob = login.await.unwrap().unwrap();
    let text = |body: &str| OutMessage {
        to: address("alice", "ref.test"),
        kind: MessageKind::Chat,
        id: None,
        subject: None,
        body: Some(body.into()),
        thread: None,
    };
    bob.send_message(&text("one")).await.unwrap();
    bob.send_message(&text("two")).await.unwrap();
    let (one, from) = home.request().await;
    assert_eq!(one.body, b"one");
    // "two" waits for the final response to "one" (only retransmissions of "one" come).
    let quiet = tokio::time::timeout(Duration::from_millis(300), home.request()).await;
    assert!(quiet.is_err(), "nothing before the answer");
    home.send(&answer(&one, 200, &[]).to_bytes(), from).await;
    let (two, from) = loop {
        let (request, from) = home.request().await;
        if request.body == b"two" {
            break (request, from);
        }
        assert_eq!(request.body, b"one", "a retransmission of one, or two");
    };
    // A round trip started now waits for the answer to "two" before its OPTIONS.
    let server = async {
        let quiet = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                let (request, _) = home.request().await;
                if request.method == Method::Options {
                    return request;
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "no OPTIONS while a MESSAGE is unanswered");
        home.send(&answer(&two, 200, &[]).to_bytes(), from).await;
        loop {
            let (request, from) = home.request().await;
            if request.method == Method::Options {
                home.send(&answer(&request, 200, &[]).to_bytes(), from)
                    .await;
                return;
            }
        }
    };
    let (_, live) = tokio::join!(server, bob.round_trip(BOUND));
    live.unwrap();
    assert_eq!(*transcript.lost_streams().borrow(), 0);
}

/// The same against imfed-server's SIP front-end, in process: one user agent over UDP, one
/// over TCP, through registration, publication, a subscription and its end, and messages.
#[tokio::test]
async fn against_the_reference_server_over_udp_and_tcp() {
    let account = |user: &str| imfed_server::config::AccountSpec {
        user: user.into(),
        domain: DOMAIN.into(),
        password: "pw".into(),
    };
    let config = imfed_server::config::Config {
        domains: vec![DOMAIN.into()],
        accounts: vec![account("alice"), account("bob")],
        ..Default::default()
    };
    let server = imfed_server::server::Server::new(config)
        .start()
        .await
        .expect("the reference server starts");
    let home = server.addresses.sip;
    let transcript = Transcript::new();
    let dump = |transcript: &Transcript| {
        transcript
            .lines()
            .iter()
            .map(|line| format!("{} {:?} {}", line.actor, line.flow, line.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut bob = Session::log_in(
        "bob",
        home,
        &credentials("bob", Transport::Udp),
        transcript.clone(),
        BOUND,
    )
    .await
    .unwrap();
    let mut alice = Session::log_in(
        "alice",
        home,
        &credentials("alice", Transport::Tcp),
        transcript.clone(),
        BOUND,
    )
    .await
    .unwrap_or_else(|error| panic!("{error}\n{}", dump(&transcript)));
    let (alice_at, bob_at) = (address("alice", DOMAIN), address("bob", DOMAIN));
    let busy = OutPresence {
        to: None,
        availability: Availability::Available,
        show: Some(Show::Dnd),
        status: Some("in a meeting".into()),
        priority: None,
        lease: None,
    };
    alice.publish(&busy).await.unwrap();
    bob.subscribe(&alice_at, None).await.unwrap();
    bob.wait_for(
        &Matcher::Presence {
            from: Some(alice_at.clone()),
            availability: Some(Availability::Available),
            show: Some(Show::Dnd),
            status: Some("in a meeting".into()),
            priority: None,
        },
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("the first NOTIFY\n{}", dump(&transcript)));
    alice
        .publish(&OutPresence {
            show: Some(Show::Away),
            status: None,
            ..busy.clone()
        })
        .await
        .unwrap();
    bob.wait_for(
        &presence_matcher(&alice_at, Availability::Available, Some(Show::Away)),
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("the change\n{}", dump(&transcript)));
    let hello = OutMessage {
        to: alice_at.clone(),
        kind: MessageKind::Chat,
        id: None,
        subject: Some("hi".into()),
        body: Some("über TCP".into()),
        thread: None,
    };
    bob.send_message(&hello).await.unwrap();
    alice
        .wait_for(
            &Matcher::Message {
                from: Some(bob_at.clone()),
                kind: Some(MessageKind::Chat),
                body: Some("über TCP".into()),
                thread: None,
                subject: Some("hi".into()),
            },
            BOUND,
        )
        .await
        .unwrap_or_else(|_| panic!("the message over TCP\n{}", dump(&transcript)));
    bob.round_trip(BOUND).await.unwrap();
    alice.round_trip(BOUND).await.unwrap();
    // Signing off: bob sees alice unavailable; a message to her now is a 480.
    alice.logout().await;
    bob.wait_for(
        &presence_matcher(&alice_at, Availability::Unavailable, None),
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("the sign-off\n{}", dump(&transcript)));
    bob.send_message(&hello).await.unwrap();
    bob.wait_for(
        &Matcher::Error {
            from: Some(alice_at.clone()),
            about: Some(StanzaKind::Message),
            classes: vec![ErrorClass::Undelivered],
            conditions: vec!["480".into()],
        },
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("480\n{}", dump(&transcript)));
    // Unsubscribing ends the subscription with a final NOTIFY (RFC 6665 §4.1.2.3).
    bob.subscription(SubscriptionAction::Unsubscribe, &alice_at)
        .await
        .unwrap();
    bob.wait_for(
        &Matcher::Signal {
            signal: SubscriptionSignal::Refused,
            from: Some(alice_at.clone()),
        },
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("the final NOTIFY\n{}", dump(&transcript)));
    bob.round_trip(BOUND).await.unwrap();
    bob.logout().await;
    assert_eq!(
        *transcript.lost_streams().borrow(),
        0,
        "{}",
        dump(&transcript)
    );
    server.stop().await;
}

#[tokio::test]
async fn raw_requests_with_authenticate_answer_one_challenge_and_add_nothing_else() {
    let home = FakeUdp::bind().await;
    let transcript = Transcript::new();
    let login = tokio::spawn({
        let (addr, transcript) = (home.addr(), transcript.clone());
        async move {
            Session::log_in(
                "bob",
                addr,
                &credentials("bob", Transport::Udp),
                transcript,
                BOUND,
            )
            .await
        }
    });
    home.register().await;
    let mut bob = login.await.unwrap().unwrap();
    let raw = |branch: &str| {
        format!(
            "PUBLISH sip:bob@sut.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;rport;branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@sut.test>;tag=raw\r\nTo: <sip:bob@sut.test>\r\n\
             Call-ID: raw-{branch}\r\nCSeq: 7 PUBLISH\r\nEvent: presence\r\n\
             SIP-If-Match: never-issued\r\n\r\n"
        )
    };
    // A request that cannot name its transaction, or does not parse, is refused up front.
    assert!(matches!(
        bob.send_raw_authenticated(&raw("no-cookie")).await,
        Err(DriverError::Refused(_))
    ));
    assert!(matches!(
        bob.send_raw_authenticated("PUBLISH\r\n\r\n").await,
        Err(DriverError::Refused(_))
    ));

    bob.send_raw_authenticated(&raw("z9hG4bKraw1"))
        .await
        .unwrap();
    let (first, from) = home.request().await;
    assert_eq!(first.top_via().unwrap().branch(), Some("z9hG4bKraw1"));
    assert!(
        first.headers.get("Proxy-Authorization").is_none(),
        "nothing added"
    );
    assert!(
        first.headers.get("Authorization").is_none(),
        "nothing added"
    );
    home.send(
        &answer(&first, 407, &[("Proxy-Authenticate", &challenge())]).to_bytes(),
        from,
    )
    .await;
    let (second, from) = home.request().await;
    assert!(authorized(&second, "Proxy-Authorization").is_some());
    assert!(second.headers.get("Authorization").is_none());
    assert_eq!(second.cseq().unwrap().seq, 8, "the next CSeq");
    assert_eq!(second.call_id(), first.call_id());
    assert_eq!(second.headers.get("SIP-If-Match"), Some("never-issued"));
    let branch = second.top_via().unwrap().branch().unwrap().to_string();
    assert!(
        branch.starts_with("z9hG4bK") && branch != "z9hG4bKraw1",
        "{branch}"
    );
    home.send(&answer(&second, 412, &[]).to_bytes(), from).await;
    let refused = bob
        .wait_for(
            &Matcher::Pattern(Pattern::Sip {
                wanted: SipWanted::Response {
                    status: 412,
                    reason: None,
                },
                headers: vec![("Call-ID".into(), "raw-z9hG4bKraw1".into())],
            }),
            BOUND,
        )
        .await
        .expect("the answer to the authenticated request");
    assert!(matches!(
        refused.event,
        Event::Error {
            about: Some(StanzaKind::Presence),
            ..
        }
    ));

    // Only one challenge is answered: a second 407 is the answer.
    bob.send_raw_authenticated(&raw("z9hG4bKraw2"))
        .await
        .unwrap();
    for _ in 0..2 {
        let (request, from) = home.request().await;
        home.send(
            &answer(&request, 407, &[("Proxy-Authenticate", &challenge())]).to_bytes(),
            from,
        )
        .await;
    }
    bob.wait_for(
        &Matcher::Pattern(Pattern::Sip {
            wanted: SipWanted::Response {
                status: 407,
                reason: None,
            },
            headers: vec![("Call-ID".into(), "raw-z9hG4bKraw2".into())],
        }),
        BOUND,
    )
    .await
    .expect("the second challenge, unanswered");
    // The next request is the liveness OPTIONS, not a third PUBLISH.
    let ping = async {
        let (options, from) = home.request().await;
        assert_eq!(options.method, Method::Options);
        home.send(&answer(&options, 200, &[]).to_bytes(), from)
            .await;
    };
    let (_, live) = tokio::join!(ping, bob.round_trip(BOUND));
    live.unwrap();
}
