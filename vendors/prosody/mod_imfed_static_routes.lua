-- mod_imfed_static_routes: static domain -> address routing for s2s (imfed)
--
-- Prosody 0.12.3 finds a remote server only through DNS (SRV, then A/AAAA,
-- via net.resolvers.service), never through /etc/hosts, and its libunbound
-- resolver will not query a nameserver on 127.0.0.0/8. For imfed's loopback
-- federation tests we replace that lookup with a fixed table taken from the
-- global config:
--
--   modules_enabled = { ..., "imfed_static_routes" }
--   imfed_static_routes = {
--       ["ref.test"] = { host = "127.0.0.1", port = 40123 };
--       ["other.test"] = "127.0.0.1:40124";   -- shorthand
--   }
-- host must be an IP literal (a name would send basic.new to DNS).
--
-- Behaviour:
--   * A mapped domain asked for service "xmpp-server" (plain/STARTTLS s2s)
--     resolves to exactly { host, port } - no DNS query at all.
--   * A mapped domain asked for any other service (e.g. "xmpps-server",
--     direct-TLS s2s, tried first when TLS is enabled) resolves to nothing,
--     so Prosody falls through to "xmpp-server".
--   * Any domain that is not in the table FAILS resolution (with the error
--     "not in imfed_static_routes"): public DNS is never touched.
--
-- Loaded as a global module (module:set_global()); it wraps the shared
-- net.resolvers.service.new, which mod_s2s calls for every new outgoing
-- connection (mod_s2s keeps the module table, not the function, so the
-- wrapper applies whatever the load order). The original is restored on unload.

module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";
local nameprep = require "util.encodings".stringprep.nameprep;
local inet_pton = require "util.net".pton;

local original_new = service.new;
local routes = {};

local function load_routes()
	local configured = module:get_option("imfed_static_routes", {});
	local new_routes = {};
	if type(configured) ~= "table" then
		module:log("error", "imfed_static_routes must be a table, got %s", type(configured));
		configured = {};
	end
	for domain, target in pairs(configured) do
		local host, port;
		if type(target) == "table" then
			host, port = target.host or target[1], tonumber(target.port or target[2]);
		elseif type(target) == "string" then -- "HOST:PORT" shorthand
			host, port = target:match("^%[?([^%]]+)%]?:(%d+)$");
			port = tonumber(port);
		end
		local key = type(domain) == "string" and nameprep(domain) or nil;
		if host and not inet_pton(host) then
			-- A host name here would be looked up in DNS by net.resolvers.basic.
			module:log("error", "imfed_static_routes[%s]: host must be an IP literal, got %s",
				tostring(domain), tostring(host));
		elseif key and host and port then
			new_routes[key] = { host = host, port = port };
			module:log("info", "static s2s route: %s -> %s port %d", key, host, port);
		else
			module:log("error", "ignoring bad imfed_static_routes entry for %s", tostring(domain));
		end
	end
	routes = new_routes;
end

local function refused(reason, conn_type, extra)
	local r = manual.new({}, conn_type or "tcp", extra);
	r.last_error = reason;
	return r;
end

local function static_new(hostname, svc, conn_type, extra)
	local key = hostname and nameprep(hostname);
	local route = key and routes[key];
	if not route then
		module:log("warn", "refusing to resolve %s (service %s): not in imfed_static_routes",
			tostring(hostname), tostring(svc));
		return refused("not in imfed_static_routes", conn_type, extra);
	end
	if svc ~= "xmpp-server" then
		module:log("debug", "no %s route for %s (only xmpp-server is mapped)", tostring(svc), key);
		return refused("service " .. tostring(svc) .. " not mapped", conn_type, extra);
	end
	module:log("debug", "resolving %s (%s) statically to %s port %d", key, svc, route.host, route.port);
	-- basic.new with an IP literal builds its target list directly, no DNS.
	return basic.new(route.host, route.port, conn_type or "tcp", extra);
end

load_routes();
service.new = static_new;

module:hook_global("config-reloaded", load_routes);

function module.unload()
	if service.new == static_new then
		service.new = original_new;
	end
end
