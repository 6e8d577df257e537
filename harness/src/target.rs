//! Targets: the implementation under test, described by a YAML target file, or the built-in
//! `reference` target (a second imfed-server playing the implementation under test).
//!
//! ```yaml
//! name: prosody-plain
//! protocol: xmpp
//! domain: sut.test
//! c2s: 127.0.0.1:{ports.c2s}       # {ports.NAME} is a free loopback port the harness picks
//! s2s: 127.0.0.1:{ports.s2s}
//! tls: optional                     # how actors log in: never | optional | required
//! tls_ca: "{run.dir}/certs/ca.crt"   # optional: verify its certificate against this CA
//! unsupported: [offline-storage]    # capabilities it lacks: scenarios requiring them skip
//! run_ca: true                      # optional: a CA per run in {pki.dir} it trusts for s2s
//! secure_domain: secure.sut.test    # optional: a hosted domain taking certificates only
//! s2s_auth_timeout: 10s             # optional: it closes an s2s connection unauthenticated this long
//! s2s_retry_delay: 1s               # optional: it may wait this long to retry a failed domain
//! provision:                        # exactly one of:
//!   command: [./register.sh, "{run.dir}", "{user}", "{domain}", "{password}"]
//!   # in_band: true                 # XEP-0077 in-band registration
//!   # accounts: [{user: u1, password: p1}]
//! expectations: expectations.yaml   # optional: known failures (see expectations.rs)
//! launch:                           # optional: how to start and stop it
//!   command: [./start.sh]
//!   env: {PROSODY_DOMAIN: "{domain}", PROSODY_ROUTES: "{ref.domain}={ref.s2s}"}
//!   ready_timeout: 20s              # until c2s and s2s accept connections
//!   stop_timeout: 10s               # SIGTERM, then SIGKILL
//! ```
//!
//! Templates in `launch` and `provision`: `{ports.NAME}`, `{run.dir}` (a fresh directory per
//! run), `{pki.dir}` (with `run_ca`), `{domain}`, `{secure_domain}`, `{ref.domain}`, `{ref.s2s}`, `{blackhole.domain}`, `{blackhole.s2s}`,
//! `{unknown.domain}`, and in `provision.command` also `{user}` and `{password}`. Relative
//! command paths are resolved against the target file's folder.
//!
//! A SIP target (`protocol: sip`, `protocols/sip/PROFILE.md`) names where user agents send
//! (`c2s`) and where peer servers send (`s2s`; often the same address, UDP and TCP on one
//! port), and `transport: udp | tcp` (default udp) for both its user agents and the
//! reference server's route to it. Its templates add `{ref.sip}`, the reference server's
//! SIP address (UDP and TCP), and the launch environment `IMFED_REF_SIP`. Its actors have
//! no in-band registration. RVP targets are not supported (the built-in reference target
//! speaks RVP).
//!
//! ```yaml
//! name: kamailio
//! protocol: sip
//! transport: udp
//! domain: sut.test
//! c2s: 127.0.0.1:{ports.sip}
//! s2s: 127.0.0.1:{ports.sip}
//! provision: {command: [./add-user.sh, "{run.dir}", "{user}", "{password}"]}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::scenario::load::{InputError, read_yaml};
use crate::scenario::model::Dur;

/// The slow-loris bound assumed for a target that declares none.
pub const DEFAULT_S2S_AUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How actors on a side log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoginTls {
    /// Never use TLS.
    Never,
    /// Use STARTTLS when offered.
    #[default]
    Optional,
    /// Require STARTTLS.
    Required,
}

/// How accounts are created on the implementation under test.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    /// A command run once per account, templated with `{user}`, `{domain}`, `{password}`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// In-band registration (XEP-0077) over a client connection.
    #[serde(default)]
    pub in_band: bool,
    /// A fixed list of accounts handed out in order (scenarios needing more fail).
    #[serde(default)]
    pub accounts: Option<Vec<FixedAccount>>,
}

/// A pre-created account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedAccount {
    /// The localpart.
    pub user: String,
    /// The password.
    pub password: String,
}

/// How to start and stop the implementation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// The command and its arguments (templated).
    pub command: Vec<String>,
    /// Extra environment (templated values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Bound on readiness: both c2s and s2s accept TCP connections (default 30s).
    #[serde(default)]
    pub ready_timeout: Option<Dur>,
    /// Bound on stopping after SIGTERM before SIGKILL (default 10s).
    #[serde(default)]
    pub stop_timeout: Option<Dur>,
}

/// The SIP transport of a target (PROFILE.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SipTransport {
    /// UDP (RFC 3261 §18).
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

