-- mod_imfed_mutant_trust_dialback: a DELIBERATELY BROKEN Prosody, for imfed's tests only.
--
-- A vendor mutant: it answers every inbound <db:result/> request with type='valid' at once,
-- without asking the authoritative server of the claimed domain (XEP-0220 §2.2.1 broken:
-- "Before the Receiving Server allows the Initiating Server to send stanzas from the Sender
-- Domain ... it MUST verify the identity of the Initiating Server"), so any peer can speak
-- for any domain. harness/tests/fixtures/prosody-trusting-dialback.yaml loads it, and the
-- test a_vendor_that_skips_dialback_verification_fails_the_security_pack shows that the
-- s2s-security pack catches it. Never load it on a server anyone uses.
--
-- It runs before mod_dialback's handler (priority 100) and takes the event; answers
-- (db:result with a type) are left to mod_dialback.

local st = require "util.stanza";
local nameprep = require "util.encodings".stringprep.nameprep;

module:hook("stanza/jabber:server:dialback:result", function(event)
	local origin, stanza = event.origin, event.stanza;
	if (origin.type ~= "s2sin_unauthed" and origin.type ~= "s2sin") or stanza.attr.type then
		return;
	end
	local to = stanza.attr.to and nameprep(stanza.attr.to);
	local from = stanza.attr.from and nameprep(stanza.attr.from);
	if not to or not from or not prosody.hosts[to] then
		return;
	end
	origin.log("warn", "imfed mutant: accepting %s without dialback verification", from);
	origin.hosts[from] = { dialback_key = stanza[1] };
	origin.from_host = origin.from_host or from;
	origin.to_host = origin.to_host or to;
	module:fire_event("s2s-authenticated", { session = origin, host = from, mechanism = "dialback" });
	origin.sends2s(st.stanza("db:result", { from = to, to = from, type = "valid" }));
	return true;
end, 100);
