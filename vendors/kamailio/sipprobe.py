#!/usr/bin/env python3
"""vendors/kamailio/sipprobe.py: a small SIP user agent (Python 3 standard library only) that
drives two federated SIP servers through protocols/sip/PROFILE.md's flows and records exactly
what they answer. Used by federation-demo.sh against two Kamailio instances.

  sipprobe.py --a-domain ka.test --a-addr 127.0.0.1:25300 \
              --b-domain kb.test --b-addr 127.0.0.1:25310 \
              [--password-of alice=alice-pw ...] [--json OUT.json] [--skip-slow]

Users it expects on the servers (provisioned by the caller): alice, carol, erin on A; bob,
dave, erin on B; password "<user>-pw". erin is never registered (the offline user).
Steps that a conforming server must pass are checks (exit 1 when one fails); everything else
is recorded as an observation (status, reason and the headers that matter).
"""

import argparse
import hashlib
import json
import os
import queue
import random
import re
import socket
import ssl
import string
import sys
import threading
import time

COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
    "v": "via", "o": "event", "u": "allow-events", "r": "refer-to", "x": "session-expires",
}


def rand(n=10):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def now_ms():
    return time.monotonic() * 1000.0


class Msg:
    """A parsed SIP message."""

    def __init__(self, raw: bytes):
        self.raw = raw
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = []  # (lower-case full name, value)
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            name = COMPACT.get(name, name)
            self.headers.append((name, value.strip()))
        self.body = body
        parts = self.start.split(" ", 2)
        self.is_response = parts[0].startswith("SIP/")
        if self.is_response:
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method = None
            self.uri = None
        else:
            self.method = parts[0]
            self.uri = parts[1] if len(parts) > 1 else ""
            self.status = None
            self.reason = None

    def get(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n == name:
                out.append(v)
        return out

    def cseq_method(self):
        c = self.get("cseq") or ""
        return c.split()[-1] if c.split() else ""

    def branch(self):
        v = self.get("via") or ""
        m = re.search(r";\s*branch=([^;, ]+)", v)
        return m.group(1) if m else None

    def tag(self, hdr):
        v = self.get(hdr) or ""
        m = re.search(r";\s*tag=([^;, >]+)", v)
        return m.group(1) if m else None

    def summary(self, keep=()):
        d = {"start": self.start}
        for k in keep:
            vals = self.all(k)
            if vals:
                d[k] = vals if len(vals) > 1 else vals[0]
        if self.body:
            d["body"] = self.body.decode("utf-8", "replace")
        return d


def split_stream(buf: bytearray):
    """Take complete SIP messages off a TCP byte buffer (Content-Length framing)."""
    out = []
    while True:
        while buf[:2] == b"\r\n":
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out
        head = bytes(buf[:end]).decode("utf-8", "replace")
        m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        clen = int(m.group(1)) if m else 0
        total = end + 4 + clen
        if len(buf) < total:
            return out
        out.append(bytes(buf[:total]))
        del buf[:total]


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def parse_challenge(value):
    params = {}
    for m in re.finditer(r'(\w+)=("([^"]*)"|[^,\s]+)', value):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


class UA:
    """One user agent: user@domain, registered at its home server over udp or tcp."""

    def __init__(self, user, domain, password, server, transport, log, cafile=None):
        self.user, self.domain, self.password = user, domain, password
        self.server = server  # (host, port)
        self.transport = transport
        self.log = log
        self.aor = f"sip:{user}@{domain}"
        self.waiters = {}  # branch -> Queue of responses
        self.requests = queue.Queue()  # requests received (auto-answered)
        self.lock = threading.Lock()
        self.cseq = random.randint(1, 1000)
        self.auto_reply = {"MESSAGE": 200, "NOTIFY": 200, "OPTIONS": 200, "INVITE": 486}
        self.closed = False
        self.tcp_closed = threading.Event()
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            threading.Thread(target=self._udp_loop, daemon=True).start()
        else:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", 0))
            self.listener.listen(16)
            self.port = self.listener.getsockname()[1]
            self.conn = socket.create_connection(server, timeout=5)
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport == "tls":
                # verifies the chain against cafile and the server's name (= its domain)
                ctx = ssl.create_default_context(cafile=cafile)
                self.conn = ctx.wrap_socket(self.conn, server_hostname=domain)
                cert = self.conn.getpeercert()
                self.tls_info = {"version": self.conn.version(),
                                 "cipher": self.conn.cipher()[0],
                                 "subject": dict(x[0] for x in cert.get("subject", ())),
                                 "subjectAltName": cert.get("subjectAltName")}
            self.conn.settimeout(None)
            self.local = self.conn.getsockname()
            threading.Thread(target=self._tcp_reader, args=(self.conn, True), daemon=True).start()
            threading.Thread(target=self._accept_loop, daemon=True).start()
        self.contact = f"<sip:{user}@127.0.0.1:{self.port};transport={transport}>"

    # ---- transport
    def _udp_loop(self):
        while not self.closed:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            if data.strip() == b"":
                continue
            self._dispatch(Msg(data), lambda b, a=addr: self.sock.sendto(b, a))

    def _accept_loop(self):
        while not self.closed:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._tcp_reader, args=(c, False), daemon=True).start()

    def _tcp_reader(self, conn, is_main):
        buf = bytearray()
        while not self.closed:
            try:
                data = conn.recv(65535)
            except OSError:
                data = b""
            if not data:
                if is_main:
                    self.tcp_closed.set()
                return
            buf += data
            for raw in split_stream(buf):
                self._dispatch(Msg(raw), conn.sendall)

    def send_raw(self, data: bytes):
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.conn.sendall(data)

    def _dispatch(self, msg, reply):
        if msg.is_response:
            with self.lock:
                q = self.waiters.get(msg.branch())
            if q:
                q.put((now_ms(), msg))
            return
        msg.received_ms = now_ms()
        code = self.auto_reply.get(msg.method, 200 if msg.method != "ACK" else None)
        if code is not None:
            reason = {200: "OK", 486: "Busy Here"}.get(code, "OK")
            reply(self.response_to(msg, code, reason))
        if msg.method != "ACK":
            self.requests.put(msg)

    def response_to(self, req, code, reason):
        lines = [f"SIP/2.0 {code} {reason}"]
        for v in req.all("via"):
            lines.append(f"Via: {v}")
        for n in ("record-route",):
            for v in req.all(n):
                lines.append(f"Record-Route: {v}")
        lines.append(f"From: {req.get('from')}")
        to = req.get("to") or ""
        if ";tag=" not in to:
            to += ";tag=" + rand(8)
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.get('call-id')}")
        lines.append(f"CSeq: {req.get('cseq')}")
        if req.method in ("NOTIFY", "SUBSCRIBE", "INVITE"):
            lines.append(f"Contact: {self.contact}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    # ---- requests
    def build(self, method, uri, headers=(), body=b"", call_id=None, from_tag=None,
              to_tag=None, to_uri=None, cseq=None, routes=(), branch=None, max_forwards=70):
        branch = branch or "z9hG4bK" + rand(12)
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        via_host = f"127.0.0.1:{self.port}" if self.transport == "udp" else \
            f"{self.local[0]}:{self.local[1]}"
        to_uri = to_uri or uri
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/{self.transport.upper()} {via_host};branch={branch};rport"]
        if max_forwards is not None:
            lines.append(f"Max-Forwards: {max_forwards}")
        for r in routes:
            lines.append(f"Route: {r}")
        lines.append(f"From: <{self.aor}>;tag={from_tag or rand(8)}")
        lines.append(f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""))
        lines.append(f"Call-ID: {call_id or rand(16) + '@imfed-probe'}")
        lines.append(f"CSeq: {cseq} {method}")
        lines.append(f"Contact: {self.contact}")
        lines.append("User-Agent: imfed-sipprobe")
        lines.extend(headers)
        if isinstance(body, str):
            body = body.encode()
        lines.append(f"Content-Length: {len(body)}")
        return branch, ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def transact(self, data, branch, timeout=10.0):
        """Send a built request, return (final response, [provisional], elapsed ms)."""
        q = queue.Queue()
        with self.lock:
            self.waiters[branch] = q
        t0 = now_ms()
        self.send_raw(data)
        deadline = time.monotonic() + timeout
        retrans = 0.5
        next_retrans = time.monotonic() + retrans
        prov = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, prov, now_ms() - t0
                wait = min(left, max(0.0, next_retrans - time.monotonic())) \
                    if self.transport == "udp" else left
                try:
                    t, resp = q.get(timeout=max(wait, 0.01))
                except queue.Empty:
                    if self.transport == "udp" and time.monotonic() >= next_retrans:
                        self.send_raw(data)  # Timer E
                        retrans = min(retrans * 2, 4.0)
                        next_retrans = time.monotonic() + retrans
                    continue
                if resp.status < 200:
                    prov.append(resp)
                    next_retrans = deadline  # no more retransmissions after a 1xx
                    continue
                return resp, prov, t - t0
        finally:
            with self.lock:
                self.waiters.pop(branch, None)

    def request(self, method, uri, headers=(), body=b"", auth=True, timeout=10.0, **kw):
        """A request with digest handling: returns (final, challenge or None, elapsed ms)."""
        call_id = kw.pop("call_id", None) or rand(16) + "@imfed-probe"
        from_tag = kw.pop("from_tag", None) or rand(8)
        branch, data = self.build(method, uri, headers, body, call_id=call_id,
                                  from_tag=from_tag, **kw)
        resp, _, ms = self.transact(data, branch, timeout)
        challenge = None
        if auth and resp is not None and resp.status in (401, 407):
            challenge = resp
            hname = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            aname = "Authorization" if resp.status == 401 else "Proxy-Authorization"
            ch = parse_challenge(resp.get(hname) or "")
            realm, nonce = ch.get("realm", ""), ch.get("nonce", "")
            ha1 = md5(f"{self.user}:{realm}:{self.password}")
            ha2 = md5(f"{method}:{uri}")
            cred = f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
            if "auth" in (ch.get("qop") or "").split(","):
                cnonce, nc = rand(8), "00000001"
                r = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
                cred += f', qop=auth, nc={nc}, cnonce="{cnonce}", response="{r}"'
            else:
                cred += f', response="{md5(f"{ha1}:{nonce}:{ha2}")}"'
            cred += ", algorithm=MD5"
            if ch.get("opaque"):
                cred += f', opaque="{ch["opaque"]}"'
            kw.pop("cseq", None)
            branch, data = self.build(method, uri, list(headers) + [f"{aname}: {cred}"], body,
                                      call_id=call_id, from_tag=from_tag, **kw)
            resp, _, ms2 = self.transact(data, branch, timeout)
            ms += ms2
        if resp is not None:
            resp.call_id, resp.from_tag = call_id, from_tag
        return resp, challenge, ms

    def register(self, expires=3600):
        return self.request("REGISTER", f"sip:{self.domain}", to_uri=self.aor,
                            headers=[f"Expires: {expires}"])

    def wait_request(self, method, timeout=5.0, match=None):
        deadline = time.monotonic() + timeout
        stash = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    m = self.requests.get(timeout=left)
                except queue.Empty:
                    return None
                if m.method == method and (match is None or match(m)):
                    return m
                stash.append(m)
        finally:
            for m in stash:
                self.requests.put(m)

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.requests.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        self.closed = True
        for s in ("sock", "conn", "listener"):
            if hasattr(self, s):
                try:
                    getattr(self, s).close()
                except OSError:
                    pass


