//! The `imfed` binary end to end: invalid inputs are refused with their location, the core
//! pack passes against the reference target, every misbehaviour of the reference server is
//! caught by the pack, and the reports are readable by others.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn imfed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imfed"))
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .expect("run imfed")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imfed-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HEADER: &str = "id: bad-example\ntitle: t\nspec: [{doc: RFC 6121, section: '1', level: MUST}]\nactors: {alice: ref, bob: sut}\n";

#[test]
fn invalid_scenario_files_name_file_line_and_column_and_nothing_runs() {
    // (file contents, expected "line:column: message" fragment)
    let cases: &[(&str, String, &str)] = &[
        ("unknown-key", format!("{HEADER}colour: red\nsteps: [{{login: alice}}]\n"), ":5:1: unknown field `colour`"),
        ("wrong-type", format!("{HEADER}both_directions: maybe\nsteps: [{{login: alice}}]\n"), ":5:18:"),
        ("undefined-actor", format!("{HEADER}steps:\n  - login: alice\n  - login: carol\n"), ":7:5: step 2: actor: \"carol\" is not an actor"),
        ("bad-duration", format!("{HEADER}steps:\n  - expect: {{actor: bob, within: 5 seconds, message: {{}}}}\n"), ":6:34: \"5 seconds\" has unknown unit"),
        ("unknown-step", format!("{HEADER}steps:\n  - teleport: alice\n"), ":6:5: unknown variant `teleport`"),
        ("two-kinds", format!("{HEADER}steps:\n  - expect: {{actor: bob, message: {{}}, presence: {{}}}}\n"), ":6:5: step 1: expect: give exactly one of"),
        ("bad-template", format!("{HEADER}steps:\n  - send: {{from: alice, to: bob, body: 'hi {{carol.jid}}'}}\n"), "unknown template {carol.jid}"),
        ("missing-title", "id: x\nspec: []\nactors: {a: ref}\nsteps: [{login: a}]\n".to_string(), "missing field `title`"),
        ("bad-role", "id: x\ntitle: t\nspec: [{doc: RFC 6121, section: '1', level: MUST}]\nactors: {alice: server}\nsteps: [{login: alice}]\n".to_string(), ":4:"),
        ("bad-level", "id: x\ntitle: t\nspec: [{doc: RFC 6121, section: '1', level: MUSTN'T}]\nactors: {a: ref}\nsteps: [{login: a}]\n".to_string(), ":3:"),
        ("broken-raw", format!("{HEADER}steps:\n  - login: alice\n  - raw: {{actor: alice, xml: '<message><body>x</message>'}}\n"), ":7:5: step 2: xml:"),
        ("bad-yaml", format!("{HEADER}steps:\n  - login: alice\n    - login: bob\n"), ":7:"),
        ("blind-window", format!("{HEADER}steps:\n  - login: alice\n  - login: bob\n  - expect_none: {{actor: bob, message: {{from: alice}}, for: 1s}}\n"), ":8:5: step 3: expect_none for 1s watches stanzas crossing from the ref domain to the sut domain, but no earlier check saw anything cross that way"),
    ];
    for (name, contents, expected) in cases {
        let dir = scratch(name);
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, contents).unwrap();
        let file_arg = file.to_str().unwrap();
        for command in ["validate", "run"] {
            let output = imfed(&[command, file_arg]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name} ({command}): {stderr}"
            );
            assert!(
                stderr.contains(&format!("{}{expected}", file.display()))
                    || (stderr.contains(&file.display().to_string()) && stderr.contains(expected)),
                "{name} ({command}): expected {expected:?} in:\n{stderr}"
            );
            assert!(stderr.contains("nothing was run"), "{name}: {stderr}");
            assert!(
                !stderr.contains("PASS") && !stderr.contains("FAIL"),
                "{name}: it ran"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_selection_that_matches_nothing_is_an_error() {
    for command in ["run", "list", "validate"] {
        let output = imfed(&[command, "--filter", "id:no-such-scenario-*"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("the selection matches no scenario")
                && stderr.contains("--filter id:no-such-scenario-*"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn duplicate_ids_across_files_are_refused() {
    let dir = scratch("duplicates");
    let one = format!("{HEADER}steps: [{{login: alice}}]\n");
    std::fs::write(dir.join("a.yaml"), &one).unwrap();
    std::fs::write(dir.join("b.yaml"), &one).unwrap();
    let output = imfed(&["validate", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("duplicate scenario id \"bad-example\"")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_committed_json_schema_is_current() {
    let committed = std::fs::read_to_string(workspace().join("scenarios/schema.json"))
        .expect("scenarios/schema.json is committed");
    assert!(
        committed == imfed::scenario::json_schema(),
        "scenarios/schema.json is stale: regenerate it with `imfed schema > scenarios/schema.json`"
    );
}

#[test]
fn help_text() {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"imfed \d+\.\d+\.\d+", "imfed [VERSION]");
    settings.bind(|| {
        for (name, args) in [
            ("help", &["--help"][..]),
            ("run-help", &["run", "--help"][..]),
        ] {
            let output = imfed(args);
            assert!(output.status.success());
            insta::assert_snapshot!(name, String::from_utf8_lossy(&output.stdout));
        }
    });
}

/// Runs `imfed run` with `args` plus report paths in a scratch folder; returns the exit
/// code, stdout, the parsed JSON results and the JUnit text.
fn run_pack(name: &str, args: &[&str]) -> (Option<i32>, String, imfed_reports::RunReport, String) {
    let dir = scratch(name);
    let junit = dir.join("junit.xml");
    let json = dir.join("results.json");
    let mut all = vec!["run"];
    if !args.contains(&"--jobs") {
        all.extend(["--jobs", "8"]);
    }
    all.extend([
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    all.extend_from_slice(args);
    let output = imfed(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report =
        imfed_reports::json::parse(&std::fs::read_to_string(&json).expect("results.json written"))
            .expect("results.json parses");
    let junit_text = std::fs::read_to_string(&junit).expect("junit.xml written");
    std::fs::remove_dir_all(&dir).ok();
    (output.status.code(), stdout, report, junit_text)
}

/// Installs a vendor's Debian package with its own script (idempotent).
fn install(vendor: &str) {
    let script = workspace().join(format!("vendors/{vendor}/install.sh"));
    let installed = Command::new(&script).status();
    assert!(
        installed.is_ok_and(|s| s.success()),
        "{} failed",
        script.display()
    );
}

/// Runs `rfc6121-message-chat-bare` (both directions) against the target file `target` and
/// checks that the run fails and that every result fails with a message containing
/// `reason`; returns the JUnit text.
fn every_run_fails_with(name: &str, target: &Path, reason: &str) -> String {
    let (code, stdout, report, junit) = run_pack(
        name,
        &[
            "--target",
            target.to_str().unwrap(),
            "--filter",
            "id:rfc6121-message-chat-bare",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(report.results.len(), 2, "both directions ran");
    for result in &report.results {
        let failure = result.failure.as_ref().expect("a failure with a reason");
        assert!(failure.message.contains(reason), "{}", failure.message);
    }
    junit
}

#[test]
fn core_pack_passes_against_the_reference_target() {
    let (code, stdout, report, junit) = run_pack("reference", &[]);
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome.fails_run())
        .map(|r| format!("{}: {:?}", r.name(), r.failure))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(code, Some(0), "{stdout}");
    let scenarios = report
        .results
        .iter()
        .map(|r| &r.id)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        scenarios.len() >= 40,
        "the core pack has {} scenarios",
        scenarios.len()
    );
    assert!(
        report.results.iter().any(|r| r.direction == "sut→ref"),
        "no swapped runs"
    );
    // The last line is the summary CI readers parse. Runs whose checks judge only the
    // reference server (a domain nobody hosts, as written) are not passes of the target.
    let last = stdout.lines().last().unwrap_or_default();
    let reference_only: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.reference_only())
        .map(|r| r.name())
        .collect();
    assert_eq!(
        reference_only,
        [
            "rfc6120-routing-unknown-domain [ref→sut]",
            "rfc6120-routing-unreachable-domain [ref→sut]"
        ]
    );
    assert_eq!(
        last,
        format!(
            "{} passed, 0 failed, 0 skipped",
            report.results.len() - reference_only.len()
        )
    );
    // An independent JUnit reader sees one testcase per scenario and direction, none failed
    // (the reference-only ones skipped).
    let suites =
        junit_parser::from_reader(std::io::Cursor::new(junit.as_bytes())).expect("JUnit parses");
    let cases: Vec<&junit_parser::TestCase> =
        suites.suites.iter().flat_map(|s| s.cases.iter()).collect();
    assert_eq!(cases.len(), report.results.len());
    for case in cases {
        let reference_only = reference_only.contains(&case.original_name);
        assert!(
            if reference_only {
                case.status.is_skipped()
            } else {
                case.status.is_success()
            },
            "{}: {:?}",
            case.original_name,
            case.status
        );
    }
}

/// Each misbehaviour switch of the server playing the implementation under test, and
/// scenarios (id, direction) that must catch it. The runs also show the report names the
/// failing step.
const MISBEHAVIOURS: &[(&str, &[(&str, &str)])] = &[
    (
        "drop_presence_out",
        &[
            ("rfc6121-presence-broadcast-show-status", "ref→sut"),
            ("rfc6121-presence-unavailable-on-logout", "ref→sut"),
            ("rfc6121-presence-directed", "sut→ref"),
        ],
    ),
    (
        "ignore_subscribed_in",
        &[
            ("rfc6121-subscribe-approve", "sut→ref"),
            ("rfc6121-subscription-mutual-both", "ref→sut"),
        ],
    ),
    (
        "duplicate_messages_out",
        &[("rfc2779-f13-no-duplicate-delivery", "sut→ref")],
    ),
    (
        "reorder_messages_out",
        &[("rfc6120-routing-in-order", "sut→ref")],
    ),
    (
        "wrong_error_condition",
        &[
            ("rfc6121-message-unknown-user", "ref→sut"),
            ("rfc6121-message-groupchat-bare-condition", "ref→sut"),
            ("rfc6120-routing-unknown-domain", "sut→ref"),
        ],
    ),
    (
        "no_unavailable_on_disconnect",
        &[
            ("rfc6121-presence-unavailable-on-disconnect", "ref→sut"),
            ("rfc2779-f4-crash-of-one-endpoint", "ref→sut"),
        ],
    ),
    (
        "mangle_unicode_in",
        &[
            ("rfc6120-unicode-mixed-scripts", "ref→sut"),
            ("rfc2779-f16-non-ascii-both-ways", "sut→ref"),
        ],
    ),
];

#[test]
fn every_misbehaviour_is_caught_and_the_report_names_the_step() {
    // Only the catching scenarios run (their failing waits dominate), every switch at once.
    let runs: Vec<_> = MISBEHAVIOURS
        .iter()
        .map(|(switch, catchers)| {
            let filter: Vec<String> = catchers.iter().map(|(id, _)| format!("id:{id}")).collect();
            let filter = filter.join("|");
            std::thread::spawn(move || {
                (
                    switch,
                    catchers,
                    run_pack(switch, &["--misbehave", switch, "--filter", &filter]),
                )
            })
        })
        .collect();
    for run in runs {
        let (switch, catchers, (code, stdout, report, junit)) = run.join().expect("run thread");
        assert_eq!(code, Some(1), "{switch}: the run must fail\n{stdout}");
        for (id, direction) in *catchers {
            let result = report
                .results
                .iter()
                .find(|r| r.id == *id && r.direction == *direction)
                .unwrap_or_else(|| panic!("{switch}: {id} [{direction}] did not run"));
            assert!(
                result.outcome.fails_run(),
                "{switch}: {id} [{direction}] should fail but was {:?}",
                result.outcome
            );
            let failure = result.failure.as_ref().expect("a failure is recorded");
            assert!(
                failure.step > 0 && !failure.step_label.is_empty(),
                "{switch}: {failure:?}"
            );
            let step = format!("step {} ({})", failure.step, failure.step_label);
            assert!(
                junit.contains(&step),
                "{switch}: the JUnit does not name {step:?}"
            );
            assert!(
                stdout.contains(&step),
                "{switch}: the summary does not name {step:?}"
            );
        }
    }
}

/// The `imfed-server` binary beside `imfed` (another package's binary: built if missing).
fn imfed_server_binary() -> PathBuf {
    let server = Path::new(env!("CARGO_BIN_EXE_imfed")).with_file_name("imfed-server");
    if !server.is_file() {
        let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "imfed-server"])
            .current_dir(workspace())
            .status();
        assert!(
            built.is_ok_and(|s| s.success()),
            "cannot build imfed-server"
        );
    }
    server
}

/// A child process, killed and reaped when dropped (a failed assertion leaves none behind).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with `args` and returns it with the first line it prints on stdout
/// (its ready line), within 20 s.
fn start_ready(program: &Path, args: &[&str]) -> (Reaped, String) {
    use std::io::BufRead;
    let mut child = Reaped(
        Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display())),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{} printed no ready line in 20s", program.display()));
    (child, line)
}

/// Reads one Content-Length framed HTTP message: its start line, headers and body.
async fn read_http(stream: &mut tokio::net::TcpStream) -> (String, Vec<(String, String)>, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let work = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let start = lines.next().unwrap_or_default().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if buf.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]);
                    return (start, headers, body.into_owned());
                }
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await.expect("read");
            assert!(read > 0, "connection closed mid-message");
            buf.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), work)
        .await
        .expect("an HTTP message within 10s")
}

/// Sends an RVP request (`head`: request line and headers, one a line) to the home server
/// at `home` with Digest credentials, answering the 401 first when `digest` has no
/// challenge yet; returns the answer's status line and body.
async fn rvp_send(
    home: std::net::SocketAddr,
    digest: &mut imfed_rvp::digest::DigestClient,
    head: &str,
    body: &str,
) -> (String, String) {
    use tokio::io::AsyncWriteExt;
    let mut parts = head.split(' ');
    let (method, uri) = (parts.next().unwrap(), parts.next().unwrap());
    loop {
        let authorization = digest
            .authorization(method, uri, "0a4f113b")
            .map_or(String::new(), |value| format!("\nAuthorization: {value}"));
        let head = format!("{head}{authorization}\nContent-Length: {}\n\n", body.len());
        let text = head.replace('\n', "\r\n") + body;
        let mut stream = tokio::net::TcpStream::connect(home).await.unwrap();
        stream.write_all(text.as_bytes()).await.unwrap();
        let (start, headers, body) = read_http(&mut stream).await;
        let challenge = headers.iter().find(|(n, _)| n == "www-authenticate");
        match challenge {
            Some((_, value)) if start.contains(" 401 ") && !digest.has_challenge() => {
                let challenge = imfed_rvp::digest::Challenge::parse(value).unwrap();
                assert!(digest.challenged(challenge), "{value}");
            }
            _ => return (start, body),
        }
    }
}

/// imfed-server's RVP DNS fallback (PROFILE.md §6: SRV `_rvp._tcp`) finds a peer's home
/// server with no static route through `imfed dns --rvp-host`, between two processes
/// with a per-run PKI: a Digest-authenticated message crosses to the watcher's callback
/// (200), and one for a domain DNS does not know is answered 502.
#[tokio::test]
async fn reference_server_finds_rvp_peers_by_dns_srv() {
    use tokio::io::AsyncWriteExt;
    let dir = scratch("rvp-dns");
    let pki = imfed_server::tls::RunPki::new(&[&["a.test"], &["b.test"]]).unwrap();
    // b's RVP s2s port is fixed so the DNS responder can be told it before b starts.
    let b_rvp_s2s = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .to_string();
    let (_dns, ready) = start_ready(
        Path::new(env!("CARGO_BIN_EXE_imfed")),
        &["dns", "--rvp-host", &format!("b.test={b_rvp_s2s}")],
    );
    let dns = ready.strip_prefix("READY dns=").expect(&ready).to_string();
    let server = imfed_server_binary();
    let start = |index: usize, domain: &str, rvp_s2s: &str, account: &str| {
        let mut paths = imfed_server::Config::default();
        pki.configure(index, &dir, &mut paths).unwrap();
        let [cert, key, trust] = [paths.tls_cert, paths.tls_key, paths.tls_trust]
            .map(|path| path.unwrap().display().to_string());
        let (child, ready) = start_ready(
            &server,
            &[
                "--domain",
                domain,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-trust",
                &trust,
                "--rvp",
                "127.0.0.1:0",
                "--rvp-s2s",
                rvp_s2s,
                "--account",
                account,
                "--dns-fallback",
                "--dns-server",
                &dns,
            ],
        );
        let ready: serde_json::Value = serde_json::from_str(&ready).expect(&ready);
        let rvp: std::net::SocketAddr = ready["rvp"].as_str().unwrap().parse().unwrap();
        (child, rvp)
    };
    let (_a, a_rvp) = start(0, "a.test", "127.0.0.1:0", "alice@a.test:pw-a");
    let (_b, b_rvp) = start(1, "b.test", &b_rvp_s2s, "bob@b.test:pw-b");

    // Bob's callback answers every NOTIFY 200 and hands its body to the test.
    let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_addr = callback.local_addr().unwrap();
    let (tx, mut notified) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = callback.accept().await {
            let (_, _, body) = read_http(&mut stream).await;
            let answer = "HTTP/1.1 200 Successful\r\nRVP-Notifications-Version: 0.2\r\nContent-Length: 0\r\n\r\n";
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = tx.send(body).await;
        }
    });
    let mut bob = imfed_rvp::digest::DigestClient::new("bob", "pw-b");
    let login = format!(
        "SUBSCRIBE /instmsg/aliases/bob HTTP/1.1\nHost: b.test\nSubscription-Lifetime: 14400\nNotification-Type: pragma/notify\nCall-Back: http://{callback_addr}\nRVP-Notifications-Version: 0.2\nRVP-From-Principal: http://b.test/instmsg/aliases/bob"
    );
    let (status, body) = rvp_send(b_rvp, &mut bob, &login, "").await;
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}\n{body}");

    let mut alice = imfed_rvp::digest::DigestClient::new("alice", "pw-a");
    let message = |domain: &str, text: &str| {
        let to = format!("http://{domain}/instmsg/aliases/bob");
        (
            format!(
                "NOTIFY {to} HTTP/1.1\nHost: {domain}\nRVP-Notifications-Version: 0.2\nRVP-Ack-Type: DeepOr\nRVP-Hop-Count: 1\nRVP-From-Principal: http://a.test/instmsg/aliases/alice\nContent-Type: text/xml"
            ),
            format!(
                "<r:notification xmlns:d=\"DAV:\" xmlns:r=\"http://schemas.microsoft.com/rvp/\"><r:message><r:notification-from><r:contact><d:href>http://a.test/instmsg/aliases/alice</d:href></r:contact></r:notification-from><r:notification-to><r:contact><d:href>{to}</d:href></r:contact></r:notification-to><r:msgbody><r:mime-data><![CDATA[MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}]]></r:mime-data></r:msgbody></r:message></r:notification>"
            ),
        )
    };
    let (head, body) = message("b.test", "found you by _rvp._tcp");
    let (status, answer) = rvp_send(a_rvp, &mut alice, &head, &body).await;
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}\n{answer}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = tokio::time::timeout_at(deadline, notified.recv())
            .await
            .ok()
            .flatten()
            .expect("alice's message at bob's callback within 10s");
        if body.contains("found you by _rvp._tcp") {
            break;
        }
    }

    let (head, body) = message("nowhere.test", "anyone?");
    let (status, answer) = rvp_send(a_rvp, &mut alice, &head, &body).await;
    assert!(
        status.starts_with("HTTP/1.1 502 ") && status.contains("nowhere.test"),
        "{status}\n{answer}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Two in-process reference servers, each with the account `u` / `pw`: `b.test`, and
/// `a.test`, whose DNS fallback asks an `imfed dns` responder serving `zone(b)`.
struct DnsPair {
    a: imfed_server::Running,
    b: imfed_server::Running,
    stop_dns: tokio_util::sync::CancellationToken,
    dns: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn dns_pair(
    tune: impl Fn(&mut imfed_server::Config),
    zone: impl FnOnce(&imfed_server::Running) -> imfed::dns::Zone,
) -> DnsPair {
    let start = |domain: &str, dns: Option<std::net::SocketAddr>| {
        let mut config = imfed_server::Config {
            domains: vec![domain.to_string()],
            dns_fallback: dns.is_some(),
            dns_server: dns,
            accounts: vec![imfed_server::config::AccountSpec {
                user: "u".into(),
                domain: domain.into(),
                password: "pw".into(),
            }],
            ..imfed_server::Config::default()
        };
        tune(&mut config);
        async move { imfed_server::Server::new(config).start().await.unwrap() }
    };
    let b = start("b.test", None).await;
    let (udp, tcp) = imfed::dns::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dns_addr = udp.local_addr().unwrap();
    let stop_dns = tokio_util::sync::CancellationToken::new();
    let dns = tokio::spawn(imfed::dns::serve(udp, tcp, zone(&b), stop_dns.clone()));
    let a = start("a.test", Some(dns_addr)).await;
    DnsPair {
        a,
        b,
        stop_dns,
        dns,
    }
}

impl DnsPair {
    async fn stop(self) {
        self.stop_dns.cancel();
        let _ = self.dns.await;
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// imfed-server's DNS fallback (RFC 6120 §3.2: SRV `_xmpp-server._tcp`) finds a peer with no
/// static route through the `imfed dns` responder, and a message crosses.
#[tokio::test]
async fn reference_server_finds_peers_by_dns_srv() {
    use imfed::driver::event::Event;
    use imfed::driver::lifecycle::Transcript;
    use imfed::driver::xmpp::{Credentials, Session};
    use imfed_server::config::TlsMode;
    use imfed_xmpp::client::TlsPolicy;
    let pair = dns_pair(
        |config| {
            config.c2s_tls = TlsMode::Off;
            config.s2s_tls = TlsMode::Off;
            config.allow_plain_without_tls = true;
        },
        |b| imfed::dns::Zone {
            records: [("b.test".to_string(), b.addresses.s2s)].into(),
            ..imfed::dns::Zone::default()
        },
    )
    .await;
    let (a, b) = (&pair.a, &pair.b);
    // b.test must route back to a.test for dialback: it gets a static route.
    b.state
        .routes
        .write()
        .unwrap()
        .insert("a.test".into(), a.addresses.s2s.to_string());
    let login = |addr, jid: &str| {
        let credentials = Credentials {
            jid: jid.parse().unwrap(),
            password: "pw".into(),
            tls: TlsPolicy::Never,
            roots: None,
        };
        async move {
            Session::login(
                "t",
                addr,
                &credentials,
                Transcript::new(),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap()
        }
    };
    let mut sender = login(a.addresses.c2s, "u@a.test/r").await;
    let mut receiver = login(b.addresses.c2s, "u@b.test/r").await;
    receiver
        .send(&imfed_xmpp::Element::new(
            "presence",
            imfed_xmpp::ns::CLIENT,
        ))
        .await
        .unwrap();
    sender
        .send(&imfed_xmpp::stanza::message(
            None,
            &"u@b.test".parse().unwrap(),
            imfed_xmpp::stanza::MessageType::Chat,
            Some("found you by SRV"),
        ))
        .await
        .unwrap();
    let got = receiver
        .wait_where(std::time::Duration::from_secs(10), |r| {
            matches!(r.event, Event::Message { .. })
        })
        .await
        .expect("the message crossed a link found by DNS");
    assert!(
        matches!(&got.event, Event::Message { body: Some(body), .. } if body == "found you by SRV"),
        "{got:?}"
    );
    pair.stop().await;
}

/// imfed-server's SIP DNS fallback (RFC 3263 §4.2 as PROFILE.md §5 uses it: SRV
/// `_sip._udp`) finds another domain's server with no static route through the `imfed dns`
/// responder: a MESSAGE crosses, and a domain with no record is `604` to its sender.
#[tokio::test]
async fn reference_server_finds_sip_peers_by_dns_srv() {
    use imfed::driver::event::{Event, Matcher, OutMessage};
    use imfed::driver::lifecycle::Transcript;
    use imfed::driver::sip::{Credentials, Session, Settings};
    use imfed_model::{Address, MessageKind};
    let bound = std::time::Duration::from_secs(10);
    // a.test knows b.test only through DNS; b.test answers along the Vias, needing no route.
    let pair = dns_pair(
        |_| {},
        |b| imfed::dns::Zone {
            sip: [("b.test".to_string(), b.addresses.sip)].into(),
            ..imfed::dns::Zone::default()
        },
    )
    .await;
    let (a, b) = (&pair.a, &pair.b);
    let login = |home, domain: &str| {
        let credentials = Credentials {
            user: "u".into(),
            domain: domain.into(),
            password: "pw".into(),
            settings: Settings::default(),
        };
        async move {
            Session::log_in("t", home, &credentials, Transcript::new(), bound)
                .await
                .unwrap()
        }
    };
    let mut sender = login(a.addresses.sip, "a.test").await;
    let mut receiver = login(b.addresses.sip, "b.test").await;
    let to = |domain: &str| Address {
        user: Some("u".into()),
        domain: domain.into(),
        endpoint: None,
    };
    let message = |domain: &str| OutMessage {
        to: to(domain),
        kind: MessageKind::Chat,
        id: None,
        subject: None,
        body: Some("found you by SRV".into()),
        thread: None,
    };
    sender.send_message(&message("b.test")).await.unwrap();
    let got = receiver
        .wait_for(&Matcher::Any, bound)
        .await
        .expect("the MESSAGE crossed to a server found by DNS");
    assert!(
        matches!(&got.event, Event::Message { body: Some(body), .. } if body == "found you by SRV"),
        "{got:?}"
    );
    sender.send_message(&message("nowhere.test")).await.unwrap();
    let refused = sender
        .wait_for(&Matcher::Any, bound)
        .await
        .expect("an answer for a domain DNS does not know");
    assert!(
        matches!(&refused.event, Event::Error { condition: Some(c), .. } if c == "604"),
        "{refused:?}"
    );
    pair.stop().await;
}

/// A real server deliberately misconfigured (Prosody without mod_presence) fails the
/// scenarios that check presence, in both directions, while messaging still passes: the
/// pack tells a broken behaviour apart from a broken server.
#[test]
fn a_vendor_misconfigured_to_break_presence_fails_the_presence_scenarios() {
    install("prosody");
    let (code, stdout, report, _) = run_pack(
        "prosody-broken",
        &[
            "--target",
            "harness/tests/fixtures/prosody-without-presence.yaml",
            "--filter",
            "id:rfc6121-presence-broadcast-show-status|id:rfc6121-presence-unavailable-on-logout|id:rfc6121-message-unknown-user",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    for result in &report.results {
        let should_fail = result.id.starts_with("rfc6121-presence-");
        assert_eq!(
            result.outcome.fails_run(),
            should_fail,
            "{}: {:?} {:?}",
            result.name(),
            result.outcome,
            result.failure
        );
    }
    assert_eq!(report.results.len(), 6, "three scenarios, both directions");
}

/// A real server weakened on purpose (Prosody with a module that takes every dialback key
/// as valid, `vendors/prosody/mod_imfed_mutant_trust_dialback.lua`) fails the pack's dialback
/// checks, while the control (a key its authority confirms) still passes: the pack catches a
/// vendor that accepts forged traffic.
#[test]
fn a_vendor_that_skips_dialback_verification_fails_the_security_pack() {
    install("prosody");
    let (code, stdout, report, _) = run_pack(
        "prosody-trusting-dialback",
        &[
            "--target",
            "harness/tests/fixtures/prosody-trusting-dialback.yaml",
            "--filter",
            "id:xmpp-s2s-dialback-*|id:xmpp-s2s-unverified-second-domain",
            "scenarios/xmpp",
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let outcome = |id: &str| {
        report
            .results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} did not run"))
            .outcome
            .clone()
    };
    assert_eq!(
        outcome("xmpp-s2s-dialback-valid-key-delivers"),
        imfed_reports::Outcome::Pass
    );
    for id in [
        "xmpp-s2s-dialback-wrong-key-refused",
        "xmpp-s2s-dialback-unreachable-authority",
        "xmpp-s2s-unverified-second-domain",
    ] {
        assert!(outcome(id).fails_run(), "{id}: {:?}", outcome(id));
    }
}

/// `imfed matrix --update-baseline` with a target that cannot start writes the reports but
/// leaves the baseline as it was: a matrix with an unavailable column is no reference for
/// later runs.
#[test]
fn a_matrix_with_an_unavailable_target_does_not_update_the_baseline() {
    let dir = scratch("matrix-unavailable");
    let target = dir.join("gone.yaml");
    std::fs::write(
        &target,
        "name: gone\nprotocol: xmpp\ndomain: gone.test\nc2s: 127.0.0.1:{ports.c2s}\n\
         s2s: 127.0.0.1:{ports.s2s}\ntls: never\nprovision: {accounts: []}\n\
         launch: {command: [false], ready_timeout: 5s}\n",
    )
    .unwrap();
    let baseline = dir.join("baseline.json");
    std::fs::write(&baseline, "committed").unwrap();
    let output = imfed(&[
        "matrix",
        "--target",
        target.to_str().unwrap(),
        "--filter",
        "id:rfc6121-message-chat-bare",
        "--baseline",
        baseline.to_str().unwrap(),
        "--update-baseline",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("baseline not updated: unavailable: gone"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&baseline).unwrap(), "committed");
    assert!(
        dir.join("out/matrix.json").is_file(),
        "the reports are still written"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The interop matrix of the core pack and the XMPP pack (reference, Prosody and ejabberd,
/// plaintext and STARTTLS, Kamailio over UDP and TCP) matches the committed baseline cell for cell: a pass turning into a failure, an
/// expected failure starting to pass, or a scenario appearing or vanishing fails this test.
#[test]
fn interop_matrix_matches_the_committed_baseline() {
    for vendor in ["prosody", "ejabberd", "kamailio"] {
        install(vendor);
    }
    let out = workspace().join("target/imfed/matrix");
    // Columns are implementation × protocol: the reference target speaks XMPP, RVP and SIP,
    // Prosody and ejabberd XMPP, Kamailio SIP.
    let output = imfed(&[
        "matrix",
        "--protocol",
        "xmpp",
        "--protocol",
        "rvp",
        "--protocol",
        "sip",
        "--target",
        "reference",
        "--target",
        "vendors/prosody/target-plain.yaml",
        "--target",
        "vendors/prosody/target-tls.yaml",
        "--target",
        "vendors/ejabberd/target-plain.yaml",
        "--target",
        "vendors/ejabberd/target-tls.yaml",
        "--target",
        "vendors/kamailio/target-udp.yaml",
        "--target",
        "vendors/kamailio/target-tcp.yaml",
        "--retries",
        "1",
        "--baseline",
        "vendors/matrix-baseline.json",
        "scenarios/core",
        "scenarios/xmpp",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("matrix: 0 cells changed from the baseline"),
        "{stdout}"
    );
    for file in [
        "matrix.html",
        "matrix.md",
        "matrix.json",
        "reference-xmpp/junit.xml",
        "reference-rvp/junit.xml",
        "reference-sip/junit.xml",
        "ejabberd-23.01-tls-xmpp/results.json",
        "kamailio-5.6-udp-sip/junit.xml",
        "kamailio-5.6-tcp-sip/results.json",
    ] {
        assert!(out.join(file).is_file(), "{file} not written");
    }
}

/// With `tls_ca`, actors verify the implementation's certificate: the vendor's own per-run
/// CA passes (the TLS targets in the matrix), a CA that did not issue it fails the login.
#[test]
fn tls_ca_rejects_a_certificate_from_another_ca() {
    install("prosody");
    let dir = scratch("other-ca");
    let (ca, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=not the vendor's CA", "-days", "1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&ca)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let start = workspace().join("vendors/prosody/start.sh");
    let target = dir.join("target.yaml");
    std::fs::write(
        &target,
        format!(
            "name: prosody-other-ca\nprotocol: xmpp\ndomain: prosody.test\n\
             c2s: 127.0.0.1:{{ports.c2s}}\ns2s: 127.0.0.1:{{ports.s2s}}\n\
             tls: required\ns2s_tls: required\ntls_ca: {}\nprovision: {{in_band: true}}\n\
             launch: {{command: [bash, {}, --foreground, --tls, tls], ready_timeout: 20s}}\n",
            ca.display(),
            start.display()
        ),
    )
    .unwrap();
    every_run_fails_with("other-ca-run", &target, "UnknownIssuer");
    std::fs::remove_dir_all(&dir).ok();
}

/// A hung implementation (it accepts connections and never answers) fails each scenario
/// with the reason, within the bounds, and the run still finishes and writes its reports.
#[test]
fn a_hung_server_fails_scenarios_with_a_reason_and_the_run_goes_on() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        // Hold every connection open, answering nothing, until the test ends.
        let mut held = Vec::new();
        for stream in listener.incoming().take(16).flatten() {
            held.push(stream);
        }
    });
    let dir = scratch("hung");
    let target = dir.join("hung.yaml");
    std::fs::write(
        &target,
        format!(
            "name: hung\nprotocol: xmpp\ndomain: hung.test\nc2s: {addr}\ns2s: {addr}\ntls: never\n\
             provision: {{accounts: [{{user: a, password: p}}, {{user: b, password: p}}, \
             {{user: c, password: p}}, {{user: d, password: p}}]}}\n"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let junit = every_run_fails_with("hung-run", &target, "timed out");
    assert!(junit.contains("timed out"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    drop(holder);
    std::fs::remove_dir_all(&dir).ok();
}

/// SIGINT stops a run: what ran is reported, the rest is skipped as interrupted, the
/// reports are written, and the exit code says so.
#[test]
fn interrupting_a_run_still_writes_the_reports() {
    use std::io::{BufRead, BufReader};
    let dir = scratch("interrupt");
    let (junit, json) = (dir.join("junit.xml"), dir.join("results.json"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_imfed"))
        .args([
            "run",
            "--jobs",
            "2",
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imfed");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // Wait for the first finished scenario, then interrupt.
    for line in lines.by_ref() {
        if line.unwrap_or_default().starts_with("PASS") {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _drain = std::thread::spawn(move || for _ in lines {});
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report =
        imfed_reports::json::parse(&std::fs::read_to_string(&json).expect("results.json written"))
            .unwrap();
    assert!(report.interrupted);
    let skipped = report
        .results
        .iter()
        .filter(|r| matches!(&r.outcome, imfed_reports::Outcome::Skipped { reason } if reason == "interrupted"))
        .count();
    assert!(
        skipped > 0 && skipped < report.results.len(),
        "{skipped} of {}",
        report.results.len()
    );
    assert!(junit.is_file());
    std::fs::remove_dir_all(&dir).ok();
}

/// An implementation that crashes during the run: its scenarios fail, each failure says the
/// target process exited and how, and the run finishes with its reports.
#[test]
fn a_crashed_target_is_named_in_the_failures() {
    let dir = scratch("crash");
    let target = dir.join("crash.yaml");
    // Listens on both ports, lets the readiness check connect once to each, then exits 3
    // when the first actor connects: it dies mid-run, never before the run (where the
    // readiness check could see it gone and the target would be unavailable instead).
    let server = "import os,socket,sys\n\
        socks=[]\n\
        for key in ('IMFED_C2S','IMFED_S2S'):\n\
        \x20   host,port=os.environ[key].rsplit(':',1)\n\
        \x20   s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
        \x20   s.bind((host,int(port))); s.listen(); socks.append(s)\n\
        for s in socks: s.accept()\n\
        socks[0].accept()\n\
        sys.exit(3)\n";
    std::fs::write(dir.join("crash.py"), server).unwrap();
    std::fs::write(
        &target,
        "name: crash\nprotocol: xmpp\ndomain: crash.test\n\
         c2s: 127.0.0.1:{ports.c2s}\ns2s: 127.0.0.1:{ports.s2s}\ntls: never\n\
         provision: {accounts: [{user: a, password: p}, {user: b, password: p}, {user: c, password: p}, {user: d, password: p}]}\n\
         launch: {command: [python3, crash.py], ready_timeout: 10s}\n",
    )
    .unwrap();
    every_run_fails_with(
        "crash-run",
        &target,
        "the target process has exited (exit status: 3)",
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A broken session or a blind observer never passes: each case runs a scenario against the
/// reference target with one fault, and every run must fail with the cause named (actor,
/// side, time and step for a lost session). The cases run side by side.
#[test]
fn a_lost_session_a_stall_or_a_blind_observer_never_passes() {
    // (case, fault flag, fault, scenario, what every failure must say)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // The issue's own example: a server that drops a client quiet for 0.4 s, during the
        // one-second window that watches Alice for a wrongly sent 'subscribed'.
        (
            "connection-loss",
            "--misbehave",
            "drop_idle_clients",
            "rfc6121-subscribe-deny",
            "(sut.test): stream closed by the server at ",
        ),
        (
            "stalled",
            "--misbehave",
            "stall_clients",
            "rfc6121-message-chat-bare",
            "(sut.test): no answer to a liveness ping within 5000ms: the session has stalled",
        ),
        (
            "blind-stall",
            "--reference-misbehave",
            "tap_stalls",
            "rfc6121-message-chat-bare",
            "the link cannot be observed: control API GET /tap: no answer within",
        ),
        (
            "blind-garbage",
            "--reference-misbehave",
            "tap_malformed",
            "rfc6121-message-chat-bare",
            "the link cannot be observed: control API GET /tap: malformed answer",
        ),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|&(case, flag, fault, id, _)| {
            std::thread::spawn(move || {
                run_pack(case, &[flag, fault, "--filter", &format!("id:{id}")])
            })
        })
        .collect();
    for (run, (case, _, _, _, reason)) in runs.into_iter().zip(cases) {
        let (code, stdout, report, _) = run.join().expect("run thread");
        assert_eq!(code, Some(1), "{case}: the run must fail\n{stdout}");
        assert_eq!(report.results.len(), 2, "{case}: both directions ran");
        for result in &report.results {
            let failure = result
                .failure
                .as_ref()
                .unwrap_or_else(|| panic!("{case}: {} has no failure", result.name()));
            assert!(
                result.outcome.fails_run() && failure.message.contains(reason),
                "{case}: {}: {:?}: {}",
                result.name(),
                result.outcome,
                failure.message
            );
        }
        if *case == "connection-loss" {
            // The step that noticed is named, and the transcript records the end.
            for result in &report.results {
                let failure = result.failure.as_ref().unwrap();
                assert!(
                    failure.message.contains(", noticed during step ")
                        || failure.message.contains("while waiting for")
                        || failure.message.contains("during a window"),
                    "{}",
                    failure.message
                );
                assert!(
                    result
                        .transcript
                        .iter()
                        .any(|line| line.text == "stream closed by the server"),
                    "{}: the transcript does not record the end",
                    result.name()
                );
            }
        }
    }
}

/// A target that dies during a run: runs that passed before are passes, the run during
/// which it died and every later one fail with the reason, and no run reports green on the
/// dead target. The target is a real imfed-server process whose crash_mid_run fault makes it
/// shut down and exit when a client first sends it a message: with one scenario at a time,
/// the presence scenarios at the head of the pack pass, and the first one with a message
/// kills it.
#[test]
fn a_target_that_dies_mid_run_turns_every_later_run_into_a_failure() {
    let server = imfed_server_binary();
    let dir = scratch("dying");
    let accounts: Vec<String> = (0..400).map(|i| format!("u{i}")).collect();
    let target = dir.join("dying.yaml");
    let mut launch = vec![
        server.display().to_string(),
        "--misbehave".into(),
        "crash_mid_run".into(),
        "--domain".into(),
        "dying.test".into(),
        "--c2s".into(),
        "127.0.0.1:{ports.c2s}".into(),
        "--s2s".into(),
        "127.0.0.1:{ports.s2s}".into(),
        "--remote".into(),
        "ref.test={ref.s2s}".into(),
        "--tls".into(),
        "off".into(),
        "--allow-plain".into(),
    ];
    for user in &accounts {
        launch.extend(["--account".into(), format!("{user}@dying.test:pw")]);
    }
    let fixed: Vec<String> = accounts
        .iter()
        .map(|user| format!("{{user: {user}, password: pw}}"))
        .collect();
    let quoted: Vec<String> = launch.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &target,
        format!(
            "name: dying\nprotocol: xmpp\ndomain: dying.test\n\
             c2s: 127.0.0.1:{{ports.c2s}}\ns2s: 127.0.0.1:{{ports.s2s}}\ntls: never\n\
             provision: {{accounts: [{}]}}\nlaunch: {{command: [{}], ready_timeout: 10s}}\n",
            fixed.join(", "),
            quoted.join(", ")
        ),
    )
    .unwrap();
    let (code, stdout, report, _) = run_pack(
        "dying-run",
        &["--target", target.to_str().unwrap(), "--jobs", "1"],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let first_failure = report
        .results
        .iter()
        .position(|r| r.outcome.fails_run())
        .expect("the target died, so runs fail");
    assert!(
        first_failure > 0,
        "some runs passed before it died, but the first failed: {} {:?}",
        report.results[0].name(),
        report.results[0].failure
    );
    for result in &report.results[first_failure..] {
        assert!(
            result.outcome.fails_run(),
            "{} ran after the target died and did not fail: {:?}",
            result.name(),
            result.outcome
        );
    }
    // The process exits after its shutdown drains its connections: a check before that sees
    // its listeners closed, one after sees it gone. Either is a dead target.
    let last = report.results.last().unwrap().failure.as_ref().unwrap();
    assert!(
        last.message
            .contains("not run: the target died earlier in this run")
            && (last
                .message
                .contains("the target process has exited (exit status: 0)")
                || last.message.contains("refused a connection")),
        "{}",
        last.message
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The mutation table: every core scenario is killed by at least one mutant of the
/// reference server, and every kill the committed table lists still happens (a scenario
/// that stops being able to fail is noticed).
#[test]
fn mutation_table_holds_against_the_committed_baseline() {
    let out = scratch("mutants");
    let output = imfed(&[
        "mutants",
        "--baseline",
        "scenarios/core-mutants.json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("gaps: none") && stdout.contains("baseline: 0 kills lost"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|line| line.contains("(100%)")),
        "{stdout}"
    );
    assert!(out.join("mutants.md").is_file());
    std::fs::remove_dir_all(&out).ok();
}

/// The RVP pack passes over RVP against the built-in reference target, and the core pack
/// over RVP passes every scenario RVP can express while each one it cannot is reported
/// unsupported with the profile's reason (never run half-way, never passed).
#[test]
fn rvp_pack_passes_and_the_core_pack_over_rvp_declares_its_gaps() {
    profile_packs_pass(
        "rvp",
        28,
        &[
            "rvp:subscription-handshake",
            "rvp:status-text",
            "rvp:xmpp-wire",
        ],
        "unsupported capability: rvp:subscription-handshake (RVP has no subscription handshake",
    );
}

/// The XMPP profile pack passes against the reference target: the hostile-peer checks of
/// `scenarios/xmpp/s2s-security`, each on a peer connection of its own whose verdicts are
/// in the transcript, and the files of `scenarios/xmpp/files`, uploaded (XEP-0363), linked
/// (XEP-0066) and downloaded intact in both directions.
#[test]
fn xmpp_security_pack_and_files_pack_pass_against_the_reference_target() {
    let (code, stdout, report, junit) = run_pack("xmpp-security", &["scenarios/xmpp"]);
    let files: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.file.starts_with("files/"))
        .collect();
    assert!(files.len() >= 4, "{} files runs", files.len());
    for result in &files {
        assert_eq!(
            result.outcome,
            imfed_reports::Outcome::Pass,
            "{}",
            result.name()
        );
    }
    let video = files
        .iter()
        .find(|r| r.id == "xmpp-files-text-audio-video")
        .expect("the text, audio and video files ran");
    assert!(
        video
            .transcript
            .iter()
            .any(|line| line.text.contains("urn:xmpp:http:upload:0")
                && line.text.contains("size='3145728'")),
        "{:#?}",
        video.transcript
    );
    assert_eq!(code, Some(0), "{stdout}");
    let security: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.file.starts_with("s2s-security/"))
        .collect();
    assert!(security.len() >= 30, "{} security runs", security.len());
    for result in &security {
        assert_eq!(
            result.outcome,
            imfed_reports::Outcome::Pass,
            "{}",
            result.id
        );
        // Each acts on the link itself: a peer connection of its own, or the reference
        // server's link going down.
        assert!(
            result
                .transcript
                .iter()
                .any(|line| line.actor.starts_with("peer ") || line.actor == "reference"),
            "{}: neither a peer connection nor the reference link in the transcript",
            result.id
        );
    }
    let recovered = report
        .results
        .iter()
        .find(|r| r.id == "xmpp-s2s-dead-link-bounces-and-recovers")
        .expect("the dead-link check ran");
    assert!(
        recovered
            .transcript
            .iter()
            .any(|line| line.text.contains("remote-server-timeout")),
        "{:#?}",
        recovered.transcript
    );
    let refused = report
        .results
        .iter()
        .find(|r| r.id == "xmpp-s2s-invalid-from")
        .expect("the invalid-from check ran");
    assert!(
        refused
            .transcript
            .iter()
            .any(|line| line.text.contains("stream error <invalid-from/>")),
        "{:#?}",
        refused.transcript
    );
    assert!(junit.contains("xmpp-s2s-slow-loris"), "{junit}");
}

/// Every XMPP pack scenario is killed by a mutant of the reference server, and every kill
/// the committed table lists still happens.
#[test]
fn xmpp_mutation_table_holds_against_the_committed_baseline() {
    // The core table runs the mutants it was made with; this one has every XMPP mutant, so
    // a fault added to the server is tried against a pack before it lands.
    let committed = imfed_reports::mutation::from_json(
        &std::fs::read_to_string(workspace().join("scenarios/xmpp-mutants.json"))
            .expect("scenarios/xmpp-mutants.json is committed"),
    )
    .expect("the committed table parses");
    assert_eq!(
        committed.mutants,
        imfed::mutants::all_mutants(imfed::driver::Profile::Xmpp),
        "the table has every XMPP mutant"
    );
    assert!(committed.gaps().is_empty(), "{:?}", committed.gaps());
    mutation_table_holds("xmpp");
}

/// Every RVP pack scenario is killed by an RVP mutant of the reference server, and every
/// kill the committed table lists still happens.
#[test]
fn rvp_mutation_table_holds_against_the_committed_baseline() {
    mutation_table_holds("rvp");
}

/// The SIP pack passes in both directions against the reference target, and the core pack
/// over SIP passes what SIP can express and declares the rest a gap with its reason.
#[test]
fn sip_pack_passes_and_the_core_pack_over_sip_declares_its_gaps() {
    profile_packs_pass(
        "sip",
        34,
        &[
            "sip:subscription-handshake",
            "sip:contact-list",
            "sip:message-kind-groupchat",
            "sip:xmpp-wire",
        ],
        "unsupported capability: sip:subscription-handshake (the SIP profile has no subscription handshake",
    );
}

/// Every SIP pack scenario is killed by a SIP mutant of the reference server, every kill
/// the committed table lists still happens, and every SIP mutant but the loop one (which
/// needs routes configured on the target, `scenarios/README.md`) kills a scenario.
#[test]
fn sip_mutation_table_holds_against_the_committed_baseline() {
    let committed = imfed_reports::mutation::from_json(
        &std::fs::read_to_string(workspace().join("scenarios/sip-mutants.json"))
            .expect("scenarios/sip-mutants.json is committed"),
    )
    .expect("the committed table parses");
    let sip_switches: Vec<&str> = imfed_server::faults::Switch::ALL
        .iter()
        .filter(|switch| switch.protocol() == imfed_server::faults::FaultProtocol::Sip)
        .map(|switch| switch.name())
        .collect();
    assert_eq!(
        committed.mutants, sip_switches,
        "the table has every SIP mutant"
    );
    assert_eq!(committed.undetected(), vec!["sip_no_loop_detection"]);
    assert!(committed.gaps().is_empty(), "{:?}", committed.gaps());

    mutation_table_holds("sip");
}

/// `scenarios/core` and `scenarios/<protocol>` over `protocol` against the reference target:
/// no run fails, every run of the profile's own pack (at least `pack_runs`) passes, at least
/// 20 core runs pass, and every core run the profile cannot express is unsupported with a
/// capability of the profile whose reason cites its text (but the XMPP escape hatch's), the
/// `expected` gaps among them and `junit_reason` visible to JUnit readers.
fn profile_packs_pass(protocol: &str, pack_runs: usize, expected: &[&str], junit_reason: &str) {
    let pack = format!("scenarios/{protocol}");
    let (code, stdout, report, junit) =
        run_pack(protocol, &["--protocol", protocol, "scenarios/core", &pack]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(report.protocol, protocol);
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome.fails_run())
        .map(|r| format!("{}: {:?}", r.name(), r.failure))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let passed = |pack: &str| {
        report
            .results
            .iter()
            .filter(|r| r.pack == pack && r.outcome == imfed_reports::Outcome::Pass)
            .count()
    };
    let own = report.results.iter().filter(|r| r.pack == protocol).count();
    assert!(own >= pack_runs, "the {protocol} pack has {own} runs");
    assert_eq!(passed(protocol), own, "every {protocol} pack run passes");
    assert!(
        passed("core") >= 20,
        "{} core runs passed over {protocol}",
        passed("core")
    );
    let prefix = format!("{protocol}:");
    let escape_hatch = format!("{protocol}:xmpp-wire");
    let mut gaps = std::collections::BTreeSet::new();
    for result in report.results.iter().filter(|r| r.pack == "core") {
        match &result.outcome {
            imfed_reports::Outcome::Pass => {}
            imfed_reports::Outcome::Unsupported { capability, reason } => {
                assert!(
                    capability.starts_with(&prefix)
                        && (reason.contains('§') || *capability == escape_hatch),
                    "{}: {capability} ({reason})",
                    result.name()
                );
                gaps.insert(capability.clone());
            }
            other => panic!("{}: {other:?}", result.name()),
        }
    }
    for gap in expected {
        assert!(gaps.contains(*gap), "{gap} missing from {gaps:?}");
    }
    assert!(junit.contains(junit_reason), "{junit}");
}

/// Every scenario of `scenarios/<protocol>` is killed by a mutant of the reference server's
/// front-end for `protocol`, and every kill `scenarios/<protocol>-mutants.json` lists still
/// happens.
fn mutation_table_holds(protocol: &str) {
    let out = scratch(&format!("{protocol}-mutants"));
    let (pack, baseline) = (
        format!("scenarios/{protocol}"),
        format!("scenarios/{protocol}-mutants.json"),
    );
    let output = imfed(&[
        "mutants",
        "--protocol",
        protocol,
        &pack,
        "--baseline",
        &baseline,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("gaps: none") && stdout.contains("baseline: 0 kills lost"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&out).ok();
}
