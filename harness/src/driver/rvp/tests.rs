//! The driver against a small in-test home server that follows PROFILE.md (Digest, the
//! login subscription, leased presence, presence subscriptions, DeepOr messages, the
//! liveness PROPFIND). imfed-server has no RVP front-end yet; when it does, this test
//! should run against it instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use imfed_model::{ErrorClass, MessageKind, Show};
use imfed_rvp::ResponseDecoder;
use imfed_rvp::digest;
use imfed_rvp::headers::SubscriptionLifetime;
use imfed_rvp::xml::{
    MultiStatus, PropChange, PropNotification, PropStat, StatusLine, StatusResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::driver::event::{Pattern, RvpStart};

const DOMAIN: &str = "sut.test";
const NONCE: &str = "fakenonce";

#[derive(Default)]
struct Home {
    /// Endpoints (login subscription id → callback) by user.
    endpoints: HashMap<String, Vec<(String, NodeUrl)>>,
    /// Presence by user.
    state: HashMap<String, Presence>,
    /// Presence subscriptions: id → (watcher, presentity).
    watchers: HashMap<String, (String, String)>,
    next_id: u64,
}

type Shared = Arc<Mutex<Home>>;

fn authorized(request: &Request) -> Option<String> {
    let value = request.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let credentials = digest::Credentials::parse(value).ok()?;
    let expected = digest::response(
        &credentials.username,
        DOMAIN,
        "pw",
        request.method.as_str(),
        &credentials.uri,
        NONCE,
        Some((credentials.nc.as_deref()?, credentials.cnonce.as_deref()?)),
    );
    (credentials.nonce == NONCE && credentials.response == expected).then_some(credentials.username)
}

fn reply(status: u16) -> Response {
    Response::new(StatusCode::from_u16(status).expect("a status"))
}

/// Sends a NOTIFY to a callback and reads the answer (raw bytes, one connection each).
async fn notify(callback: &NodeUrl, body: Vec<u8>) -> u16 {
    let request = Request::new(Method::Notify, Uri::from_static("/")).with_xml(body);
    let Ok(mut tcp) = TcpStream::connect(callback.authority()).await else {
        return 0;
    };
    let _ = tcp.write_all(&request.to_bytes()).await;
    let mut decoder = ResponseDecoder::default();
    let mut buf = vec![0; 4096];
    loop {
        if let Ok(Some(response)) = decoder.next_response() {
            return response.status.as_u16();
        }
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return 0,
            Ok(n) => decoder.feed(&buf[..n]),
        }
    }
}

fn url(user: &str) -> NodeUrl {
    NodeUrl::principal(DOMAIN, None, user).expect("a principal")
}

/// Tells `user`'s watchers its new state (relayed to each watcher's endpoints).
async fn tell_watchers(home: &Shared, user: &str, presence: Presence) {
    let targets: Vec<(String, NodeUrl)> = {
        let home = home.lock().unwrap();
        home.watchers
            .values()
            .filter(|(_, presentity)| presentity == user)
            .flat_map(|(watcher, _)| {
                home.endpoints
                    .get(watcher)
                    .into_iter()
                    .flatten()
                    .map(|(_, callback)| (watcher.clone(), callback.clone()))
            })
            .collect()
    };
    for (watcher, callback) in targets {
        let body = Notification::Property(PropNotification {
            from: Contact::new(&url(user), ""),
            to: Contact::new(&url(&watcher), ""),
            change: PropChange::Update(PropertyUpdate::set(vec![Property::State(State::plain(
                presence.clone(),
            ))])),
        })
        .to_xml();
        notify(&callback, body).await;
    }
}