class Dialog:
    """A subscription dialog seen from the subscriber (RFC 3261 §12.1.2)."""

    def __init__(self, ua, resp, request_uri):
        self.ua = ua
        self.call_id = resp.call_id
        self.from_tag = resp.from_tag
        self.to_tag = resp.tag("to")
        rr = []
        for v in resp.all("record-route"):
            rr.extend(x.strip() for x in v.split(","))
        self.routes = list(reversed(rr))
        m = re.search(r"<([^>]+)>", resp.get("contact") or "")
        self.target = m.group(1) if m else request_uri
        self.to_uri = request_uri

    def request(self, method, headers=(), body=b"", timeout=10.0):
        return self.ua.request(method, self.target, headers, body, call_id=self.call_id,
                               from_tag=self.from_tag, to_tag=self.to_tag, to_uri=self.to_uri,
                               routes=self.routes, timeout=timeout)


def pidf(entity, basic, note=None, tuple_id=None, activity=None):
    tuple_id = tuple_id or "t" + rand(6)
    note_xml = f"<note>{note}</note>" if note else ""
    person = ""
    if activity:
        person = (f'<dm:person id="p1"><rpid:activities><rpid:{activity}/></rpid:activities>'
                  f"</dm:person>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            f'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            f'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{entity}">'
            f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>{note_xml}</tuple>'
            f"{person}</presence>")