impl SipTransport {
    /// The driver's transport.
    pub fn driver(self) -> crate::driver::sip::Transport {
        match self {
            SipTransport::Udp => crate::driver::sip::Transport::Udp,
            SipTransport::Tcp => crate::driver::sip::Transport::Tcp,
        }
    }
}

/// A target file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// Display name.
    pub name: String,
    /// The protocol profile (`xmpp` or `sip`; RVP is spoken by the built-in reference
    /// target only so far, see `--protocol`).
    pub protocol: String,
    /// The SIP transport of user agents and of the reference server's route to the target
    /// (`sip` targets only; default udp).
    #[serde(default)]
    pub transport: Option<SipTransport>,
    /// The domain the implementation hosts for the test.
    pub domain: String,
    /// Its client listener, `host:port` (templated; SIP: where user agents send).
    pub c2s: String,
    /// Its server-to-server listener, `host:port` (templated; SIP: where peer servers send).
    pub s2s: String,
    /// How actors log in.
    #[serde(default)]
    pub tls: LoginTls,
    /// A PEM file of CA certificates (templated; relative to the target file) that the
    /// implementation's TLS certificate chains to. When given, actors verify its certificate
    /// and the domain name in it (RFC 6120 §13.7.2); read after launch, so a launch script
    /// may make the CA at start.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// How long it lets a server-to-server connection go without authenticating before it
    /// closes it (its slow-loris bound; default [`DEFAULT_S2S_AUTH_TIMEOUT`]): checks that
    /// it does wait this and 5 s more.
    #[serde(default)]
    pub s2s_auth_timeout: Option<Dur>,
    /// How long after a failed server-to-server connection it may wait before trying that
    /// domain again (its retry back-off; default 0): `reference_link: up` waits this long.
    #[serde(default)]
    pub s2s_retry_delay: Option<Dur>,
    /// STARTTLS policy of the reference server's s2s side for this target (default: the
    /// same as `tls`, with never meaning off).
    #[serde(default)]
    pub s2s_tls: Option<LoginTls>,
    /// Make a CA for each run before launch, in `{pki.dir}` (`ca.crt` and `ca.key`, PEM;
    /// the launch environment's `IMFED_CA_DIR`): the launch script signs the
    /// implementation's certificate with it and trusts it for server-to-server certificate
    /// authentication (XEP-0178), so peers with the run's certificates can use SASL
    /// EXTERNAL. Without it, the scenarios that need the `s2s-certificates` capability are
    /// unsupported.
    #[serde(default)]
    pub run_ca: bool,
    /// A domain the implementation also hosts whose server-to-server links authenticate by
    /// certificate only (its `s2s_secure_auth`): TLS required, dialback refused. The
    /// `{sut.secure_domain}` of scenarios; without it, those that need the
    /// `s2s-secure-auth` capability are unsupported. Needs `run_ca`.
    #[serde(default)]
    pub secure_domain: Option<String>,
    /// Capabilities it lacks.
    #[serde(default)]
    pub unsupported: Vec<String>,
    /// Account creation.
    pub provision: Provision,
    /// Start and stop.
    #[serde(default)]
    pub launch: Option<Launch>,
    /// The vendor's expectations file (known failures), relative to the target file; used
    /// unless `--expectations` names another.
    #[serde(default)]
    pub expectations: Option<String>,
}

/// A target as the runner uses it.
#[derive(Clone, Debug)]
pub enum TargetSpec {
    /// Two imfed-servers: `ref.test` and `sut.test`.
    Reference {
        /// STARTTLS for everything (XMPP).
        tls: LoginTls,
        /// The protocol its actors and its federation link speak.
        protocol: crate::driver::Profile,
    },
    /// A target file.
    File {
        /// The file.
        path: PathBuf,
        /// Its contents.
        file: Box<TargetFile>,
    },
}

impl TargetSpec {
    /// `reference` or a target file.
    ///
    /// # Errors
    /// [`InputError`] for a file that cannot be read or is invalid.
    pub fn parse(text: &str) -> Result<TargetSpec, InputError> {
        if text == "reference" {
            return Ok(TargetSpec::Reference {
                tls: LoginTls::Optional,
                protocol: crate::driver::Profile::Xmpp,
            });
        }
        let path = PathBuf::from(text);
        let file: TargetFile = read_yaml(&path)?;
        check(&file, &path)?;
        Ok(TargetSpec::File {
            path,
            file: Box::new(file),
        })
    }

    /// The display name.
    pub fn name(&self) -> String {
        match self {
            TargetSpec::Reference { .. } => "reference".into(),
            TargetSpec::File { file, .. } => file.name.clone(),
        }
    }