async fn handle(home: Shared, request: Request) -> Response {
    let Some(user) = authorized(&request) else {
        return reply(401).with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_str(&format!(
                "Digest realm=\"{DOMAIN}\", qop=\"auth\", nonce=\"{NONCE}\""
            ))
            .unwrap(),
            false,
        );
    };
    let Ok(target) = NodeUrl::parse(&request.target.to_string()) else {
        return reply(400);
    };
    let Some(alias) = target.alias().map(str::to_string) else {
        return reply(404);
    };
    let sub = request.header::<SubscriptionId>().ok().flatten();
    let own = alias == user;
    match (&request.method, own) {
        (Method::Subscribe, true) => {
            let mut home = home.lock().unwrap();
            if let Some(sub) = sub {
                let known = home
                    .endpoints
                    .get(&user)
                    .is_some_and(|e| e.iter().any(|(id, _)| id == sub.as_str()));
                return if known {
                    reply(200).with(SubscriptionLifetime(14400))
                } else {
                    reply(412)
                };
            }
            let Ok(Some(CallBack(callback))) = request.header::<CallBack>() else {
                return reply(400);
            };
            home.next_id += 1;
            let id = format!("e{}", home.next_id);
            home.endpoints
                .entry(user)
                .or_default()
                .push((id.clone(), callback));
            reply(200)
                .with(SubscriptionId::new(id).unwrap())
                .with(SubscriptionLifetime(14400))
        }
        (Method::Subscribe, false) => {
            let presence = {
                let mut home = home.lock().unwrap();
                home.next_id += 1;
                let id = format!("w{}", home.next_id);
                home.watchers.insert(id.clone(), (user, alias.clone()));
                (
                    id,
                    home.state.get(&alias).cloned().unwrap_or(Presence::Offline),
                )
            };
            let body = MultiStatus {
                responses: vec![StatusResponse {
                    href: target.to_string(),
                    propstats: vec![PropStat {
                        props: vec![Property::State(State::plain(presence.1))],
                        status: StatusLine::new(StatusCode::OK),
                    }],
                    status: None,
                }],
            };
            reply(207)
                .with(SubscriptionId::new(presence.0).unwrap())
                .with(SubscriptionLifetime(14400))
                .with_xml(body.to_xml())
        }
        (Method::Unsubscribe, _) => {
            let Some(sub) = sub else {
                return reply(400);
            };
            let mut home = home.lock().unwrap();
            if home.watchers.remove(sub.as_str()).is_some() {
                return reply(200);
            }
            let endpoints = home.endpoints.entry(user).or_default();
            let before = endpoints.len();
            endpoints.retain(|(id, _)| id != sub.as_str());
            reply(if endpoints.len() < before { 200 } else { 412 })
        }
        (Method::Proppatch, true) => {
            let Ok(update) = PropertyUpdate::parse(&request.body) else {
                return reply(400);
            };
            let Some(presence) = mapping::state_in(&update.set).cloned() else {
                return reply(400);
            };
            home.lock()
                .unwrap()
                .state
                .insert(user.clone(), presence.clone());
            tell_watchers(&home, &user, presence).await;
            reply(207).with_xml(MultiStatus::default().to_xml())
        }
        (Method::Propfind, true) => reply(207).with_xml(MultiStatus::default().to_xml()),
        (Method::Notify, false) => {
            let callback = home
                .lock()
                .unwrap()
                .endpoints
                .get(&alias)
                .and_then(|e| e.first().map(|(_, callback)| callback.clone()));
            match callback {
                Some(callback) => reply(notify(&callback, request.body).await),
                None => reply(412),
            }
        }
        _ => reply(403),
    }
}

/// Serves HTTP/1.1 with keep-alive until the task is aborted (which drops every
/// connection, as a crash would).
async fn serve(listener: TcpListener, home: Shared) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            continue;
        };
        let home = home.clone();
        connections.spawn(async move {
            let mut decoder = imfed_rvp::RequestDecoder::default();
            let mut buf = vec![0; 16 * 1024];
            loop {
                while let Ok(Some(request)) = decoder.next_request() {
                    let response = handle(home.clone(), request).await;
                    if tcp.write_all(&response.to_bytes()).await.is_err() {
                        return;
                    }
                }
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => decoder.feed(&buf[..n]),
                }
            }
        });
    }
}

fn credentials(user: &str) -> Credentials {
    Credentials {
        user: user.into(),
        domain: DOMAIN.into(),
        password: "pw".into(),
        settings: Settings::default(),
    }
}

