//! The registrar (RFC 3261 §10.3; `protocols/sip/PROFILE.md` §2): REGISTER binds contacts to
//! an address-of-record for a granted interval, with Digest (401) first.

use imfed_sip::{NameAddr, Request, Response, Uri};
use tracing::debug;

use super::proxy::{AuthKind, answer, authenticate, local_tag, uri_dest};
use super::transport::Dest;
use super::{Binding, Context, LeaseKey, respond};
use crate::core::Address;
use crate::faults::Switch;
use crate::state::{Shared, State};

/// The interval when neither the Contact nor the request says (§10.2.1.1).
const DEFAULT_EXPIRES: u32 = 3600;

/// Handles a REGISTER for a hosted domain.
pub async fn register(state: &State, request: Request, context: Context) {
    let Ok(to) = request.to() else {
        answer(state, &context, &request, 400, Some("Bad To")).await;
        return;
    };
    let host = to.uri.host.to_ascii_lowercase();
    let Some(user) = to.uri.user.clone().filter(|_| state.sip_hosts(&host)) else {
        answer(
            state,
            &context,
            &request,
            404,
            Some("Not Found (To is not a hosted address-of-record)"),
        )
        .await;
        return;
    };
    let aor = Address::new(user, host);
    if !state.core().exists(&aor) {
        // §10.3 step 3: not a valid address-of-record of the domain.
        answer(state, &context, &request, 404, None).await;
        return;
    }
    if authenticate(state, &request, &context, AuthKind::Registrar, &aor)
        .await
        .is_err()
    {
        return;
    }
    let star = request
        .headers
        .get_all("Contact")
        .iter()
        .any(|value| value.trim() == "*");
    let changes = if star {
        // §10.3 step 6: "*" only with Expires: 0, removing every binding.
        if request.expires() != Some(0) || request.headers.get_all("Contact").len() != 1 {
            answer(
                state,
                &context,
                &request,
                400,
                Some("Contact * needs Expires: 0 and no other Contact"),
            )
            .await;
            return;
        }
        None
    } else {
        let contacts = match request.contacts() {
            Ok(contacts) => contacts,
            Err(error) => {
                let reason = format!("Bad Contact ({error})");
                answer(state, &context, &request, 400, Some(&reason)).await;
                return;
            }
        };
        let mut changes = Vec::new();
        for contact in contacts {
            let expires = contact
                .expires()
                .or(request.expires())
                .unwrap_or(DEFAULT_EXPIRES);
            if expires != 0 && expires < state.config.sip_min_expires {
                let mut response = Response::to(&request, 423, None, Some(&local_tag()));
                response
                    .headers
                    .push("Min-Expires", state.config.sip_min_expires.to_string());
                respond(state, &context, response).await;
                return;
            }
            let Some(dest) = uri_dest(&contact.uri) else {
                answer(
                    state,
                    &context,
                    &request,
                    400,
                    Some("Contact must be a sip URI with an IP address and a udp or tcp transport"),
                )
                .await;
                return;
            };
            changes.push((contact.uri, dest, expires.min(state.config.sip_max_expires)));
        }
        Some(changes)
    };
    let call_id = request.call_id().unwrap_or_default().to_string();
    let cseq = request.cseq().map(|c| c.seq).unwrap_or(0);
    let never_lapse = state.sip_fault(
        Switch::SipRegistrationNeverLapses,
        std::slice::from_ref(&aor),
        None,
    );
    let current = {
        let mut inner = state.sip.lock();
        match changes {
            None => {
                let removed = inner.bindings.remove(&aor).unwrap_or_default();
                for binding in removed {
                    inner
                        .leases
                        .remove(&LeaseKey::Binding(aor.clone(), binding.id));
                }
            }
            Some(changes) => {
                for (contact, dest, expires) in changes {
                    let existing = inner
                        .bindings
                        .get(&aor)
                        .and_then(|list| list.iter().find(|b| same_contact(&b.contact, &contact)))
                        .map(|b| b.id);
                    if let Some(id) = existing {
                        inner.leases.remove(&LeaseKey::Binding(aor.clone(), id));
                        if let Some(list) = inner.bindings.get_mut(&aor) {
                            list.retain(|b| b.id != id);
                        }
                    }
                    if expires == 0 {
                        continue;
                    }
                    let id = inner.fresh();
                    inner
                        .bindings
                        .entry(aor.clone())
                        .or_default()
                        .push(Binding {
                            contact,
                            dest,
                            call_id: call_id.clone(),
                            cseq,
                            expires,
                            id,
                        });
                    if !never_lapse {
                        state.sip_lease(&mut inner, LeaseKey::Binding(aor.clone(), id), expires);
                    }
                }
                inner.bindings.retain(|_, list| !list.is_empty());
            }
        }
        inner.bindings.get(&aor).cloned().unwrap_or_default()
    };
    debug!(%aor, contacts = current.len(), "registered");
    let mut response = Response::to(&request, 200, None, Some(&local_tag()));
    for binding in &current {
        let contact = NameAddr {
            params: vec![("expires".into(), Some(binding.expires.to_string()))],
            ..NameAddr::new(binding.contact.clone())
        };
        response.headers.push("Contact", contact.to_string());
    }
    respond(state, &context, response).await;
}

/// Ends a binding whose interval ran out.
pub fn lapse(state: &State, aor: &Address, id: u64) {
    let mut inner = state.sip.lock();
    if let Some(list) = inner.bindings.get_mut(aor) {
        list.retain(|binding| binding.id != id);
        if list.is_empty() {
            inner.bindings.remove(aor);
        }
        debug!(%aor, id, "registration lapsed");
    }
}

/// §19.1.4 for what a user agent registers: user, host, port and transport.
fn same_contact(a: &Uri, b: &Uri) -> bool {
    a.user == b.user
        && a.host.eq_ignore_ascii_case(&b.host)
        && a.port.unwrap_or(5060) == b.port.unwrap_or(5060)
        && a.transport()
            .unwrap_or("udp")
            .eq_ignore_ascii_case(b.transport().unwrap_or("udp"))
}

impl Shared {
    /// The registered contacts of `aor`, newest last.
    pub fn sip_contacts(&self, aor: &Address) -> Vec<Binding> {
        self.sip
            .lock()
            .bindings
            .get(aor)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `dest` is a registered contact of a hosted user (not another server).
    pub fn sip_is_contact(&self, dest: Dest) -> bool {
        self.sip
            .lock()
            .bindings
            .values()
            .flatten()
            .any(|binding| binding.dest == dest)
    }
}
