-- Signed-in GET /v1/status, each request with the next of many sessions
-- (S12): BENCH_SESSIONS_FILE holds one "jwt csrf" per line; BENCH_OFFSET
-- starts this wrk elsewhere in the list, so that instances behind one load
-- balancer without sticky sessions each see every session, rarely.
local sessions = {}
for line in io.lines(os.getenv("BENCH_SESSIONS_FILE")) do
  local jwt, csrf = line:match("^(%S+) (%S+)$")
  if jwt then sessions[#sessions + 1] = { "Bearer " .. jwt, csrf } end
end
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("start", offset + counter * 7919)
end

local i = nil
request = function()
  if i == nil then i = tonumber(start) or offset end
  i = i + 1
  local s = sessions[(i % #sessions) + 1]
  return wrk.format("GET", "/v1/status", { ["Authorization"] = s[1], ["X-CSRF-Token"] = s[2] })
end
