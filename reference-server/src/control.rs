//! The control API: HTTP + JSON on a loopback port, how the harness provisions and observes
//! the reference side.
//!
//! | method and path | what it does |
//! | --- | --- |
//! | `GET /health` | `{"ok": true, "domains": [...]}` once serving |
//! | `GET /accounts` | every account with its connected endpoints and roster |
//! | `POST /accounts` | `{"user", "domain", "password"}` creates an account (201; 409 if it exists) |
//! | `DELETE /accounts/{domain}/{user}` | deletes an account and closes its sessions (204; 404) |
//! | `GET /links` | federation links (open first, then recently closed) and their state |
//! | `GET /routes`, `PUT /routes/{domain}`, `DELETE /routes/{domain}` | static routes to remote s2s listeners; `PUT` takes `{"addr": "host:port"}` |
//! | `PUT /rvp/routes/{domain}` | static route to a remote domain's RVP s2s listener, `{"addr": "host:port"}` (204) |
//! | `PUT /sip/routes/{domain}` | static route to a remote domain's SIP server, `{"addr": "host:port[;transport=udp\|tcp]"}` (204) |
//! | `GET /log?since=&remote=&local=&direction=&kind=&wait_ms=` | federation log entries after `since`, filtered; with `wait_ms` the request waits (at most 30 s) until one matches |
//! | `GET /tap?since=&wait_ms=` | the wire tap (see [`crate::tap`]): every server-to-server connection's bytes after chunk `since`, `{"first", "latest", "connections", "chunks"}`; with `wait_ms` the request waits (at most 30 s) until there is one; `protocol=xmpp` (default: pages without a `protocol` field, as before RVP), `rvp`, `sip` or `all` (chunks and connections then carry `"protocol": "rvp"` or `"sip"`) |
//! | `POST /reset` | deletes every account (closing sessions and RVP endpoints, views, subscriptions and ACLs), clears the log and closed links, turns every fault off |
//! | `GET /misbehave`, `PUT /misbehave` | the faults that apply everywhere; `PUT` takes `{"switches": [...]}` and replaces them |
//! | `GET /faults` | every fault that is on, `{"faults": [{"id", "switch", "accounts", "peer"}], "known": [...]}` |
//! | `POST /faults` | `{"switch", "accounts": ["user@domain"], "peer": "domain"}` turns on a scoped fault (201 `{"id"}`; see [`crate::faults`]) |
//! | `DELETE /faults/{id}` | turns it off (204; 404) |
//! | `POST /dialback/key` | `{"originating", "receiving", "stream_id"}`: the XEP-0185 key this server, authoritative for `originating`, would send on that stream, `{"key"}` (404 when it does not host `originating`); how a test plays a peer that dialback must accept |

use std::time::Duration;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::warn;

use crate::core::{AccountError, Address};
use crate::faults::{Fault, Involved, Switch};
use crate::fedlog::{FedDirection, FedKind, FedQuery};
use crate::xmpp::State;

/// Longest a log request may wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Serves the control API until the server shuts down.
pub async fn serve(state: State, listener: TcpListener) {
    let shutdown = state.shutdown.clone();
    let app = router(state);
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        warn!(%error, "control API stopped");
    }
}

/// The control API's routes.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/{domain}/{user}", delete(delete_account))
        .route("/links", get(links))
        .route("/routes", get(list_routes))
        .route(
            "/routes/{domain}",
            axum::routing::put(put_route).delete(delete_route),
        )
        .route("/rvp/routes/{domain}", axum::routing::put(put_rvp_route))
        .route("/sip/routes/{domain}", axum::routing::put(put_sip_route))
        .route("/log", get(log))
        .route("/tap", get(tap))
        .route("/reset", post(reset))
        .route("/misbehave", get(get_misbehave).put(put_misbehave))
        .route("/faults", get(list_faults).post(add_fault))
        .route("/faults/{id}", delete(remove_fault))
        .route("/dialback/key", post(dialback_key))
        .route("/s2s/silence", axum::routing::put(put_silence))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn health(AxumState(state): AxumState<State>) -> Response {
    Json(json!({ "ok": true, "domains": state.config.domains })).into_response()
}

