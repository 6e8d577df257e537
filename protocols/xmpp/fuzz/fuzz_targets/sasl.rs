//! RFC 6120 §6, RFC 4616, RFC 5802: the SASL server side on arbitrary client messages.
//! PLAIN parsing, base64 payloads and every SCRAM-SHA-1 server step must refuse bad input
//! with an error, never panic, and never accept a client proof it did not verify.
#![no_main]

use imfed_xmpp::sasl::{ScramCredentials, ScramServer, decode_payload, plain_parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = plain_parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_payload(text);
    }
    // The input is the client's first and final messages, split at the first 0xFF byte.
    let (first, last) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let mut server = ScramServer::new("fuzzservernonce");
    if server.client_first(first).is_err() {
        return;
    }
    let creds = ScramCredentials::derive("pencil", b"salt-for-fuzzing", 1).expect("derive");
    if server.server_first(&creds).is_err() {
        return;
    }
    // Without the password, no client proof can be right: the final step must refuse.
    assert!(
        server.client_final(last).is_err(),
        "a client-final message the fuzzer made up was accepted"
    );
});
