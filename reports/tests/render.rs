//! Every renderer on one run with each outcome kind, two packs and hostile transcript text;
//! the JUnit XML read back with an independent parser.

use imfed_reports::terminal::{self, TerminalStyle};
use imfed_reports::{
    Counts, Failure, Flow, Judges, Level, LinkLine, Outcome, RunReport, ScenarioResult, SpecRef,
    TranscriptLine, json, junit,
};

/// Text a misbehaving server could send: a CDATA end, markup characters, a control character
/// XML 1.0 forbids, and non-ASCII.
const NASTY: &str = "<body>]]> &amp; & < \u{1} héllo ✓ 日本語 🎉</body>";

fn spec(doc: &str, section: &str, level: Level) -> SpecRef {
    SpecRef {
        doc: doc.into(),
        section: section.into(),
        level,
        text: None,
    }
}

fn line(t_ms: u64, actor: &str, flow: Flow, text: &str) -> TranscriptLine {
    TranscriptLine {
        t_ms,
        actor: actor.into(),
        flow,
        text: text.into(),
    }
}

fn link(t_ms: u64, direction: &str, xml: &str) -> LinkLine {
    LinkLine {
        t_ms,
        direction: direction.into(),
        local: "ref.test".into(),
        remote: "sut.test".into(),
        xml: xml.into(),
    }
}

fn scenario(pack: &str, id: &str, direction: &str, outcome: Outcome) -> ScenarioResult {
    ScenarioResult {
        judges: Default::default(),
        id: id.into(),
        title: format!("{id} title"),
        pack: pack.into(),
        file: format!("{pack}/{id}.yaml"),
        direction: direction.into(),
        spec: vec![],
        tags: vec![],
        outcome,
        failure: None,
        attempts: 1,
        duration_ms: 42,
        transcript: vec![],
        federation: vec![],
    }
}