async fn list_accounts(AxumState(state): AxumState<State>) -> Response {
    Json(state.core().account_infos()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    user: String,
    domain: String,
    password: String,
}

async fn create_account(
    AxumState(state): AxumState<State>,
    Json(account): Json<NewAccount>,
) -> Response {
    // Names go through the same JID preparation as logins (RFC 7622).
    let jid = match imfed_xmpp::Jid::new(Some(&account.user), &account.domain, None) {
        Ok(jid) => jid,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid account name: {e}"),
            );
        }
    };
    if account.password.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty password");
    }
    let address = crate::xmpp::address_of(&jid).expect("JID with a localpart");
    let created = state
        .core()
        .create_account(address.clone(), &account.password, rand::random());
    match created {
        Ok(()) => (StatusCode::CREATED, Json(json!({ "jid": jid.to_string() }))).into_response(),
        Err(e @ AccountError::Exists { .. }) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn delete_account(
    AxumState(state): AxumState<State>,
    Path((domain, user)): Path<(String, String)>,
) -> Response {
    let address = Address::new(user, domain);
    let deleted = state.core().delete_account(&address);
    match deleted {
        Ok(endpoints) => {
            state.close_sessions(&address, &endpoints);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn list_routes(AxumState(state): AxumState<State>) -> Response {
    Json(state.routes.read().expect("routes lock").clone()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    addr: String,
}

impl Route {
    /// The address, if it is `HOST:PORT`; else why not.
    fn checked(self) -> Result<String, String> {
        if self
            .addr
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(format!("{:?} is not HOST:PORT", self.addr));
        }
        Ok(self.addr)
    }
}

async fn put_route(
    AxumState(state): AxumState<State>,
    Path(domain): Path<String>,
    Json(route): Json<Route>,
) -> Response {
    match route.checked() {
        Ok(addr) => {
            state
                .routes
                .write()
                .expect("routes lock")
                .insert(domain, addr);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

async fn put_rvp_route(
    AxumState(state): AxumState<State>,
    Path(domain): Path<String>,
    Json(route): Json<Route>,
) -> Response {
    match route.checked() {
        Ok(addr) => {
            state.rvp.set_route(&domain, &addr);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

async fn put_sip_route(
    AxumState(state): AxumState<State>,
    Path(domain): Path<String>,
    Json(route): Json<Route>,
) -> Response {
    match crate::sip::Route::parse(&route.addr) {
        Ok(parsed) => {
            state.sip.set_route(&domain, parsed);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

async fn delete_route(AxumState(state): AxumState<State>, Path(domain): Path<String>) -> Response {
    match state.routes.write().expect("routes lock").remove(&domain) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no route to {domain}")),
    }
}

async fn links(AxumState(state): AxumState<State>) -> Response {
    Json(state.xmpp.links.list()).into_response()
}

// Flat on purpose: serde_urlencoded cannot read numbers inside a flattened struct.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    #[serde(default)]
    since: u64,
    remote: Option<String>,
    local: Option<String>,
    direction: Option<FedDirection>,
    kind: Option<FedKind>,
    wait_ms: Option<u64>,
}

async fn log(AxumState(state): AxumState<State>, Query(params): Query<LogParams>) -> Response {
    let query = FedQuery {
        since: params.since,
        remote: params.remote,
        local: params.local,
        direction: params.direction,
        kind: params.kind,
    };
    let (entries, latest) = match params.wait_ms {
        Some(ms) if ms > 0 => {
            let wait = Duration::from_millis(ms).min(MAX_WAIT);
            state.fedlog.wait(&query, wait).await
        }
        _ => state.fedlog.query(&query),
    };
    Json(json!({ "entries": entries, "latest": latest })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TapParams {
    #[serde(default)]
    since: u64,
    wait_ms: Option<u64>,
    /// `xmpp` (the default, for readers that predate RVP), `rvp`, `sip` or `all`.
    #[serde(default)]
    protocol: crate::tap::TapFilter,
}

async fn tap(AxumState(state): AxumState<State>, Query(params): Query<TapParams>) -> Response {
    if state.faults.on(Switch::TapStalls, Involved::NONE) {
        std::future::pending::<()>().await;
    }
    if state.faults.on(Switch::TapMalformed, Involved::NONE) {
        return "{\"chunks\": [".into_response();
    }
    let page = match params.wait_ms {
        Some(ms) if ms > 0 => {
            let wait = Duration::from_millis(ms).min(MAX_WAIT);
            state
                .tap
                .wait_filtered(params.since, wait, params.protocol)
                .await
        }
        _ => state.tap.read_filtered(params.since, params.protocol),
    };
    Json(page).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    originating: String,
    receiving: String,
    stream_id: String,
}

async fn dialback_key(
    AxumState(state): AxumState<State>,
    Json(request): Json<KeyRequest>,
) -> Response {
    if !state.hosts(&request.originating) {
        return error(
            StatusCode::NOT_FOUND,
            format!("{} is not hosted here", request.originating),
        );
    }
    let key = imfed_xmpp::dialback::key(
        &state.xmpp.dialback_secret,
        &request.receiving,
        &request.originating,
        &request.stream_id,
    );
    Json(json!({ "key": key })).into_response()
}

/// Body of `PUT /s2s/silence`.
#[derive(Debug, Deserialize)]
struct Silence {
    /// Play a dead host on federation (true) or stop (false).
    silent: bool,
}

/// `PUT /s2s/silence`: see [`crate::xmpp::s2s::Links::set_silent`].
async fn put_silence(AxumState(state): AxumState<State>, Json(request): Json<Silence>) -> Response {
    let took = state
        .xmpp
        .links
        .set_silent(request.silent, std::time::Duration::from_secs(5))
        .await;
    Json(json!({ "silent": request.silent, "took_ms": took.as_millis() as u64 })).into_response()
}

async fn reset(AxumState(state): AxumState<State>) -> Response {
    let removed = state.core().clear_accounts();
    for (address, endpoints) in &removed {
        state.close_sessions(address, endpoints);
    }
    *state.rvp.lock() = crate::rvp::Inner::default();
    state.sip.reset();
    state.xmpp.uploads.clear();
    state.fedlog.clear();
    state.xmpp.links.clear_closed();
    state
        .xmpp
        .links
        .set_silent(false, std::time::Duration::ZERO)
        .await;
    state.faults.clear();
    Json(json!({ "accounts_removed": removed.len() })).into_response()
}

async fn get_misbehave(AxumState(state): AxumState<State>) -> Response {
    let on: Vec<&str> = state.faults.global().iter().map(|s| s.name()).collect();
    Json(json!({ "switches": on, "known": known_switches() })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetSwitches {
    switches: Vec<String>,
}

async fn put_misbehave(
    AxumState(state): AxumState<State>,
    Json(body): Json<SetSwitches>,
) -> Response {
    let parsed: Result<Vec<Switch>, String> =
        body.switches.iter().map(|name| name.parse()).collect();
    match parsed {
        Ok(switches) => {
            state.faults.set_global(switches);
            get_misbehave(AxumState(state)).await
        }
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

fn known_switches() -> Vec<&'static str> {
    Switch::ALL.iter().map(|s| s.name()).collect()
}

async fn list_faults(AxumState(state): AxumState<State>) -> Response {
    let faults: Vec<serde_json::Value> = state
        .faults
        .list()
        .into_iter()
        .map(|(id, fault)| {
            let mut value = serde_json::to_value(&fault).unwrap_or_default();
            value["id"] = json!(id);
            value
        })
        .collect();
    Json(json!({ "faults": faults, "known": known_switches() })).into_response()
}

async fn add_fault(AxumState(state): AxumState<State>, body: axum::body::Bytes) -> Response {
    let mut fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{e} (known switches: {})", known_switches().join(", ")),
            );
        }
    };
    // Accounts are compared as the server prepares addresses (RFC 7622).
    let mut accounts = std::collections::BTreeSet::new();
    for account in &fault.accounts {
        match imfed_xmpp::Jid::parse(account) {
            Ok(jid) if jid.local().is_some() && jid.resource().is_none() => {
                accounts.insert(jid.to_string());
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{account:?} is not a bare address user@domain"),
                );
            }
        }
    }
    fault.accounts = accounts;
    let id = state.faults.add(fault);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn remove_fault(AxumState(state): AxumState<State>, Path(id): Path<u64>) -> Response {
    if state.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no fault {id}"))
    }
}