fn address(user: &str) -> Address {
    parse_address(&format!("{user}@{DOMAIN}")).unwrap()
}

const BOUND: Duration = Duration::from_secs(5);

fn presence_from(user: &str, available: bool, show: Option<Show>) -> Matcher {
    Matcher::Presence {
        from: Some(address(user)),
        availability: Some(if available {
            Availability::Available
        } else {
            Availability::Unavailable
        }),
        show,
        status: None,
        priority: None,
    }
}

fn out_presence(show: Option<Show>) -> OutPresence {
    OutPresence {
        to: None,
        availability: Availability::Available,
        show,
        status: None,
        priority: None,
        lease: None,
    }
}

use imfed_model::Availability;

#[tokio::test]
async fn log_in_publish_subscribe_message_and_liveness() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let home_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, Shared::default()));
    let transcript = Transcript::new();
    let mut bob = Session::log_in(
        "bob",
        home_addr,
        &credentials("bob"),
        transcript.clone(),
        BOUND,
    )
    .await
    .unwrap();
    let mut alice = Session::log_in(
        "alice",
        home_addr,
        &credentials("Alice"),
        transcript.clone(),
        BOUND,
    )
    .await
    .unwrap();
    assert_eq!(bob.address().endpoint.as_deref(), Some("e1"));
    assert_eq!(
        render(&alice.address()),
        "http://sut.test/instmsg/aliases/alice"
    );
    // The login answer is there for expect_http.
    let login_answer = Matcher::Pattern(Pattern::Http {
        status: 200,
        headers: vec![("subscription-lifetime".into(), "14400".into())],
        body_contains: vec![],
    });
    assert!(bob.take_matching(&login_answer).is_some());
    assert!(bob.unmatched().is_empty(), "{:?}", bob.unmatched());

    alice.publish(&out_presence(None)).await.unwrap();
    bob.subscription(SubscriptionAction::Subscribe, &address("alice"))
        .await
        .unwrap();
    bob.wait_for(&presence_from("alice", true, None), BOUND)
        .await
        .expect("the SUBSCRIBE snapshot");
    alice.publish(&out_presence(Some(Show::Dnd))).await.unwrap();
    let busy = bob
        .wait_for(&presence_from("alice", true, Some(Show::Dnd)), BOUND)
        .await
        .expect("the NOTIFY of the change");
    let Wire::Rvp(form) = &busy.wire else {
        panic!("not RVP");
    };
    assert!(matches!(&form.start, RvpStart::Request { method, .. } if method == "NOTIFY"));

    let message = OutMessage {
        to: address("alice"),
        kind: MessageKind::Chat,
        id: None,
        subject: None,
        body: Some("hé, alice".into()),
        thread: None,
    };
    bob.send_message(&message).await.unwrap();
    alice
        .wait_for(
            &Matcher::Message {
                from: Some(address("bob")),
                kind: Some(MessageKind::Chat),
                body: Some("hé, alice".into()),
                thread: None,
                subject: None,
            },
            BOUND,
        )
        .await
        .expect("the message");
    assert!(matches!(
        alice
            .publish(&OutPresence {
                show: Some(Show::Chat),
                ..out_presence(None)
            })
            .await,
        Err(DriverError::Unsupported(_))
    ));
    assert!(matches!(
        bob.subscription(SubscriptionAction::Approve, &address("alice"))
            .await,
        Err(DriverError::Unsupported(_))
    ));

    alice.logout().await;
    bob.wait_for(&presence_from("alice", false, None), BOUND)
        .await
        .expect("alice's sign-off");
    bob.send_message(&message).await.unwrap();
    let error = bob
        .wait_for(
            &Matcher::Error {
                from: Some(address("alice")),
                about: Some(StanzaKind::Message),
                classes: vec![ErrorClass::Undelivered],
                conditions: vec!["412".into()],
            },
            BOUND,
        )
        .await
        .expect("412 for a principal without endpoint");
    assert!(error.text.starts_with("HTTP/1.1 412"));

    bob.send_raw(
        "PROPFIND http://sut.test/instmsg/aliases/bob HTTP/1.1\nHost: sut.test\nDepth: 0\n\n",
    )
    .await
    .unwrap();
    bob.wait_for(
        &Matcher::Pattern(Pattern::Http {
            status: 207,
            headers: vec![],
            body_contains: vec!["multistatus".into()],
        }),
        BOUND,
    )
    .await
    .expect("the raw request's answer");
    bob.round_trip(BOUND).await.unwrap();
    bob.subscription(SubscriptionAction::Unsubscribe, &address("alice"))
        .await
        .unwrap();
    bob.renew_login(None).await.unwrap();

    // The home server crashes: the next liveness request finds it gone.
    server.abort();
    let _ = server.await;
    let failure = bob.round_trip(BOUND).await.unwrap_err();
    let Liveness::Ended(ended) = failure else {
        panic!("{failure:?}");
    };
    assert!(!ended.expected);
    assert!(matches!(ended.cause, EndCause::Http { status: None, .. }));
    assert_eq!(*transcript.lost_streams().borrow(), 1);
    let wait = bob.wait_for(&Matcher::Any, BOUND).await.unwrap_err();
    assert!(wait.ended.is_some());
    assert!(bob.describe_end(&ended).contains("home server unreachable"));
    bob.logout().await;
}