fn fixture() -> RunReport {
    let message_spec = vec![
        spec("RFC 6121", "5.2.3", Level::Must),
        spec("RFC 6120", "8.5", Level::Must),
    ];

    let mut pass = scenario("core", "message-chat", "ref→sut", Outcome::Pass);
    pass.spec = message_spec.clone();
    pass.tags = vec!["message".into(), "s2s".into()];
    pass.transcript = vec![
        line(0, "alice", Flow::Note, "logged in as alice@ref.test/phone"),
        line(
            3,
            "alice",
            Flow::Sent,
            "<message to='bob@sut.test' type='chat'><body>hi</body></message>",
        ),
        line(
            18,
            "bob",
            Flow::Received,
            "<message from='alice@ref.test/phone' type='chat'><body>hi</body></message>",
        ),
    ];
    pass.federation = vec![link(
        5,
        "out",
        "<message from='alice@ref.test/phone' to='bob@sut.test' type='chat'><body>hi</body></message>",
    )];

    let mut flaky = scenario(
        "core",
        "message-chat",
        "sut→ref",
        Outcome::Flaky { attempts: 2 },
    );
    flaky.spec = message_spec;
    flaky.attempts = 2;
    flaky.failure = Some(Failure {
        judges: None,
        step: 3,
        step_label: "expect alice message from bob".into(),
        message: "no message from bob within 5s".into(),
        awaited: Some("message from bob".into()),
        arrived: vec![],
    });

    let mut fail = scenario("core", "presence-probe", "ref→sut", Outcome::Fail);
    fail.spec = vec![
        spec("RFC 6121", "4.3", Level::Must),
        SpecRef {
            text: Some("the contact's server MUST reply on behalf of the contact".into()),
            ..spec("RFC 6121", "4.3.2", Level::Should)
        },
    ];
    fail.tags = vec!["presence".into()];
    fail.duration_ms = 5_013;
    fail.failure = Some(Failure {
        judges: Some(Judges::Sut),
        step: 5,
        step_label: "expect bob message from alice".into(),
        message: "no message from alice within 5s".into(),
        awaited: Some("message from alice".into()),
        arrived: vec![format!(
            "<presence from='alice@sut.test/phone'>{NASTY}</presence>"
        )],
    });
    fail.transcript = (0..9)
        .map(|i| line(i * 10, "bob", Flow::Note, &format!("waiting {i}")))
        .chain([
            line(
                100,
                "alice",
                Flow::Sent,
                &format!("<message to='bob@ref.test'>{NASTY}</message>"),
            ),
            line(
                120,
                "bob",
                Flow::Received,
                "<presence from='alice@sut.test/phone'/>",
            ),
            line(130, "bob", Flow::Note, "disconnected\r\nby peer"),
        ])
        .collect();
    fail.federation = vec![
        link(
            101,
            "in",
            &format!("<message from='alice@sut.test' to='bob@ref.test'>{NASTY}</message>"),
        ),
        link(102, "out", "<db:result type='valid'/>"),
    ];

    let mut xfail = scenario(
        "dialback",
        "dialback-verify",
        "ref→sut",
        Outcome::XFail {
            reason: "answers db:verify with the wrong id (issue 42)".into(),
        },
    );
    xfail.spec = vec![spec("XEP-0220", "2.4", Level::Must)];
    xfail.failure = Some(Failure {
        judges: None,
        step: 2,
        step_label: "expect link db:verify".into(),
        message: "wrong id".into(),
        awaited: Some("<db:verify id='abc'/>".into()),
        arrived: vec!["<db:verify id='xyz'/>".into()],
    });

    let mut xpass = scenario(
        "dialback",
        "dialback-invalid-key",
        "sut→ref",
        Outcome::XPass {
            reason: "accepts invalid keys (issue 7)".into(),
        },
    );
    xpass.spec = vec![
        spec("XEP-0220", "2.3", Level::Must),
        spec("XEP-0220", "2.5", Level::May),
    ];

    let mut skipped = scenario(
        "core",
        "roster-push",
        "ref→sut",
        Outcome::Skipped {
            reason: "interrupted".into(),
        },
    );
    skipped.spec = vec![spec("RFC 6121", "2.1.6", Level::Must)];
    skipped.attempts = 0;
    skipped.duration_ms = 0;

    let mut unsupported = scenario(
        "dialback",
        "dialback-starttls",
        "ref→sut",
        Outcome::Unsupported {
            capability: "starttls".into(),
            reason: String::new(),
        },
    );
    unsupported.attempts = 0;
    unsupported.duration_ms = 0;

    // A pass whose checks judged only the reference server: no verdict on the target.
    let mut reference_only = scenario("core", "unknown-domain", "ref→sut", Outcome::Pass);
    reference_only.judges = Judges::Ref;

    RunReport {
        target: "sut".into(),
        protocol: "xmpp".into(),
        imfed_version: "0.1.0".into(),
        started_ms: 1_700_000_000_000,
        duration_ms: 6_000,
        interrupted: false,
        // Packs interleave: the JUnit suites follow first appearance.
        results: vec![
            pass,
            flaky,
            xfail,
            fail,
            xpass,
            skipped,
            unsupported,
            reference_only,
        ],
    }
}

const PLAIN: TerminalStyle = TerminalStyle { color: false };
const COLOR: TerminalStyle = TerminalStyle { color: true };

#[test]
fn terminal_summary_snapshot() {
    let text = terminal::summary(&fixture(), PLAIN);
    insta::with_settings!({ filters => vec![(r"\+\d+ms", "+[ms]")] }, {
        insta::assert_snapshot!("terminal_summary", text);
    });
}

#[test]
fn terminal_last_line_is_exactly_the_summary_line() {
    let report = fixture();
    let expected = Counts::of(&report.results).summary_line();
    assert_eq!(expected, "1 passed, 2 failed, 2 skipped");
    for style in [PLAIN, COLOR] {
        let text = terminal::summary(&report, style);
        assert!(text.ends_with(&format!("\n{expected}\n")), "{text:?}");
        assert_eq!(text.lines().last(), Some(expected.as_str()));
    }
    let colored = terminal::summary(&report, COLOR);
    assert!(colored.contains('\x1b'), "color on but no ANSI codes");
    assert!(!terminal::summary(&report, PLAIN).contains('\x1b'));
}

