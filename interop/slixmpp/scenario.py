#!/usr/bin/env python3
"""imfed interop scenario driven by an independent XMPP client (slixmpp).

Two accounts, A and B (same server/domain or two federated ones), run
RFC 6121 basics end to end:

  login            both log in (SASL; STARTTLS per --tls), fetch the roster
                   (making them "interested resources"), send initial presence
  reset            (unless --no-reset) remove leftovers of earlier runs:
                   roster items for the peer / the throwaway JID, and pending
                   subscription requests redelivered at login
  [probe.message]  (--cold-message) A -> B chat before anything else: the first
                   stanza over a fresh s2s link when A and B are on two servers
  roster.set       A adds B (name + group); checks the iq result and the push
  roster.get       A fetches the roster and sees B with that name and group
  roster.remove    A adds then removes a throwaway item; sees the remove push
  subscription.request   A subscribes to B; A's push shows ask=subscribe;
                         B receives the request
  subscription.approve   B approves and subscribes back; A receives both and
                         approves
  subscription.both      both get a push with subscription='both', and a
                         roster get on each side confirms it
  presence.away          B sends show=away + status; A receives them unchanged
  presence.unavailable   B disconnects cleanly; A receives unavailable from B
  messages.reconnect     B logs in again; A sees B available
  messages.a_to_b        A -> B chat with a Unicode body; B receives exactly it
  messages.b_to_a        B replies; A receives exactly it
  logout                 both close their streams cleanly

Output: one line per step, "STEP <name> ok <ms>" or "STEP <name> FAIL <reason>";
stops at the first failure (exit 1). With --json a JSON summary is printed as
the last stdout line. Every wait is bounded by --timeout (default 10 s) and the
whole run by --global-timeout (default 60 s, exit 3; a watchdog hard-exits 15 s
later if even the cleanup hangs). Exit 2: bad arguments.

Example:
  target/interop-venv/bin/python interop/slixmpp/scenario.py \\
      --a-jid alice@pa.test --a-password secret --a-addr 127.0.0.1:41222 \\
      --b-jid bob@pb.test   --b-password secret --b-addr 127.0.0.1:42222 \\
      --tls never --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import time
from typing import Any, Callable

import slixmpp
from slixmpp import JID

UNICODE_BODY = "h\u00e9llo \u2603 \u4f60\u597d"  # "héllo ☃ 你好"
REPLY_BODY = "re: " + UNICODE_BODY
ROSTER_NAME = "Bob (imfed)"
ROSTER_GROUP = "imfed-friends"
AWAY_STATUS = "imfed away \u2615 status"  # "imfed away ☕ status"


class StepFail(Exception):
    pass


def now_ms() -> float:
    return time.monotonic() * 1000.0


# --------------------------------------------------------------------------
# Inbox: everything a client receives, waited on with a predicate + timeout.

class Inbox:
    def __init__(self, owner: "Party", kind: str):
        self.owner = owner
        self.kind = kind
        self.items: list[Any] = []
        self._event = asyncio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self.items.clear()

    def take(self, pred: Callable[[Any], bool]) -> Any | None:
        for i, item in enumerate(self.items):
            if pred(item):
                return self.items.pop(i)
        return None

    async def wait_for(self, pred: Callable[[Any], bool], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            hit = self.take(pred)
            if hit is not None:
                return hit
            if self.owner.lost is not None:
                raise StepFail(f"{self.owner.label} lost its connection ({self.owner.lost}) "
                               f"while waiting for {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "; ".join(short(x) for x in self.items[-4:]) or "nothing"
                raise StepFail(f"timeout {timeout:g}s: {self.owner.label} waiting for {what} "
                               f"(unmatched {self.kind}: {seen})")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except asyncio.TimeoutError:
                pass


def short(stanza: Any) -> str:
    s = str(stanza)
    s = " ".join(s.split())
    return s if len(s) <= 220 else s[:217] + "..."


# --------------------------------------------------------------------------
# One account and its (current) slixmpp client.

class Party:
    def __init__(self, label: str, jid: str, password: str, addr: str, args: argparse.Namespace):
        self.label = label
        self.jid = JID(jid)
        self.bare = self.jid.bare
        self.password = password
        self.host, self.port = parse_addr(addr)
        self.args = args
        self.client: slixmpp.ClientXMPP | None = None
        self.lost: str | None = None
        self.expect_disconnect = False
        self.up = False  # session established and not yet disconnected
        self.lost_event = asyncio.Event()  # set with .lost (unexpected disconnect)
        self.presences = Inbox(self, "presences")
        self.messages = Inbox(self, "messages")
        self.pushes = Inbox(self, "roster pushes")
        self.info: dict[str, Any] = {"jid": jid, "addr": addr}

    # -- connection ---------------------------------------------------------
    def _make_client(self) -> slixmpp.ClientXMPP:
        a = self.args
        # PLAIN/SCRAM over an unencrypted stream are allowed, except with
        # --tls required (then no credentials ever go out in clear text).
        clear_ok = a.tls != "required"
        mech_cfg = {"unencrypted_plain": clear_ok, "unencrypted_scram": clear_ok}
        if a.sasl_mech:
            mech_cfg["use_mech"] = a.sasl_mech
        c = slixmpp.ClientXMPP(str(self.jid), self.password,
                               plugin_config={"feature_mechanisms": mech_cfg})
        # The c2s port speaks plain XMPP (optionally upgraded by STARTTLS):
        # never direct TLS.
        c.enable_direct_tls = False
        c.enable_starttls = a.tls != "never"
        c.enable_plaintext = True
        if a.tls != "never":
            ctx = ssl.create_default_context()
            if a.tls_no_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif a.cafile:
                ctx.load_verify_locations(cafile=a.cafile)
            c.ssl_context = ctx
        # No automatic subscription handling: the scenario does every step.
        c.auto_authorize = None
        c.auto_subscribe = False
        c.add_event_handler("presence", self.presences.put)
        c.add_event_handler("message", self.messages.put)
        c.add_event_handler("message_error", self.messages.put)
        c.add_event_handler("roster_update", self.pushes.put)  # iq-set pushes only
        c.add_event_handler("disconnected", self._on_disconnected)
        c.add_event_handler("stream_error", lambda e: self._note_lost(f"stream error {short(e)}"))
        return c

    def _note_lost(self, why: str) -> None:
        if not self.expect_disconnect and self.lost is None:
            self.lost = why
            self.lost_event.set()
            for box in (self.presences, self.messages, self.pushes):
                box.wake()

    def _on_disconnected(self, reason: Any) -> None:
        self.up = False
        self._note_lost(f"disconnected: {reason}")

    async def login(self, timeout: float) -> None:
        self.lost = None
        self.lost_event.clear()
        self.expect_disconnect = False
        c = self.client = self._make_client()
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def finish(err: str | None) -> None:
            if not done.done():
                if err:
                    done.set_exception(StepFail(f"{self.label} ({self.bare}): {err}"))
                else:
                    done.set_result(True)

        def started(_e: Any) -> None:
            self.up = True
            finish(None)
        c.add_event_handler("session_start", started)
        def auth_failed(_e: Any) -> None:
            tried = sorted(c.plugin["feature_mechanisms"].attempted_mechs)
            if tried:
                finish(f"SASL authentication failed (tried {', '.join(tried)})")
            elif "starttls" not in c.features and self.args.tls == "required":
                finish("server offered no STARTTLS and --tls required forbids "
                       "authenticating in clear text")
            else:
                finish("no usable SASL mechanism offered")
        c.add_event_handler("failed_all_auth", auth_failed)
        c.add_event_handler("connection_failed", lambda e: finish(f"connection failed: {e}"))
        c.add_event_handler("disconnected", lambda e: finish(f"disconnected during login: {e}"))
        c.add_event_handler("stream_error", lambda e: finish(f"stream error: {short(e)}"))

        def negotiated(_e: Any) -> None:
            if not c.authenticated:
                finish("stream features offered no usable authentication "
                       f"(negotiated so far: {sorted(c.features) or 'nothing'}; "
                       "does the server require TLS? see --tls)")
        c.add_event_handler("stream_negotiated", negotiated)
        c.connect(self.host, self.port)
        try:
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            raise StepFail(f"{self.label} ({self.bare}): no session within {timeout:g}s")
        finally:
            if not done.done() or done.cancelled() or done.exception() is not None:
                c.cancel_connection_attempt()  # no auto-reconnect after a failure
                self.expect_disconnect = True
                c.abort()
        encrypted = "starttls" in c.features
        mech = getattr(c.plugin["feature_mechanisms"].mech, "name", None)
        self.info.update({"bound": str(c.boundjid), "starttls": encrypted, "sasl": mech})
        if self.args.tls == "required" and not encrypted:
            raise StepFail(f"{self.label}: stream is not encrypted but --tls required")
        # Roster get first (become an interested resource, RFC 6121 2.1.6),
        # then initial presence, then a second roster get as a barrier: its
        # result arrives after anything the server sent in reply to the
        # initial presence (e.g. redelivered subscription requests).
        await self.roster_get(timeout)
        c.send_presence()
        await self.roster_get(timeout)

    async def logout(self, timeout: float) -> None:
        c = self.client
        if c is None:
            return
        self.expect_disconnect = True
        try:
            await asyncio.wait_for(c.disconnect(wait=min(timeout, 5.0)), timeout)
        except (asyncio.TimeoutError, Exception):
            c.abort()

    # -- stanzas --------------------------------------------------------------
    async def iq(self, iq: Any, timeout: float, what: str) -> Any:
        """Send an iq and wait for its reply, its timeout, or the loss of the
        connection, whichever comes first."""
        if self.lost is not None:
            raise StepFail(f"{self.label} {what}: connection already lost ({self.lost})")
        fut = asyncio.ensure_future(iq.send(timeout=timeout))
        lost = asyncio.ensure_future(self.lost_event.wait())
        try:
            await asyncio.wait({fut, lost}, timeout=timeout + 1.0,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not fut.done():
            fut.cancel()
            if self.lost is not None:
                raise StepFail(f"{self.label} {what}: connection lost ({self.lost})")
            raise StepFail(f"{self.label} {what}: no reply within {timeout:g}s")
        try:
            return fut.result()
        except slixmpp.exceptions.IqError as e:
            raise StepFail(f"{self.label} {what}: error reply {short(e.iq)}")
        except slixmpp.exceptions.IqTimeout:
            raise StepFail(f"{self.label} {what}: no reply within {timeout:g}s")

    async def roster_get(self, timeout: float) -> dict[str, dict]:
        iq = self.client.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        res = await self.iq(iq, timeout, "roster get")
        return {JID(j).bare: dict(v) for j, v in res["roster"]["items"].items()}

    async def roster_set(self, jid: str, timeout: float, **item: Any) -> None:
        iq = self.client.Iq()
        iq["type"] = "set"
        iq["roster"]["items"] = {jid: item}
        await self.iq(iq, timeout, f"roster set {jid} {item}")

    def send_presence(self, **kw: Any) -> None:
        self.client.make_presence(**kw).send()

    def send_message(self, to: str, body: str) -> str:
        msg = self.client.make_message(mto=to, mbody=body, mtype="chat")
        msg["id"] = self.client.new_id()
        msg.send()
        return msg["id"]


def parse_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad address {addr!r} (want HOST:PORT)")
    return host.strip("[]"), int(port)


def push_for(jid: str, **want: Any) -> Callable[[Any], bool]:
    """Predicate on a roster push (iq set) carrying an item for jid."""
    def pred(iq: Any) -> bool:
        for j, item in iq["roster"]["items"].items():
            if JID(j).bare == jid and all(item.get(k) == v for k, v in want.items()):
                return True
        return False
    return pred


def presence_from(jid: str, ptype: str | None = None) -> Callable[[Any], bool]:
    def pred(p: Any) -> bool:
        if p["from"].bare != jid:
            return False
        t = p["type"]
        if ptype == "available":
            return t in ("", "available") or t in ("away", "chat", "dnd", "xa")
        return ptype is None or t == ptype
    return pred


# --------------------------------------------------------------------------

class Scenario:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.T = args.timeout
        self.A = Party("A", args.a_jid, args.a_password, args.a_addr, args)
        self.B = Party("B", args.b_jid, args.b_password, args.b_addr, args)
        self.throwaway = f"imfed-throwaway@{self.A.jid.domain}"
        self.steps: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}

    async def step(self, name: str, coro: Any) -> None:
        t0 = now_ms()
        try:
            await coro
        except StepFail as e:
            self._record(name, False, now_ms() - t0, str(e))
            raise
        except Exception as e:  # a bug or a library error: still one FAIL line
            self._record(name, False, now_ms() - t0, f"{type(e).__name__}: {e}")
            raise StepFail(str(e)) from e
        self._record(name, True, now_ms() - t0)

    def _record(self, name: str, ok: bool, ms: float, reason: str = "") -> None:
        entry: dict[str, Any] = {"name": name, "ok": ok, "ms": round(ms, 1)}
        if ok:
            print(f"STEP {name} ok {ms:.0f}", flush=True)
        else:
            entry["reason"] = reason
            print(f"STEP {name} FAIL {' '.join(reason.split())}", flush=True)
        self.steps.append(entry)

    # -- the steps -------------------------------------------------------------
    async def login(self) -> None:
        await asyncio.gather(self.A.login(self.T), self.B.login(self.T))

    async def reset(self) -> None:
        A, B, T = self.A, self.B, self.T
        done = []
        for me, peer, extra in ((A, B, [self.throwaway]), (B, A, [])):
            roster = await me.roster_get(T)
            for jid in [peer.bare] + extra:
                if jid in roster:
                    await me.roster_set(jid, T, subscription="remove")
                    await me.pushes.wait_for(push_for(jid, subscription="remove"), T,
                                             f"remove push for leftover {jid}")
                    done.append(f"{me.label} removed {jid} ({roster[jid].get('subscription')})")
            # Subscription requests from the peer still pending from an earlier
            # run are redelivered at login: deny them.
            while me.presences.take(presence_from(peer.bare, "subscribe")) is not None:
                me.send_presence(pto=peer.bare, ptype="unsubscribed")
                done.append(f"{me.label} denied a pending subscribe from {peer.bare}")
        # Let the other side see the effects, then start from empty inboxes.
        if done:
            await A.roster_get(T)
            await B.roster_get(T)
            await asyncio.sleep(0.3)
            for me in (A, B):
                roster = await me.roster_get(T)
                other = B.bare if me is A else A.bare
                if other in roster:
                    await me.roster_set(other, T, subscription="remove")
                    done.append(f"{me.label} removed {other} (second pass)")
        for me in (A, B):
            me.presences.clear(); me.messages.clear(); me.pushes.clear()
        self.details["reset"] = done

    async def probe_message(self) -> None:
        A, B, T = self.A, self.B, self.T
        body = "cold link probe " + UNICODE_BODY
        mid = A.send_message(B.bare, body)
        await B.messages.wait_for(
            lambda m: m["from"].bare == A.bare and m["body"] == body, T,
            f"probe message {mid} from {A.bare}")

    async def roster_set(self) -> None:
        A, B, T = self.A, self.B, self.T
        await A.roster_set(B.bare, T, name=ROSTER_NAME, groups=[ROSTER_GROUP])
        push = await A.pushes.wait_for(push_for(B.bare), T, f"roster push for {B.bare}")
        item = next(v for j, v in push["roster"]["items"].items() if JID(j).bare == B.bare)
        if item["name"] != ROSTER_NAME or list(item["groups"]) != [ROSTER_GROUP]:
            raise StepFail(f"push has name={item['name']!r} groups={list(item['groups'])!r}")
        if item["subscription"] not in ("none", ""):
            raise StepFail(f"new item has subscription={item['subscription']!r}, want none")

    async def roster_get(self) -> None:
        A, B, T = self.A, self.B, self.T
        roster = await A.roster_get(T)
        item = roster.get(B.bare)
        if item is None:
            raise StepFail(f"{B.bare} missing from A's roster {sorted(roster)}")
        if item["name"] != ROSTER_NAME or list(item["groups"]) != [ROSTER_GROUP]:
            raise StepFail(f"roster item name={item['name']!r} groups={list(item['groups'])!r}")

    async def roster_remove(self) -> None:
        A, T, jid = self.A, self.T, self.throwaway
        await A.roster_set(jid, T, name="throwaway")
        await A.pushes.wait_for(push_for(jid), T, f"add push for {jid}")
        await A.roster_set(jid, T, subscription="remove")
        await A.pushes.wait_for(push_for(jid, subscription="remove"), T,
                                f"remove push for {jid}")
        roster = await A.roster_get(T)
        if jid in roster:
            raise StepFail(f"{jid} still in the roster after remove: {roster[jid]}")

    async def subscription_request(self) -> None:
        A, B, T = self.A, self.B, self.T
        A.send_presence(pto=B.bare, ptype="subscribe")
        # RFC 6121 3.1.2: the user's server pushes the item with ask='subscribe'.
        await A.pushes.wait_for(push_for(B.bare, ask="subscribe"), T,
                                f"push with ask=subscribe for {B.bare}")
        await B.presences.wait_for(presence_from(A.bare, "subscribe"), T,
                                   f"subscribe from {A.bare}")

    async def subscription_approve(self) -> None:
        A, B, T = self.A, self.B, self.T
        B.send_presence(pto=A.bare, ptype="subscribed")
        B.send_presence(pto=A.bare, ptype="subscribe")
        await A.presences.wait_for(presence_from(B.bare, "subscribed"), T,
                                   f"subscribed from {B.bare}")
        await A.presences.wait_for(presence_from(B.bare, "subscribe"), T,
                                   f"subscribe from {B.bare}")
        A.send_presence(pto=B.bare, ptype="subscribed")
        await B.presences.wait_for(presence_from(A.bare, "subscribed"), T,
                                   f"subscribed from {A.bare}")

    async def subscription_both(self) -> None:
        A, B, T = self.A, self.B, self.T
        await A.pushes.wait_for(push_for(B.bare, subscription="both"), T,
                                f"push with subscription=both for {B.bare}")
        await B.pushes.wait_for(push_for(A.bare, subscription="both"), T,
                                f"push with subscription=both for {A.bare}")
        for me, peer in ((A, B), (B, A)):
            item = (await me.roster_get(T)).get(peer.bare)
            if not item or item["subscription"] != "both" or item.get("ask"):
                raise StepFail(f"{me.label}'s roster item for {peer.bare} is {item}, "
                               "want subscription=both without ask")
        A.info["roster_item_for_b"] = dict((await A.roster_get(T))[B.bare])

    async def presence_away(self) -> None:
        A, B, T = self.A, self.B, self.T
        # Earlier presences of B (e.g. the one sent when A's subscription was
        # approved) do not count.
        while A.presences.take(presence_from(B.bare)) is not None:
            pass
        B.send_presence(pshow="away", pstatus=AWAY_STATUS)
        seen: list[str] = []

        def pred(p: Any) -> bool:
            if not presence_from(B.bare, "available")(p):
                return False
            if p["show"] == "away" and p["status"] == AWAY_STATUS:
                return True
            seen.append(f"show={p['show']!r} status={p['status']!r}")
            return False
        try:
            await A.presences.wait_for(pred, T, f"away presence from {B.bare}")
        except StepFail as e:
            raise StepFail(f"{e}; other presences from B: {seen}")

    async def presence_unavailable(self) -> None:
        A, B, T = self.A, self.B, self.T
        await B.logout(T)
        await A.presences.wait_for(presence_from(B.bare, "unavailable"), T,
                                   f"unavailable from {B.bare}")

    async def messages_reconnect(self) -> None:
        A, B, T = self.A, self.B, self.T
        while A.presences.take(presence_from(B.bare)) is not None:
            pass
        await B.login(T)
        await A.presences.wait_for(presence_from(B.bare, "available"), T,
                                   f"available presence from reconnected {B.bare}")

    async def messages_a_to_b(self) -> None:
        A, B, T = self.A, self.B, self.T
        mid = A.send_message(B.bare, UNICODE_BODY)
        msg = await B.messages.wait_for(lambda m: m["from"].bare == A.bare, T,
                                        f"message from {A.bare}")
        problems = []
        if msg["type"] != "chat":
            problems.append(f"type={msg['type']!r}")
        if msg["body"] != UNICODE_BODY:
            problems.append(f"body={msg['body']!r} want {UNICODE_BODY!r}")
        if msg["id"] != mid:
            problems.append(f"id={msg['id']!r} want {mid!r}")
        if problems:
            raise StepFail("B got " + ", ".join(problems))
        self._last_from_a = msg["from"]

    async def messages_b_to_a(self) -> None:
        A, B, T = self.A, self.B, self.T
        mid = B.send_message(str(self._last_from_a), REPLY_BODY)
        msg = await A.messages.wait_for(lambda m: m["from"].bare == B.bare, T,
                                        f"reply from {B.bare}")
        if msg["type"] != "chat" or msg["body"] != REPLY_BODY or msg["id"] != mid:
            raise StepFail(f"A got type={msg['type']!r} body={msg['body']!r} id={msg['id']!r}")

    async def logout(self) -> None:
        await asyncio.gather(self.A.logout(self.T), self.B.logout(self.T))

    async def run(self) -> None:
        s = self.step
        await s("login", self.login())
        if not self.args.no_reset:
            await s("reset", self.reset())
        if self.args.cold_message:
            await s("probe.message", self.probe_message())
        await s("roster.set", self.roster_set())
        await s("roster.get", self.roster_get())
        await s("roster.remove", self.roster_remove())
        await s("subscription.request", self.subscription_request())
        await s("subscription.approve", self.subscription_approve())
        await s("subscription.both", self.subscription_both())
        await s("presence.away", self.presence_away())
        await s("presence.unavailable", self.presence_unavailable())
        await s("messages.reconnect", self.messages_reconnect())
        await s("messages.a_to_b", self.messages_a_to_b())
        await s("messages.b_to_a", self.messages_b_to_a())
        await s("logout", self.logout())

    async def cleanup(self) -> None:
        """Close whatever is still open, in bounded time (about 1.5 s)."""
        async def close(p: Party) -> None:
            c = p.client
            if c is None:
                return
            p.expect_disconnect = True
            c.cancel_connection_attempt()
            if c.transport is None:
                return
            if not p.up or p.lost is not None:
                c.abort()
                return
            try:
                await asyncio.wait_for(c.disconnect(wait=1.0), 1.5)
            except BaseException:
                c.abort()
        await asyncio.gather(close(self.A), close(self.B), return_exceptions=True)


async def amain(args: argparse.Namespace) -> int:
    sc = Scenario(args)
    t0 = now_ms()
    code = 0
    try:
        await asyncio.wait_for(sc.run(), args.global_timeout)
    except StepFail:
        code = 1
    except asyncio.TimeoutError:
        print(f"STEP global FAIL timeout: scenario exceeded {args.global_timeout:g}s", flush=True)
        sc.steps.append({"name": "global", "ok": False, "ms": round(now_ms() - t0, 1),
                         "reason": f"global timeout {args.global_timeout:g}s"})
        code = 3
    finally:
        await sc.cleanup()
    if args.json:
        summary = {
            "ok": code == 0,
            "exit": code,
            "total_ms": round(now_ms() - t0, 1),
            "client": f"slixmpp {slixmpp.__version__}",
            "tls": args.tls,
            "a": sc.A.info,
            "b": sc.B.info,
            "steps": sc.steps,
            "details": sc.details,
        }
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="RFC 6121 interop scenario (roster, subscription, presence, "
                    "messages) between two accounts, using slixmpp.",
        epilog="TLS: 'never' = plaintext only (STARTTLS ignored); 'optional' = STARTTLS if "
               "offered; 'required' = fail unless STARTTLS was negotiated. SASL PLAIN and "
               "SCRAM are allowed on unencrypted streams.")
    for who in ("a", "b"):
        ap.add_argument(f"--{who}-jid", required=True, help=f"account {who.upper()}: bare JID")
        ap.add_argument(f"--{who}-password", required=True)
        ap.add_argument(f"--{who}-addr", required=True, metavar="HOST:PORT",
                        help=f"c2s address of {who.upper()}'s server")
    ap.add_argument("--tls", choices=("never", "optional", "required"), default="never")
    ap.add_argument("--cafile", help="CA/certificate PEM to trust for STARTTLS")
    ap.add_argument("--tls-no-verify", action="store_true",
                    help="do not verify the server certificate (test certificates)")
    ap.add_argument("--sasl-mech", help="force one SASL mechanism (e.g. PLAIN)")
    ap.add_argument("--timeout", type=float, default=10.0, help="bound on every wait (s)")
    ap.add_argument("--global-timeout", type=float, default=60.0, help="bound on the run (s)")
    ap.add_argument("--no-reset", action="store_true",
                    help="skip removing leftovers of earlier runs")
    ap.add_argument("--cold-message", action="store_true",
                    help="first send one A->B message before the roster steps "
                         "(measures a message over a new s2s link)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary last")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="-v: slixmpp info log on stderr, -vv: debug (stanzas)")
    args = ap.parse_args(argv)
    for who in ("a", "b"):
        try:
            parse_addr(getattr(args, f"{who}_addr"))
            if not JID(getattr(args, f"{who}_jid")).user:
                raise ValueError("the JID needs a local part")
        except Exception as e:  # noqa: BLE001 - report any bad value the same way
            ap.error(f"--{who}-addr/--{who}-jid: {e}")
    if JID(args.a_jid).bare == JID(args.b_jid).bare:
        ap.error("A and B must be different accounts")
    # STEP lines may quote Unicode bodies: never die on a non-UTF-8 stdout.
    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")

    level = {0: logging.CRITICAL, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Last-resort watchdog: even if the event loop wedges, exit in bounded time.
    hard = args.global_timeout + 15.0
    def watchdog() -> None:
        time.sleep(hard)
        print(f"STEP watchdog FAIL hard exit after {hard:g}s", flush=True)
        os._exit(4)
    threading.Thread(target=watchdog, daemon=True).start()

    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