/// The same against imfed-server's RVP front-end, in process.
#[tokio::test]
async fn against_the_reference_server() {
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
    let home = server.addresses.rvp;
    let transcript = Transcript::new();
    let mut bob = Session::log_in("bob", home, &credentials("bob"), transcript.clone(), BOUND)
        .await
        .unwrap();
    let mut alice = Session::log_in(
        "alice",
        home,
        &credentials("alice"),
        transcript.clone(),
        BOUND,
    )
    .await
    .unwrap();
    let dump = |transcript: &Transcript| {
        transcript
            .lines()
            .iter()
            .map(|line| format!("{} {:?} {}", line.actor, line.flow, line.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    alice.publish(&out_presence(None)).await.unwrap();
    bob.subscription(SubscriptionAction::Subscribe, &address("alice"))
        .await
        .unwrap();
    bob.wait_for(&presence_from("alice", true, None), BOUND)
        .await
        .unwrap_or_else(|_| panic!("snapshot\n{}", dump(&transcript)));
    alice
        .publish(&out_presence(Some(Show::Away)))
        .await
        .unwrap();
    bob.wait_for(&presence_from("alice", true, Some(Show::Away)), BOUND)
        .await
        .unwrap_or_else(|_| panic!("change\n{}", dump(&transcript)));
    let message = OutMessage {
        to: address("alice"),
        kind: MessageKind::Chat,
        id: None,
        subject: None,
        body: Some("hello".into()),
        thread: None,
    };
    bob.send_message(&message).await.unwrap();
    alice
        .wait_for(
            &Matcher::Message {
                from: Some(address("bob")),
                kind: None,
                body: Some("hello".into()),
                thread: None,
                subject: None,
            },
            BOUND,
        )
        .await
        .unwrap_or_else(|_| panic!("message\n{}", dump(&transcript)));
    bob.round_trip(BOUND).await.unwrap();
    alice.logout().await;
    bob.wait_for(&presence_from("alice", false, None), BOUND)
        .await
        .unwrap_or_else(|_| panic!("sign-off\n{}", dump(&transcript)));
    bob.send_message(&message).await.unwrap();
    bob.wait_for(
        &Matcher::Error {
            from: Some(address("alice")),
            about: Some(StanzaKind::Message),
            classes: vec![ErrorClass::Undelivered],
            conditions: vec!["412".into()],
        },
        BOUND,
    )
    .await
    .unwrap_or_else(|_| panic!("412\n{}", dump(&transcript)));
    bob.round_trip(BOUND).await.unwrap();
    bob.logout().await;
    assert_eq!(*transcript.lost_streams().borrow(), 0);
    server.stop().await;
}