#[test]
fn junit_snapshot() {
    let xml = junit::render(&fixture()).unwrap();
    insta::with_settings!({ filters => vec![
        (r#"time="[0-9.]+""#, r#"time="[time]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[timestamp]""#),
        (r"\+\d+ms", "+[ms]"),
    ] }, {
        insta::assert_snapshot!("junit", xml);
    });
}

#[test]
fn junit_has_only_characters_xml_allows() {
    let xml = junit::render(&fixture()).unwrap();
    let forbidden = |c: char| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    assert!(!xml.chars().any(forbidden), "{xml}");
}

#[test]
fn junit_reads_back_with_an_independent_parser() {
    let xml = junit::render(&fixture()).unwrap();
    let suites = junit_parser::from_reader(xml.as_bytes()).expect("well-formed JUnit XML");

    let names: Vec<&str> = suites.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["core", "dialback"]);
    let cases: Vec<&junit_parser::TestCase> = suites.suites.iter().flat_map(|s| &s.cases).collect();
    assert_eq!(cases.len(), 8);
    assert_eq!(suites.suites[0].cases.len(), 5);
    assert_eq!(suites.suites[0].failures, 1);
    assert_eq!(suites.suites[1].failures, 1);

    let case = |name: &str| {
        *cases
            .iter()
            .find(|c| c.original_name == name)
            .unwrap_or_else(|| panic!("no testcase {name}"))
    };
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.status.is_failure())
        .map(|c| c.original_name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["presence-probe [ref→sut]", "dialback-invalid-key [sut→ref]"]
    );
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| c.status.is_skipped())
        .map(|c| c.original_name.as_str())
        .collect();
    assert_eq!(
        skipped,
        [
            "roster-push [ref→sut]",
            "unknown-domain [ref→sut]",
            "dialback-verify [ref→sut]",
            "dialback-starttls [ref→sut]"
        ]
    );
    assert!(case("message-chat [ref→sut]").status.is_success());
    assert!(case("message-chat [sut→ref]").status.is_success());

    let probe = case("presence-probe [ref→sut]");
    assert_eq!(probe.classname.as_deref(), Some("core.presence-probe"));
    assert_eq!(probe.file.as_deref(), Some("core/presence-probe.yaml"));
    assert!((probe.time - 5.013).abs() < 1e-9, "{}", probe.time);
    let failure = probe.status.failure_as_ref();
    assert!(
        failure.message.starts_with(
            "step 5 (expect bob message from alice): no message from alice within 5s; \
             arrived instead: <presence from='alice@sut.test/phone'><body>]]> &amp; & < \\u{1} héllo"
        ),
        "{}",
        failure.message
    );
    assert!(
        failure.text.contains("awaited: message from alice"),
        "{}",
        failure.text
    );

    let out = probe.system_out.as_deref().unwrap();
    assert!(out.contains("spec: RFC 6121 §4.3 MUST\n"), "{out}");
    assert!(out.contains("tags: presence\n"), "{out}");
    assert!(out.contains("direction: ref→sut\n"), "{out}");
    assert!(
        out.contains("\ntranscript:\n+0ms bob · waiting 0\n"),
        "{out}"
    );
    assert!(
        out.contains("+130ms bob · disconnected\\r\\nby peer\n"),
        "{out}"
    );
    assert!(
        out.contains("\nfederation link:\n+101ms ref.test ← sut.test <message"),
        "{out}"
    );
    assert!(
        out.contains("+102ms ref.test → sut.test <db:result type='valid'/>"),
        "{out}"
    );
    // The `]]>` is split across two CDATA sections. junit-parser joins adjacent sections with a
    // newline; a conforming XML reader gives the `]]>` back.
    let unsplit = out.replace("]]\n>", "]]>");
    assert!(
        unsplit.contains("+100ms alice ⇒ <message to='bob@ref.test'><body>]]> &amp; & < \\u{1} héllo ✓ 日本語 🎉</body></message>"),
        "{out}"
    );

    let flaky = case("message-chat [sut→ref]");
    assert!(
        flaky
            .system_out
            .as_deref()
            .unwrap()
            .starts_with("FLAKY: passed on attempt 2\n"),
        "{flaky:?}"
    );

    let xpass = case("dialback-invalid-key [sut→ref]")
        .status
        .failure_as_ref();
    assert_eq!(xpass.failure_type, "xpass");
    assert!(xpass.message.contains("accepts invalid keys (issue 7)"));

    let xfail = case("dialback-verify [ref→sut]").status.skipped_as_ref();
    assert_eq!(
        xfail.message,
        "expected failure: answers db:verify with the wrong id (issue 42)"
    );
    let unsupported = case("dialback-starttls [ref→sut]").status.skipped_as_ref();
    assert_eq!(unsupported.message, "unsupported capability: starttls");
    let skipped = case("roster-push [ref→sut]").status.skipped_as_ref();
    assert_eq!(skipped.message, "interrupted");
}