def raw_exchange(addr, data, transport, wait=0.6):
    """Send raw bytes; collect what comes back within `wait` s (and, over TCP, whether the
    server closed the connection)."""
    out = {"responses": [], "closed": False}
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        data = data.replace(b"@PORT@", str(s.getsockname()[1]).encode())
        s.sendto(data, addr)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                d, _ = s.recvfrom(65535)
                out["responses"].append(Msg(d).summary(("via", "warning", "content-length")))
                end = min(end, time.monotonic() + 0.1)  # a second answer would follow at once
            except socket.timeout:
                pass
        s.close()
        return out
    s = socket.create_connection(addr, timeout=2)
    data = data.replace(b"@PORT@", str(s.getsockname()[1]).encode())
    s.settimeout(0.2)
    s.sendall(data)
    buf = bytearray()
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            d = s.recv(65535)
        except socket.timeout:
            continue
        except OSError:
            out["closed"] = True
            break
        if not d:
            out["closed"] = True
            break
        buf += d
        for raw in split_stream(buf):
            out["responses"].append(Msg(raw).summary(("via", "warning", "content-length")))
    if buf:
        out["unparsed"] = bytes(buf).decode("utf-8", "replace")
    s.close()
    return out


# --------------------------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.results = []
        self.failures = 0

    def record(self, step, request, resp, expect=None, keep=(), extra=None, ms=None):
        d = {"step": step, "request": request}
        if resp is None:
            d["answer"] = "(no final response)"
        elif isinstance(resp, Msg):
            d["answer"] = f"{resp.status} {resp.reason}" if resp.is_response else resp.start
            d["detail"] = resp.summary(keep)
        else:
            d["answer"] = resp
        if ms is not None:
            d["ms"] = round(ms, 1)
        if extra:
            d.update(extra)
        ok = True
        if expect is not None:
            got = resp.status if isinstance(resp, Msg) and resp.is_response else None
            ok = got in (expect if isinstance(expect, (tuple, list)) else (expect,))
            d["check"] = "pass" if ok else f"FAIL (expected {expect})"
            if not ok:
                self.failures += 1
        self.results.append(d)
        mark = "" if expect is None else ("  ok" if ok else "  FAIL")
        print(f"{step:<44} {request:<60} -> {d['answer']}{mark}", flush=True)
        return d

    def note(self, step, text, check=None):
        d = {"step": step, "note": text}
        if check is not None:
            d["check"] = "pass" if check else "FAIL"
            if not check:
                self.failures += 1
        self.results.append(d)
        mark = "" if check is None else ("  ok" if check else "  FAIL")
        print(f"{step:<44} {text}{mark}", flush=True)


def sub_state(m):
    return m.get("subscription-state") if m is not None else None


