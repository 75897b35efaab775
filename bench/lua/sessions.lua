-- Many sessions (S9): each request uses the next session from
-- BENCH_SESSIONS_FILE ("jwt csrf" per line), each thread its own share, so
-- that every session passes the gate.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs = {}
local i = 0
by_status = {}  -- global: done() reads it with thread:get

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
  local n = 0
  for line in io.lines(os.getenv("BENCH_SESSIONS_FILE")) do
    if n % nthreads == id then
      local jwt, csrf = line:match("^(%S+)%s+(%S+)$")
      reqs[#reqs + 1] = wrk.format("GET", "/v1/status",
        { ["Authorization"] = "Bearer " .. jwt, ["X-CSRF-Token"] = csrf })
    end
    n = n + 1
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  by_status[status] = (by_status[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("by_status")
    for k, v in pairs(s) do total[tostring(k)] = (total[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  io.write(string.format('BENCH_JSON {"duration_us":%d,"by_status":{%s}}\n',
    summary.duration, table.concat(parts, ",")))
end