#[test]
fn json_round_trips() {
    let report = fixture();
    let text = json::render(&report);
    assert_eq!(json::parse(&text).unwrap(), report);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["counts"]["failed"], 2);
    assert_eq!(value["counts"]["flaky"], 1);
}

/// A second target's report: the fixture with every outcome turned into a pass except one
/// failure, so the matrix has differing columns.
fn second_target() -> RunReport {
    let mut report = fixture();
    report.target = "other".into();
    for (index, result) in report.results.iter_mut().enumerate() {
        if index == 0 {
            result.outcome = Outcome::Fail;
            result.failure = Some(Failure {
                judges: None,
                step: 2,
                step_label: "expect bob message".into(),
                message: "bob received no message within 10s".into(),
                awaited: Some("message from alice".into()),
                arrived: vec!["<presence/>".into()],
            });
        } else {
            result.outcome = Outcome::Pass;
            result.failure = None;
        }
    }
    report
}

/// The matrix page loads in a real browser (Debian's headless Chromium) and the DOM after
/// load has every cell with its outcome, and a details section behind each non-pass cell.
#[test]
fn matrix_html_renders_in_headless_chromium() {
    use imfed_reports::matrix::{Matrix, to_html};
    let runs = vec![
        ("reference".to_string(), fixture()),
        ("other".to_string(), second_target()),
    ];
    let matrix = Matrix::build(&runs);
    let dir = std::env::temp_dir().join(format!("imfed-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("matrix.html");
    std::fs::write(&page, to_html(&matrix, &runs)).unwrap();
    let profile = dir.join("profile");
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--timeout=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/test installs it)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    // The page's script ran and counted the cells it found in the rendered table.
    let cells: usize = matrix.rows.iter().map(|row| row.cells.len()).sum();
    assert!(
        dom.contains(&format!("data-rendered=\"{cells}\"")),
        "script did not run: {dom:.500}"
    );
    for row in &matrix.rows {
        for (target, cell) in &row.cells {
            let needle = format!(
                "data-scenario=\"{}\" data-direction=\"{}\" data-target=\"{}\" data-outcome=\"{}\"",
                row.id, row.direction, target, cell.outcome
            );
            assert!(dom.contains(&needle), "cell missing from the DOM: {needle}");
        }
    }
    // Each non-pass cell links to a details section that exists, holding its message.
    let links: Vec<&str> = dom
        .split("<a href=\"#")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let problems = matrix
        .rows
        .iter()
        .flat_map(|r| r.cells.values())
        .filter(|c| c.outcome != "pass")
        .count();
    assert_eq!(links.len(), problems);
    for id in links {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "no details for #{id}"
        );
    }
    assert!(dom.contains("bob received no message within 10s"));
    std::fs::remove_dir_all(&dir).ok();
}
