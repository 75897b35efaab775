-- POST with a fixed JSON body (S4/S5 query, S6 post): BENCH_PATH (/v1/api),
-- BENCH_BODY_FILE, the Bearer JWT in BENCH_JWT and the session's CSRF token
-- in BENCH_CSRF (sent as X-CSRF-Token; or put ?csrf=... in BENCH_PATH);
-- BENCH_ACCEPT_ENCODING, when set, is sent as Accept-Encoding (S11).
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Content-Type"] = "application/json"
local jwt = os.getenv("BENCH_JWT")
if jwt and jwt ~= "" then wrk.headers["Authorization"] = "Bearer " .. jwt end
local csrf = os.getenv("BENCH_CSRF")
if csrf and csrf ~= "" then wrk.headers["X-CSRF-Token"] = csrf end
local accept = os.getenv("BENCH_ACCEPT_ENCODING")
if accept and accept ~= "" then wrk.headers["Accept-Encoding"] = accept end
