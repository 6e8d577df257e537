//! The transaction state machines in virtual time: instants are a base plus offsets, and
//! the tests call `handle_timeout` at whatever instant `poll_timeout` names.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::headers::Headers;
use crate::uri::Uri;

fn request(method: Method, branch: &str) -> Request {
    let mut request = Request::new(method.clone(), Uri::new(Some("bob"), "biloxi.example.com"));
    request.headers = [
        (
            "Via",
            format!("SIP/2.0/UDP Pc33.Atlanta.example.com:5060;branch={branch}"),
        ),
        ("Max-Forwards", "70".to_string()),
        ("To", "<sip:bob@biloxi.example.com>".to_string()),
        ("From", "<sip:alice@atlanta.example.com>;tag=88".to_string()),
        ("Call-ID", "c1@atlanta".to_string()),
        ("CSeq", format!("1 {method}")),
    ]
    .into_iter()
    .collect::<Headers>();
    request
}

fn response(request: &Request, status: u16) -> Response {
    Response::to(request, status, None, Some("t"))
}

/// Drives a client transaction with nothing answering: the offsets of every transmission
/// and of the timeout.
fn silent_run(
    mut transaction: ClientTransaction,
    start: Instant,
    late: impl Fn(usize) -> Duration,
) -> (Vec<Duration>, Option<Duration>) {
    let mut sent = Vec::new();
    let mut now = start;
    for step in 0.. {
        if let Some(_bytes) = transaction.poll_transmit(now) {
            sent.push(now - start);
        }
        let Some(next) = transaction.poll_timeout() else {
            return (sent, None);
        };
        assert!(next >= now, "a timeout in the past");
        now = next + late(step);
        if transaction.handle_timeout(now) == Some(ClientEvent::Timeout) {
            assert!(transaction.is_terminated());
            assert_eq!(
                transaction.poll_transmit(now + Duration::from_secs(1)),
                None
            );
            assert_eq!(transaction.poll_timeout(), None);
            return (sent, Some(now - start));
        }
    }
    unreachable!()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn unreliable_retransmits_doubling_up_to_t2_then_times_out_at_64_t1() {
    let start = Instant::now();
    let transaction = ClientTransaction::new(
        request(Method::Message, "z9hG4bK1"),
        false,
        Timers::default(),
        start,
    );
    assert_eq!(transaction.state(), ClientState::Trying);
    let (sent, timeout) = silent_run(transaction, start, |_| Duration::ZERO);
    let expected: Vec<Duration> = [
        0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(sent, expected);
    assert_eq!(timeout, Some(Duration::from_secs(32)));
}

#[test]
fn reliable_sends_once_and_times_out() {
    let start = Instant::now();
    let transaction = ClientTransaction::new(
        request(Method::Register, "z9hG4bK2"),
        true,
        Timers::default(),
        start,
    );
    let (sent, timeout) = silent_run(transaction, start, |_| Duration::ZERO);
    assert_eq!(sent, vec![Duration::ZERO]);
    assert_eq!(timeout, Some(Duration::from_secs(32)));
}

#[test]
fn proceeding_retransmits_every_t2() {
    let start = Instant::now();
    let request = request(Method::Subscribe, "z9hG4bK3");
    let mut transaction = ClientTransaction::new(request.clone(), false, Timers::default(), start);
    assert!(transaction.poll_transmit(start).is_some());
    assert_eq!(transaction.poll_transmit(start), None);
    assert_eq!(transaction.poll_timeout(), Some(start + ms(500)));
    // Polling transmit at the due instant is enough to get the retransmission.
    assert!(transaction.poll_transmit(start + ms(500)).is_some());
    let trying = response(&request, 100);
    assert_eq!(
        transaction.handle_response(trying.clone(), start + ms(700)),
        Some(ClientEvent::Provisional(trying.clone()))
    );
    assert_eq!(transaction.state(), ClientState::Proceeding);
    assert_eq!(
        transaction.handle_response(trying.clone(), start + ms(800)),
        Some(ClientEvent::Provisional(trying))
    );
    let mut sends = Vec::new();
    let mut now = start + ms(800);
    while sends.len() < 3 {
        now = transaction.poll_timeout().unwrap();
        assert_eq!(transaction.handle_timeout(now), None);
        if transaction.poll_transmit(now).is_some() {
            sends.push(now - start);
        }
    }
    assert_eq!(sends, vec![ms(1500), ms(5500), ms(9500)]);
    let ok = response(&request, 202);
    assert_eq!(
        transaction.handle_response(ok.clone(), now),
        Some(ClientEvent::Final(ok.clone()))
    );
    assert_eq!(transaction.state(), ClientState::Completed);
    assert_eq!(transaction.poll_transmit(now + ms(4000)), None);
    // A retransmitted final response is absorbed; Timer K ends the transaction after T4.
    assert_eq!(transaction.handle_response(ok, now + ms(10)), None);
    assert_eq!(
        transaction.poll_timeout(),
        Some(now + Duration::from_secs(5))
    );
    assert_eq!(transaction.handle_timeout(now + ms(4999)), None);
    assert!(!transaction.is_terminated());
    assert_eq!(
        transaction.handle_timeout(now + Duration::from_secs(5)),
        None
    );
    assert!(transaction.is_terminated());
}

#[test]
fn reliable_final_terminates_at_once_and_strangers_are_ignored() {
    let start = Instant::now();
    let request = request(Method::Options, "z9hG4bK4");
    let mut transaction = ClientTransaction::new(request.clone(), true, Timers::default(), start);
    assert_eq!(transaction.request(), &request);
    assert_eq!(transaction.key().method, Method::Options);
    let mut other_branch = response(&request, 200);
    other_branch.headers.set(
        "Via",
        "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKx",
    );
    assert_eq!(transaction.handle_response(other_branch, start), None);
    let mut other_method = response(&request, 200);
    other_method.headers.set("CSeq", "1 MESSAGE");
    assert_eq!(transaction.handle_response(other_method, start), None);
    let mut no_via = response(&request, 200);
    no_via.headers.remove("Via");
    assert_eq!(transaction.handle_response(no_via, start), None);
    let ok = response(&request, 200);
    assert_eq!(
        transaction.handle_response(ok.clone(), start),
        Some(ClientEvent::Final(ok.clone()))
    );
    assert!(transaction.is_terminated());
    assert_eq!(transaction.handle_response(ok, start), None);
}

#[test]
fn a_request_without_via_gets_a_key_nothing_matches() {
    let start = Instant::now();
    let mut bare = request(Method::Message, "z9hG4bK5");
    bare.headers.remove("Via");
    assert!(ClientTransaction::try_new(bare.clone(), false, Timers::default(), start).is_err());
    let mut transaction = ClientTransaction::new(bare.clone(), false, Timers::default(), start);
    let answer = response(&request(Method::Message, "z9hG4bK5"), 200);
    assert_eq!(transaction.handle_response(answer, start), None);
}

#[test]
fn server_absorbs_then_resends_the_last_response() {
    let start = Instant::now();
    let request = request(Method::Publish, "z9hG4bK6");
    let mut transaction =
        ServerTransaction::new(&request, false, Timers::default(), start).unwrap();
    assert_eq!(transaction.method(), &Method::Publish);
    assert_eq!(transaction.state(), ServerState::Trying);
    assert_eq!(transaction.handle_retransmission(start), None);
    assert_eq!(transaction.poll_timeout(), None);
    let trying = response(&request, 100);
    assert_eq!(transaction.respond(&trying, start), trying.to_bytes());
    assert_eq!(transaction.state(), ServerState::Proceeding);
    assert_eq!(
        transaction.handle_retransmission(start),
        Some(trying.to_bytes())
    );
    let ok = response(&request, 200);
    let now = start + ms(100);
    assert_eq!(transaction.respond(&ok, now), ok.to_bytes());
    assert_eq!(transaction.state(), ServerState::Completed);
    assert_eq!(
        transaction.handle_retransmission(now + ms(1)),
        Some(ok.to_bytes())
    );
    assert!(
        transaction
            .respond(&response(&request, 500), now)
            .is_empty()
    );
    assert_eq!(
        transaction.handle_retransmission(now + ms(2)),
        Some(ok.to_bytes())
    );
    assert_eq!(
        transaction.poll_timeout(),
        Some(now + Duration::from_secs(32))
    );
    transaction.handle_timeout(now + Duration::from_secs(31));
    assert!(!transaction.is_terminated());
    transaction.handle_timeout(now + Duration::from_secs(32));
    assert!(transaction.is_terminated());
    assert_eq!(
        transaction.handle_retransmission(now + Duration::from_secs(33)),
        None
    );
}

#[test]
fn reliable_server_ends_with_its_final_response() {
    let start = Instant::now();
    let request = request(Method::Notify, "z9hG4bK7");
    let mut transaction = ServerTransaction::new(&request, true, Timers::default(), start).unwrap();
    assert!(
        !transaction
            .respond(&response(&request, 200), start)
            .is_empty()
    );
    assert!(transaction.is_terminated());
    assert_eq!(transaction.poll_timeout(), None);
}

#[test]
fn keys() {
    let invite = request(Method::Invite, "z9hG4bKabc");
    let mut ack = invite.clone();
    ack.method = Method::Ack;
    ack.headers.set("CSeq", "1 ACK");
    let mut cancel = invite.clone();
    cancel.method = Method::Cancel;
    cancel.headers.set("CSeq", "1 CANCEL");
    let key = TransactionKey::of_request(&invite).unwrap();
    assert_eq!(key.sent_by, "pc33.atlanta.example.com:5060");
    assert_eq!(key.branch, "z9hG4bKabc");
    assert_eq!(TransactionKey::of_request(&ack).unwrap(), key);
    assert_ne!(TransactionKey::of_request(&cancel).unwrap(), key);
    assert_eq!(
        TransactionKey::of_response(&response(&invite, 486)).unwrap(),
        key
    );

    // RFC 2543: no magic cookie; the key comes from the rest of the request.
    let old = request(Method::Options, "1");
    let old_key = TransactionKey::of_request(&old).unwrap();
    assert!(
        old_key
            .branch
            .starts_with("rfc2543;1;c1@atlanta;88;1;sip:bob@")
    );
    let mut again = old.clone();
    again
        .headers
        .set("To", "<sip:bob@biloxi.example.com>;tag=other");
    assert_eq!(TransactionKey::of_request(&again).unwrap(), old_key);
    let mut no_branch = old.clone();
    no_branch
        .headers
        .set("Via", "SIP/2.0/UDP pc33.atlanta.example.com:5060");
    assert!(TransactionKey::of_request(&no_branch).is_ok());
    assert!(TransactionKey::of_response(&response(&no_branch, 200)).is_err());
    assert_eq!(new_branch("x7"), "z9hG4bKx7");
    assert!(
        ServerTransaction::new(
            &Request::new(Method::Options, Uri::new(None, "h")),
            false,
            Timers::default(),
            Instant::now()
        )
        .is_err()
    );
}

proptest! {
    /// For any T1 ≤ T2, an unanswered request is sent at 0, T1, 3·T1, 7·T1... with the
    /// interval capped at T2, never at or after Timer F, which fires once at 64·T1.
    #[test]
    fn retransmission_schedule(t1 in 1u64..2000, t2_factor in 1u64..16, reliable in any::<bool>()) {
        let timers = Timers { t1: ms(t1), t2: ms(t1 * t2_factor), t4: ms(5000) };
        let start = Instant::now();
        let transaction = ClientTransaction::new(request(Method::Message, "z9hG4bKp"), reliable, timers, start);
        let (sent, timeout) = silent_run(transaction, start, |_| Duration::ZERO);
        let mut expected = vec![Duration::ZERO];
        let mut interval = timers.t1;
        let mut at = timers.t1;
        while !reliable && at < timers.timer_f() {
            expected.push(at);
            interval = (interval * 2).min(timers.t2);
            at += interval;
        }
        prop_assert_eq!(sent, expected);
        prop_assert_eq!(timeout, Some(timers.timer_f()));
    }

    /// A caller that comes back late never gets more transmissions than the schedule, never
    /// two closer than T1, and the timeout once, not before Timer F.
    #[test]
    fn late_callers_stay_within_the_schedule(t1 in 10u64..1000, lateness in prop::collection::vec(0u64..3000, 1..64)) {
        let timers = Timers { t1: ms(t1), t2: ms(t1 * 8), t4: ms(5000) };
        let start = Instant::now();
        let transaction = ClientTransaction::new(request(Method::Message, "z9hG4bKq"), false, timers, start);
        let (sent, timeout) = silent_run(transaction, start, |step| ms(lateness[step % lateness.len()]));
        prop_assert!(sent.len() <= 11);
        for pair in sent.windows(2) {
            prop_assert!(pair[1] - pair[0] >= timers.t1);
        }
        prop_assert!(sent.iter().all(|at| *at < timers.timer_f()));
        prop_assert!(timeout.is_some_and(|at| at >= timers.timer_f()));
    }
}
