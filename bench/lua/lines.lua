-- One request per line of a file, each wrk thread cycling over its own
-- disjoint share of the lines, counting answers by status. The file and
-- what a line is come from whichever variable is set:
--   BENCH_AUTH_FILE      "Token base64(user:password)" per line: POST /v1/auth
--                        (S2, S3; one user per thread share, since tessera
--                        reserves a failure per user name before hashing)
--   BENCH_SESSIONS_FILE  "jwt csrf" per line: signed-in GET /v1/status (S9)
--   BENCH_BODIES_FILE    a JSON body per line: POST to BENCH_PATH (S7)
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

local function request_for(line)
  if os.getenv("BENCH_AUTH_FILE") then
    return wrk.format("POST", "/v1/auth",
      { ["Authorization"] = line, ["Content-Type"] = "application/json" }, "{}")
  elseif os.getenv("BENCH_SESSIONS_FILE") then
    local jwt, csrf = line:match("^(%S+)%s+(%S+)$")
    return wrk.format("GET", "/v1/status",
      { ["Authorization"] = "Bearer " .. jwt, ["X-CSRF-Token"] = csrf })
  else
    return wrk.format("POST", os.getenv("BENCH_PATH"),
      { ["Content-Type"] = "application/json" }, line)
  end
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
  local file = os.getenv("BENCH_AUTH_FILE") or os.getenv("BENCH_SESSIONS_FILE")
    or os.getenv("BENCH_BODIES_FILE")
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      reqs[#reqs + 1] = request_for(line)
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
