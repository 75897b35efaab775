-- POST with a fixed JSON body (S4 query, S6 post): BENCH_PATH (with
-- ?csrf=...), BENCH_BODY_FILE, and the Bearer JWT in BENCH_JWT.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Content-Type"] = "application/json"
local jwt = os.getenv("BENCH_JWT")
if jwt and jwt ~= "" then wrk.headers["Authorization"] = "Bearer " .. jwt end