def basics(m):
    if m is None or not m.body:
        return []
    return re.findall(r"<(?:\w+:)?basic>\s*(\w+)\s*</", m.body.decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a-domain", required=True)
    ap.add_argument("--a-addr", required=True)
    ap.add_argument("--b-domain", required=True)
    ap.add_argument("--b-addr", required=True)
    ap.add_argument("--unrouted-domain", default="nowhere.invalid")
    ap.add_argument("--dead-domain", help="a routed domain whose server is down (TCP)")
    ap.add_argument("--black-domain", help="a routed domain whose server never answers (UDP)")
    ap.add_argument("--a-tls", help="A's TLS listener: also a user agent over TLS there")
    ap.add_argument("--cafile", help="the CA that A's TLS certificate chains to")
    ap.add_argument("--json")
    ap.add_argument("--skip-slow", action="store_true", help="skip the lease-expiry steps")
    args = ap.parse_args()

    def addr(s):
        h, p = s.rsplit(":", 1)
        return (h, int(p))

    A, B = addr(args.a_addr), addr(args.b_addr)
    da, db = args.a_domain, args.b_domain
    run = Run(args)
    uas = []

    def ua(user, domain, server, transport):
        u = UA(user, domain, f"{user}-pw", server, transport, run)
        uas.append(u)
        return u

    alice = ua("alice", da, A, "udp")
    carol = ua("carol", da, A, "tcp")
    bob = ua("bob", db, B, "tcp")
    dave = ua("dave", db, B, "udp")
    keep_reg = ("contact", "expires", "www-authenticate", "proxy-authenticate", "server")

    try:
        # ---- §2 registration
        r, ch, ms = alice.register()
        run.record("REGISTER (no credentials) UDP", f"REGISTER sip:{da} alice", ch,
                   expect=401, keep=keep_reg)
        run.record("REGISTER (digest) UDP", f"REGISTER sip:{da} alice Expires: 3600", r,
                   expect=200, keep=keep_reg, ms=ms)
        r, ch, ms = bob.register(7200)
        run.record("REGISTER (no credentials) TCP", f"REGISTER sip:{db} bob", ch, expect=401,
                   keep=keep_reg)
        run.record("REGISTER (digest) TCP, Expires 7200", f"REGISTER sip:{db} bob Expires: 7200",
                   r, expect=200, keep=keep_reg, ms=ms)
        r, _, _ = carol.register()
        run.record("REGISTER (digest) TCP carol", f"REGISTER sip:{da} carol", r, expect=200)
        r, _, _ = dave.register()
        run.record("REGISTER (digest) UDP dave", f"REGISTER sip:{db} dave", r, expect=200)
        # a wrong password
        mallory = UA("alice", da, "wrong", A, "udp", run)
        uas.append(mallory)
        r, ch, _ = mallory.register()
        run.record("REGISTER with a wrong password", f"REGISTER sip:{da} alice (bad pw)", r,
                   keep=keep_reg)
        stranger = UA("nosuch", da, "x", A, "udp", run)
        uas.append(stranger)
        r, ch, _ = stranger.register()
        run.record("REGISTER for a user not provisioned", f"REGISTER sip:{da} nosuch", r,
                   keep=keep_reg)
        r, _, _ = alice.register(0)
        run.record("REGISTER Expires: 0 (logout)", f"REGISTER sip:{da} alice Expires: 0", r,
                   keep=keep_reg)
        r, _, _ = alice.register(3600)
        run.record("REGISTER again", f"REGISTER sip:{da} alice", r, expect=200, keep=("contact",))

        # ---- TLS (not in PROFILE.md yet): a user agent over TLS at A
        if args.a_tls:
            try:
                frank = ua_tls = UA("carol", da, "carol-pw", addr(args.a_tls), "tls", run,
                                    cafile=args.cafile)
                uas.append(frank)
                run.note("TLS connection to A", json.dumps(ua_tls.tls_info), check=True)
                r, _, ms = ua_tls.request("OPTIONS", f"sip:{da}", auth=False, to_uri=f"sip:{da}")
                run.record("OPTIONS over TLS", f"OPTIONS sip:{da} (TLS)", r, expect=200, ms=ms)
                r, ch, ms = ua_tls.register(60)
                run.record("REGISTER over TLS (digest)", f"REGISTER sip:{da} carol (TLS)", r,
                           expect=200, keep=("contact",), ms=ms)
                r, _, _ = ua_tls.register(0)
            except (OSError, ssl.SSLError) as e:
                run.note("TLS connection to A", f"failed: {e}", check=False)

        # ---- §8 liveness
        r, _, ms = alice.request("OPTIONS", f"sip:{da}", auth=False, to_uri=f"sip:{da}")
        run.record("OPTIONS to the server", f"OPTIONS sip:{da}", r, expect=200,
                   keep=("allow", "accept", "accept-encoding", "accept-language", "supported",
                         "server"), ms=ms)

        # ---- §6 messages
        text_plain = ["Content-Type: text/plain;charset=UTF-8"]
        r, ch, ms = alice.request("MESSAGE", bob.aor, text_plain, "hello bob")
        run.record("MESSAGE A->B (challenge)", f"MESSAGE {bob.aor} from alice", ch, expect=407,
                   keep=("proxy-authenticate",))
        got = bob.wait_request("MESSAGE", 3)
        run.record("MESSAGE A->B", f"MESSAGE {bob.aor} from alice (alice UDP, bob TCP)", r,
                   expect=200, ms=ms)
        run.note("  bob received", (got.start + " | Via count " + str(len(got.all("via")))
                 + " | Max-Forwards " + str(got.get("max-forwards"))
                 + " | body " + got.body.decode()) if got else "nothing", check=got is not None)
        r, _, ms = bob.request("MESSAGE", alice.aor, text_plain + ["Subject: hi"], "hello alice")
        got = alice.wait_request("MESSAGE", 3)
        run.record("MESSAGE B->A", f"MESSAGE {alice.aor} from bob (bob TCP, alice UDP)", r,
                   expect=200, ms=ms)
        run.note("  alice received", (got.start + " | Subject " + str(got.get("subject")))
                 if got else "nothing", check=got is not None)
        r, _, ms = alice.request("MESSAGE", carol.aor, text_plain, "same domain")
        got = carol.wait_request("MESSAGE", 3)
        run.record("MESSAGE same domain (UDP->TCP)", f"MESSAGE {carol.aor} from alice", r,
                   expect=200, ms=ms)
        run.note("  carol received", got.start if got else "nothing", check=got is not None)
        times = []
        for i in range(20):
            r, _, ms = alice.request("MESSAGE", bob.aor, text_plain, f"m{i}")
            if r is not None and r.status == 200:
                times.append(ms)
        bob.drain()
        if times:
            times.sort()
            run.note("MESSAGE A->B x20 (with 407 round)",
                     f"200 x{len(times)}, median {times[len(times) // 2]:.1f} ms, "
                     f"max {times[-1]:.1f} ms (two requests each: 407 then 200)",
                     check=len(times) == 20)

        # ---- §7 errors
        r, _, _ = alice.request("MESSAGE", f"sip:nosuch@{db}", text_plain, "x")
        run.record("MESSAGE to an unknown user", f"MESSAGE sip:nosuch@{db}", r, expect=404)
        r, _, _ = alice.request("MESSAGE", f"sip:erin@{db}", text_plain, "x")
        run.record("MESSAGE to an offline user", f"MESSAGE sip:erin@{db}", r, expect=480)
        r, _, _ = alice.request("MESSAGE", f"sip:erin@{da}", text_plain, "x")
        run.record("MESSAGE to an offline local user", f"MESSAGE sip:erin@{da}", r, expect=480)
        r, _, _ = alice.request("MESSAGE", f"sip:x@{args.unrouted_domain}", text_plain, "x")
        run.record("MESSAGE to an unrouted domain", f"MESSAGE sip:x@{args.unrouted_domain}", r,
                   expect=604)
        r, _, _ = alice.request("MESSAGE", f"sip:{db}", text_plain, "x")
        run.record("MESSAGE to a domain (no user part)", f"MESSAGE sip:{db}", r)
        r, _, _ = alice.request("MESSAGE", bob.aor, text_plain, "x", max_forwards=0)
        run.record("MESSAGE Max-Forwards: 0 (to forward)", f"MESSAGE {bob.aor} Max-Forwards: 0",
                   r, expect=483)
        r, _, _ = alice.request("MESSAGE", bob.aor, text_plain, "x", max_forwards=1)
        got = bob.wait_request("MESSAGE", 2)
        run.record("MESSAGE Max-Forwards: 1 (two proxies)", f"MESSAGE {bob.aor} Max-Forwards: 1",
                   r)
        r, _, _ = alice.request("OPTIONS", f"sip:{da}", auth=False, to_uri=f"sip:{da}",
                                max_forwards=0)
        run.record("OPTIONS Max-Forwards: 0 to the server", f"OPTIONS sip:{da} Max-Forwards: 0",
                   r)
        r, _, _ = alice.request("MESSAGE", bob.aor, text_plain, "x", max_forwards=None)
        got = bob.wait_request("MESSAGE", 2)
        run.record("MESSAGE without Max-Forwards", f"MESSAGE {bob.aor} (no Max-Forwards)", r,
                   expect=200)
        run.note("  bob received Max-Forwards", str(got.get("max-forwards")) if got else "nothing")
        big = "x" * 33000
        r, _, _ = carol.request("MESSAGE", bob.aor, text_plain, big)
        run.record("MESSAGE body 33000 bytes A->B (TCP)", f"MESSAGE {bob.aor} 33000-byte body", r,
                   expect=413, keep=("via",))
        r, _, _ = carol.request("MESSAGE", f"sip:alice@{da}", text_plain, big)
        run.record("MESSAGE body 33000 bytes same domain", f"MESSAGE sip:alice@{da} 33000 bytes", r,
                   expect=413)
        r, _, _ = carol.request("MESSAGE", bob.aor, text_plain, "y" * 32768)
        bob.wait_request("MESSAGE", 2)
        run.record("MESSAGE body 32768 bytes (TCP)", f"MESSAGE {bob.aor} 32768-byte body", r,
                   expect=200)
        # an oversized MESSAGE from another domain's server (the limit at the recipient's side)
        r, _, _ = bob.request("MESSAGE", carol.aor, text_plain, big)
        run.record("MESSAGE 33000 bytes B->A (TCP)", f"MESSAGE {carol.aor} 33000-byte body", r,
                   expect=413)
        # relaying for strangers
        zed = UA("zed", "other.test", "x", A, "udp", run)
        uas.append(zed)
        r, _, _ = zed.request("MESSAGE", bob.aor, text_plain, "relay?")
        run.record("MESSAGE from a foreign user to a foreign domain",
                   f"MESSAGE {bob.aor} From zed@other.test via {da}", r)
        if args.dead_domain:
            r, _, ms = alice.request("MESSAGE", f"sip:x@{args.dead_domain}", text_plain, "x",
                                     timeout=40)
            run.record("MESSAGE to a routed domain, server down (TCP)",
                       f"MESSAGE sip:x@{args.dead_domain}", r, ms=ms, keep=("warning",))
        if args.black_domain:
            r, _, ms = alice.request("MESSAGE", f"sip:x@{args.black_domain}", text_plain, "x",
                                     timeout=40)
            run.record("MESSAGE to a routed domain that never answers (UDP)",
                       f"MESSAGE sip:x@{args.black_domain}", r, ms=ms)

        # ---- §9 bad input (raw)
        def raw_req(method="MESSAGE", uri=f"sip:bob@{db}", drop=(), extra=(), body=b"hi",
                    clen=None, cseq_method=None, proto="UDP"):
            hdrs = [("Via", f"SIP/2.0/{proto} 127.0.0.1:@PORT@;branch=z9hG4bK{rand()};rport"),
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:zed@{da}>;tag={rand(6)}"),
                    ("To", f"<{uri}>"), ("Call-ID", rand(12) + "@raw"),
                    ("CSeq", f"1 {cseq_method or method}"),
                    ("Content-Type", "text/plain")]
            lines = [f"{method} {uri} SIP/2.0"]
            for n, v in hdrs:
                if n not in drop:
                    lines.append(f"{n}: {v}")
            lines.extend(extra)
            if clen != "omit":
                lines.append(f"Content-Length: {len(body) if clen is None else clen}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

        def raw(step, data, transport="udp", target=B):
            out = raw_exchange(target, data, transport)
            ans = "; ".join(x["start"] for x in out["responses"]) or "(no response)"
            if transport == "tcp":
                ans += " [connection closed]" if out["closed"] else " [connection kept open]"
            d = run.record(step, data.split(b"\r\n", 1)[0].decode("utf-8", "replace")[:58], ans)
            d["responses"] = out["responses"]
            if "unparsed" in out:
                d["unparsed"] = out["unparsed"]
            return out

        raw("garbage start line (UDP)", b"HELLO WORLD\r\n\r\n")
        raw("garbage start line (TCP)", b"HELLO WORLD\r\nContent-Length: 0\r\n\r\n", "tcp")
        raw("request missing Call-ID (UDP)", raw_req(drop=("Call-ID",)))
        raw("request missing Call-ID (TCP)", raw_req(drop=("Call-ID",), proto="TCP"), "tcp")
        raw("request missing From (UDP)", raw_req(drop=("From",)))
        raw("request missing To (UDP)", raw_req(drop=("To",)))
        raw("request missing CSeq (UDP)", raw_req(drop=("CSeq",)))
        raw("request missing Via (UDP)", raw_req(drop=("Via",)))
        raw("CSeq method differs from the method (UDP)", raw_req(cseq_method="INFO"))
        raw("Content-Length larger than the datagram", raw_req(clen=50))
        raw("Content-Length shorter than the body (UDP)", raw_req(body=b"hello there", clen=3))
        raw("Content-Length not a number (UDP)", raw_req(extra=(), clen="abc"))
        raw("no Content-Length over TCP", raw_req(clen="omit", body=b"", proto="TCP"), "tcp")
        raw("Content-Length not a number (TCP)", raw_req(clen="abc", body=b"", proto="TCP"),
            "tcp")
        raw("Request-URI scheme mailto: (UDP)", raw_req(uri="mailto:bob@kb.test"))
        raw("SIP/3.0 request (UDP)", raw_req().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
        raw("Proxy-Require: foo (UDP)", raw_req(extra=("Proxy-Require: foo",)))
        raw("Expires: abc (UDP)", raw_req(extra=("Expires: abc",)))
        raw("unknown method FOO to a user (UDP)", raw_req(method="FOO"))
        raw("From with a bad URI (UDP)",
            raw_req().replace(f"<sip:zed@{da}>".encode(), b"<sip:zed@@@>", 1))
        raw("200 header lines (UDP)", raw_req(extra=tuple(f"X-H{i}: v" for i in range(200))))
        raw("a 70 KB request (TCP)", raw_req(body=b"z" * 70000, proto="TCP"), "tcp")

        # ---- §3 presence: publishing and §4 subscriptions
        pidf_ct = ["Event: presence", "Content-Type: application/pidf+xml"]
        keep_sub = ("expires", "contact", "record-route", "subscription-state", "event",
                    "content-type", "allow-events", "to")
        keep_pub = ("sip-etag", "expires", "min-expires")

        # subscribe to a presentity with no publication (cross-domain, UDP watcher, TCP presentity)
        r, ch, ms = alice.request("SUBSCRIBE", bob.aor,
                                  ["Event: presence", "Accept: application/pidf+xml",
                                   "Expires: 600"], to_uri=bob.aor)
        run.record("SUBSCRIBE A->B (challenge)", f"SUBSCRIBE {bob.aor}", ch, expect=407)
        run.record("SUBSCRIBE A->B, no publication yet", f"SUBSCRIBE {bob.aor} Expires: 600", r,
                   expect=(200, 202), keep=keep_sub, ms=ms)
        dlg = Dialog(alice, r, bob.aor) if r is not None and r.status < 300 else None
        n = alice.wait_request("NOTIFY", 3)
        run.record("  initial NOTIFY (no publication)", "(NOTIFY to alice)", n or "(none)",
                   keep=keep_sub + ("via", "max-forwards", "route"))
        if dlg:
            run.note("  dialog route set", f"routes={dlg.routes} target={dlg.target}")

        # PUBLISH open
        r, ch, ms = bob.request("PUBLISH", bob.aor, pidf_ct + ["Expires: 3600"],
                                pidf(bob.aor, "open", "at my desk"), to_uri=bob.aor)
        run.record("PUBLISH (challenge)", f"PUBLISH {bob.aor}", ch, expect=407)
        run.record("PUBLISH open", f"PUBLISH {bob.aor} open Expires: 3600", r, expect=200,
                   keep=keep_pub, ms=ms)
        etag1 = r.get("sip-etag") if r is not None else None
        n = alice.wait_request("NOTIFY", 3)
        run.record("  NOTIFY after PUBLISH open", "(NOTIFY to alice)", n or "(none)",
                   keep=("subscription-state", "content-type"))
        run.note("  NOTIFY basic", str(basics(n)), check=basics(n) == ["open"])

        # refresh with SIP-If-Match, no body
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence", f"SIP-If-Match: {etag1}",
                                                   "Expires: 1800"], to_uri=bob.aor)
        run.record("PUBLISH refresh (SIP-If-Match, no body)",
                   f"PUBLISH SIP-If-Match: {etag1} Expires: 1800", r, expect=200, keep=keep_pub)
        etag2 = r.get("sip-etag") if r is not None else None
        n = alice.wait_request("NOTIFY", 1.5)
        run.record("  NOTIFY after a refresh", "(NOTIFY to alice, if any)", n or "(none)",
                   keep=("subscription-state", "content-type", "content-length"))
        # modify: closed
        r, _, _ = bob.request("PUBLISH", bob.aor, pidf_ct + [f"SIP-If-Match: {etag2}",
                                                            "Expires: 3600"],
                              pidf(bob.aor, "closed", "gone"), to_uri=bob.aor)
        run.record("PUBLISH modify closed (SIP-If-Match)", f"PUBLISH SIP-If-Match: {etag2} closed",
                   r, expect=200, keep=keep_pub)
        etag3 = r.get("sip-etag") if r is not None else None
        n = alice.wait_request("NOTIFY", 3)
        run.record("  NOTIFY after PUBLISH closed", "(NOTIFY to alice)", n or "(none)",
                   keep=("subscription-state",))
        run.note("  NOTIFY basic", str(basics(n)), check=basics(n) == ["closed"])
        # unknown etag
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence", "SIP-If-Match: nosuchtag",
                                                   "Expires: 60"], to_uri=bob.aor)
        run.record("PUBLISH unknown SIP-If-Match", "PUBLISH SIP-If-Match: nosuchtag", r,
                   expect=412)
        # a stale entity-tag (the one the refresh replaced) and an unknown one shaped like
        # Kamailio's own
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence", f"SIP-If-Match: {etag1}",
                                                   "Expires: 60"], to_uri=bob.aor)
        run.record("PUBLISH stale SIP-If-Match (replaced)", f"PUBLISH SIP-If-Match: {etag1}", r,
                   expect=412, keep=keep_pub)
        if r is not None and r.status == 200:
            etag3 = r.get("sip-etag")
            alice.wait_request("NOTIFY", 1)
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence",
                                                   "SIP-If-Match: a.1.1.99.0", "Expires: 60"],
                              to_uri=bob.aor)
        run.record("PUBLISH unknown SIP-If-Match a.1.1.99.0", "PUBLISH SIP-If-Match: a.1.1.99.0",
                   r, expect=412, keep=keep_pub)
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence",
                                                   "SIP-If-Match: nosuchtag", "Expires: 0"],
                              to_uri=bob.aor)
        run.record("PUBLISH unknown SIP-If-Match, Expires 0", "PUBLISH SIP-If-Match: nosuchtag "
                   "Expires: 0", r, expect=412)
        # bad event
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: foo", "Content-Type: text/plain",
                                                   "Expires: 60"], "x", to_uri=bob.aor)
        run.record("PUBLISH Event: foo", "PUBLISH Event: foo", r, expect=489,
                   keep=("allow-events",))
        # PUBLISH without Event
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Content-Type: application/pidf+xml",
                                                   "Expires: 60"], pidf(bob.aor, "open"),
                              to_uri=bob.aor)
        run.record("PUBLISH without Event", "PUBLISH (no Event header)", r)
        # publishing someone else's presence
        r, _, _ = dave.request("PUBLISH", bob.aor, pidf_ct + ["Expires: 60"],
                               pidf(bob.aor, "open"), to_uri=bob.aor)
        run.record("PUBLISH for another user's AOR", f"PUBLISH {bob.aor} from dave", r,
                   expect=403)
        # a second publication (a second device): composition
        r, _, _ = bob.request("PUBLISH", bob.aor, pidf_ct + ["Expires: 3600"],
                              pidf(bob.aor, "open", "on my phone", activity="away"),
                              to_uri=bob.aor)
        run.record("PUBLISH second publication open+away", f"PUBLISH {bob.aor} (no If-Match)", r,
                   expect=200, keep=keep_pub)
        etag_b = r.get("sip-etag") if r is not None else None
        n = alice.wait_request("NOTIFY", 3)
        run.record("  NOTIFY with two publications", "(NOTIFY to alice)", n or "(none)",
                   keep=("subscription-state", "content-type"))
        run.note("  composed basics", str(basics(n)))
        # remove the second publication
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence", f"SIP-If-Match: {etag_b}",
                                                   "Expires: 0"], to_uri=bob.aor)
        run.record("PUBLISH remove (Expires: 0)", f"PUBLISH SIP-If-Match: {etag_b} Expires: 0", r,
                   expect=200, keep=keep_pub)
        n = alice.wait_request("NOTIFY", 3)
        run.record("  NOTIFY after removal", "(NOTIFY to alice)", n or "(none)",
                   keep=("subscription-state",))
        run.note("  basics after removal", str(basics(n)))
        # publish open again for the re-subscribe check
        r, _, _ = bob.request("PUBLISH", bob.aor, pidf_ct + [f"SIP-If-Match: {etag3}",
                                                            "Expires: 3600"],
                              pidf(bob.aor, "open", "back"), to_uri=bob.aor)
        run.record("PUBLISH modify open again", f"PUBLISH SIP-If-Match: {etag3} open", r,
                   expect=200)
        etag4 = r.get("sip-etag") if r is not None else None
        alice.wait_request("NOTIFY", 3)

        # in-dialog re-SUBSCRIBE and un-SUBSCRIBE
        if dlg:
            r, _, ms = dlg.request("SUBSCRIBE", ["Event: presence",
                                                 "Accept: application/pidf+xml", "Expires: 300"])
            run.record("re-SUBSCRIBE in dialog", f"SUBSCRIBE {dlg.target} Expires: 300", r,
                       expect=(200, 202), keep=keep_sub, ms=ms)
            n = alice.wait_request("NOTIFY", 3)
            run.record("  NOTIFY after re-SUBSCRIBE", "(NOTIFY to alice)", n or "(none)",
                       keep=("subscription-state",))
            run.note("  basic", str(basics(n)))
            r, _, _ = dlg.request("SUBSCRIBE", ["Event: presence", "Expires: 7200"])
            run.record("re-SUBSCRIBE Expires: 7200", "SUBSCRIBE Expires: 7200", r,
                       expect=(200, 202), keep=("expires",))
            alice.wait_request("NOTIFY", 3)
            r, _, ms = dlg.request("SUBSCRIBE", ["Event: presence", "Expires: 0"])
            run.record("un-SUBSCRIBE (Expires: 0)", "SUBSCRIBE Expires: 0", r, expect=(200, 202),
                       keep=keep_sub, ms=ms)
            n = alice.wait_request("NOTIFY", 3)
            run.record("  final NOTIFY", "(NOTIFY to alice)", n or "(none)",
                       keep=("subscription-state", "content-type"))
            st = sub_state(n) or ""
            run.note("  final Subscription-State", st, check=st.startswith("terminated"))
            r, _, _ = dlg.request("SUBSCRIBE", ["Event: presence", "Expires: 60"])
            run.record("SUBSCRIBE in a terminated dialog", "SUBSCRIBE (dialog gone)", r,
                       expect=481)

        # SUBSCRIBE to a presentity with a publication (TCP watcher carol -> bob)
        r, _, ms = carol.request("SUBSCRIBE", bob.aor, ["Event: presence",
                                                        "Accept: application/pidf+xml",
                                                        "Expires: 7200"], to_uri=bob.aor)
        run.record("SUBSCRIBE TCP watcher, Expires 7200", f"SUBSCRIBE {bob.aor} (carol, TCP)", r,
                   expect=(200, 202), keep=keep_sub, ms=ms)
        n = carol.wait_request("NOTIFY", 3)
        run.record("  initial NOTIFY (published open)", "(NOTIFY to carol)", n or "(none)",
                   keep=("subscription-state", "contact", "via"))
        run.note("  basic", str(basics(n)), check=basics(n) == ["open"])
        dlg_c = Dialog(carol, r, bob.aor) if r is not None and r.status < 300 else None
        if dlg_c:
            run.note("  dialog route set", f"routes={dlg_c.routes} target={dlg_c.target}")

        # same-domain subscribe and an unknown user / event
        r, _, _ = dave.request("SUBSCRIBE", bob.aor, ["Event: presence", "Expires: 60"],
                               to_uri=bob.aor)
        run.record("SUBSCRIBE same domain", f"SUBSCRIBE {bob.aor} (dave)", r, expect=(200, 202))
        dave.wait_request("NOTIFY", 3)
        r, _, _ = alice.request("SUBSCRIBE", f"sip:nosuch@{db}", ["Event: presence",
                                                                  "Expires: 60"],
                                to_uri=f"sip:nosuch@{db}")
        run.record("SUBSCRIBE to an unknown user", f"SUBSCRIBE sip:nosuch@{db}", r, expect=404)
        r, _, _ = alice.request("SUBSCRIBE", bob.aor, ["Event: foo", "Expires: 60"],
                                to_uri=bob.aor)
        run.record("SUBSCRIBE Event: foo", "SUBSCRIBE Event: foo", r, expect=489,
                   keep=("allow-events",))
        r, _, _ = alice.request("SUBSCRIBE", bob.aor, ["Event: presence.winfo", "Expires: 60"],
                                to_uri=bob.aor)
        run.record("SUBSCRIBE Event: presence.winfo", "SUBSCRIBE Event: presence.winfo", r)
        r, _, _ = alice.request("SUBSCRIBE", bob.aor, ["Event: presence", "Expires: 0"],
                                to_uri=bob.aor)
        n = alice.wait_request("NOTIFY", 2)
        run.record("SUBSCRIBE Expires: 0 out of dialog (fetch)", f"SUBSCRIBE {bob.aor} Expires: 0",
                   r, keep=("expires",))
        run.note("  fetch NOTIFY", "none" if n is None else
                 f"{sub_state(n)} basic={basics(n)}")
        r, _, _ = alice.request("SUBSCRIBE", f"sip:bob@{da}", ["Event: presence", "Expires: 60"],
                                to_uri=f"sip:bob@{da}")
        run.record("SUBSCRIBE to a local AOR that is not a user", f"SUBSCRIBE sip:bob@{da}", r,
                   expect=404)
        r, _, _ = alice.request("SUBSCRIBE", f"sip:erin@{db}", ["Event: presence",
                                                                "Expires: 60"],
                                to_uri=f"sip:erin@{db}")
        run.record("SUBSCRIBE to an offline user", f"SUBSCRIBE sip:erin@{db}", r,
                   expect=(200, 202))
        n = alice.wait_request("NOTIFY", 3)
        run.note("  its NOTIFY", "none" if n is None else
                 f"{sub_state(n)} basic={basics(n)} body={len(n.body)} bytes")

        # ---- leases (short): registration, publication, subscription expiry
        if not args.skip_slow:
            r, _, _ = dave.register(2)
            run.record("REGISTER Expires: 2", f"REGISTER sip:{db} dave Expires: 2", r, expect=200,
                       keep=("contact",))
            r, _, _ = dave.register(0)
            r, _, _ = dave.register(1)
            run.record("REGISTER Expires: 1 (registrar min_expires 1)",
                       f"REGISTER sip:{db} dave Expires: 1", r, keep=("contact",))
            time.sleep(2.5)
            r, _, _ = alice.request("MESSAGE", dave.aor, text_plain, "after lapse")
            run.record("MESSAGE after the registration lapsed", f"MESSAGE {dave.aor}", r,
                       expect=480)
            # subscription lapse with NOTIFY terminated
            r, _, _ = alice.request("SUBSCRIBE", bob.aor, ["Event: presence", "Expires: 2"],
                                    to_uri=bob.aor)
            run.record("SUBSCRIBE Expires: 2", f"SUBSCRIBE {bob.aor} Expires: 2", r,
                       expect=(200, 202), keep=("expires",))
            t0 = now_ms()
            alice.wait_request("NOTIFY", 3)
            n = alice.wait_request("NOTIFY", 10,
                                   match=lambda m: "terminated" in (sub_state(m) or ""))
            run.record("  NOTIFY when the subscription lapses", "(NOTIFY to alice)",
                       n or "(none in 10 s)", keep=("subscription-state",),
                       extra={"after_ms": round(now_ms() - t0)}, expect=None)
            run.note("  lapse NOTIFY", "none" if n is None else
                     f"{sub_state(n)} {round(now_ms() - t0)} ms after the 200",
                     check=n is not None)
            # publication lapse: carol watches bob; bob publishes a 2 s second publication
            carol.drain()
            r, _, _ = bob.request("PUBLISH", bob.aor, pidf_ct + ["Expires: 2"],
                                  pidf(bob.aor, "open", "short", activity="busy"),
                                  to_uri=bob.aor)
            run.record("PUBLISH Expires: 2", f"PUBLISH {bob.aor} Expires: 2", r, expect=200,
                       keep=keep_pub)
            t0 = now_ms()
            carol.wait_request("NOTIFY", 3)
            n = carol.wait_request("NOTIFY", 10)
            run.record("  NOTIFY when the publication lapses", "(NOTIFY to carol)",
                       n or "(none in 10 s)", keep=("subscription-state",),
                       extra={"after_ms": round(now_ms() - t0)})
            run.note("  lapse NOTIFY", "none" if n is None else
                     f"{round(now_ms() - t0)} ms after the 200", check=n is not None)
            run.note("  basics after lapse", str(basics(n)))

        # sign off (PROFILE §3): closed, then the removal of the publication, then the logout;
        # carol (TCP, through both servers) still watches
        carol.drain()
        r, _, _ = bob.request("PUBLISH", bob.aor, pidf_ct + [f"SIP-If-Match: {etag4}",
                                                            "Expires: 3600"],
                              pidf(bob.aor, "closed", "signing off"), to_uri=bob.aor)
        run.record("PUBLISH closed (sign-off)", f"PUBLISH SIP-If-Match: {etag4} closed", r,
                   expect=200, keep=keep_pub)
        etag5 = r.get("sip-etag") if r is not None else None
        n = carol.wait_request("NOTIFY", 3)
        run.note("  carol's NOTIFY", "none" if n is None else f"{sub_state(n)} basic={basics(n)}",
                 check=basics(n) == ["closed"])
        r, _, _ = bob.request("PUBLISH", bob.aor, ["Event: presence", f"SIP-If-Match: {etag5}",
                                                   "Expires: 0"], to_uri=bob.aor)
        run.record("PUBLISH remove the only publication", "PUBLISH Expires: 0", r, expect=200,
                   keep=keep_pub)
        n = carol.wait_request("NOTIFY", 3)
        run.record("  NOTIFY after removing the only publication", "(NOTIFY to carol)",
                   n or "(none)", keep=("subscription-state", "content-type", "content-length"))
        if dlg_c:
            r, _, _ = dlg_c.request("SUBSCRIBE", ["Event: presence", "Expires: 0"])
            run.record("un-SUBSCRIBE over TCP", "SUBSCRIBE Expires: 0 (carol)", r,
                       expect=(200, 202))
            n = carol.wait_request("NOTIFY", 3,
                                   match=lambda m: "terminated" in (sub_state(m) or ""))
            run.note("  final NOTIFY", "none" if n is None else
                     f"{sub_state(n)} body={len(n.body)} bytes",
                     check=n is not None and "terminated" in sub_state(n))
        r, _, _ = bob.register(0)
        run.record("REGISTER Expires: 0 (logout) TCP", f"REGISTER sip:{db} bob Expires: 0", r,
                   expect=200, keep=("contact",))
        r, _, _ = alice.request("MESSAGE", bob.aor, text_plain, "x")
        run.record("MESSAGE after logout", f"MESSAGE {bob.aor}", r, expect=480)
    finally:
        for u in uas:
            u.close()

    print(f"\n{len([r for r in run.results if r.get('check') == 'pass'])} checks passed, "
          f"{run.failures} failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run.results, f, indent=1)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