    /// The expectations file the target file names, resolved against its folder.
    pub fn expectations_path(&self) -> Option<PathBuf> {
        match self {
            TargetSpec::Reference { .. } => None,
            TargetSpec::File { path, file } => file
                .expectations
                .as_ref()
                .map(|relative| base_dir(path).join(relative)),
        }
    }

    /// The protocol profile the target speaks.
    pub fn profile(&self) -> crate::driver::Profile {
        match self {
            TargetSpec::Reference { protocol, .. } => *protocol,
            TargetSpec::File { file, .. } => crate::driver::Profile::from_name(&file.protocol)
                .expect("checked when the file was read"),
        }
    }

    /// Capabilities the target lacks.
    pub fn unsupported(&self) -> Vec<String> {
        match self {
            TargetSpec::Reference { .. } => Vec::new(),
            TargetSpec::File { file, .. } => file.unsupported.clone(),
        }
    }
}

fn check(file: &TargetFile, path: &Path) -> Result<(), InputError> {
    let fail = |message: String| Err(InputError::at(path, 1, 1, message));
    if file.protocol == crate::driver::Profile::Rvp.name() {
        return fail(
            "protocol \"rvp\": target files speak xmpp only so far; the built-in reference \
             target speaks RVP (`imfed run --protocol rvp`)"
                .into(),
        );
    }
    if file.transport.is_some() && file.protocol != crate::driver::Profile::Sip.name() {
        return fail(format!(
            "transport: only sip targets name a transport, not {:?}",
            file.protocol
        ));
    }
    if file.protocol == crate::driver::Profile::Sip.name() && file.provision.in_band {
        return fail("provision.in_band: SIP has no in-band registration of accounts".into());
    }
    if crate::driver::Profile::from_name(&file.protocol).is_none() {
        let known: Vec<&str> = crate::driver::Profile::ALL
            .iter()
            .map(|profile| profile.name())
            .collect();
        return fail(format!(
            "protocol {:?} is not supported (supported: {})",
            file.protocol,
            known.join(", ")
        ));
    }
    let provision = &file.provision;
    let ways = usize::from(provision.command.is_some())
        + usize::from(provision.in_band)
        + usize::from(provision.accounts.is_some());
    if ways != 1 {
        return fail("provision: give exactly one of command, in_band, accounts".into());
    }
    if provision.command.as_ref().is_some_and(Vec::is_empty) {
        return fail("provision.command: empty".into());
    }
    if let Some(launch) = &file.launch
        && launch.command.is_empty()
    {
        return fail("launch.command: empty".into());
    }
    if imfed_xmpp::Jid::new(None, &file.domain, None).is_err() {
        return fail(format!("domain {:?} is not a valid domain", file.domain));
    }
    if let Some(secure) = &file.secure_domain {
        if !file.run_ca {
            return fail(format!(
                "secure_domain {secure:?}: certificate authentication needs run_ca: true"
            ));
        }
        if imfed_xmpp::Jid::new(None, secure, None).is_err() || secure == &file.domain {
            return fail(format!(
                "secure_domain {secure:?} is not a valid domain other than domain"
            ));
        }
    }
    Ok(())
}

/// The folder relative command paths are resolved against, made absolute (the launched
/// command also runs in it, so a relative folder would be applied twice).
pub fn base_dir(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<TargetFile, String> {
        let file: TargetFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        check(&file, Path::new("t.yaml")).map_err(|e| e.to_string())?;
        Ok(file)
    }

    const SIP: &str = "name: k\nprotocol: sip\ndomain: sut.test\nc2s: 127.0.0.1:5060\n\
                       s2s: 127.0.0.1:5060\nprovision: {accounts: []}\n";

    #[test]
    fn sip_targets_name_a_transport_and_others_do_not() {
        let file = check_text(SIP).unwrap();
        assert_eq!(file.transport.unwrap_or_default(), SipTransport::Udp);
        let tcp = check_text(&format!("{SIP}transport: tcp\n")).unwrap();
        assert_eq!(tcp.transport, Some(SipTransport::Tcp));
        assert_eq!(
            SipTransport::Tcp.driver(),
            crate::driver::sip::Transport::Tcp
        );
        assert!(check_text(&format!("{SIP}transport: sctp\n")).is_err());
        let xmpp = SIP.replace("protocol: sip", "protocol: xmpp");
        assert!(check_text(&xmpp).is_ok());
        let error = check_text(&format!("{xmpp}transport: tcp\n")).unwrap_err();
        assert!(error.contains("only sip targets"), "{error}");
        let rvp = SIP.replace("protocol: sip", "protocol: rvp");
        assert!(check_text(&rvp).unwrap_err().contains("rvp"));
        let in_band = SIP.replace("{accounts: []}", "{in_band: true}");
        assert!(check_text(&in_band).unwrap_err().contains("in-band"));
    }
}
