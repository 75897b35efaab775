-- GET with an optional Bearer token (peers: datasette, Directus).
local jwt = os.getenv("BENCH_JWT")
if jwt and jwt ~= "" then wrk.headers["Authorization"] = "Bearer " .. jwt end
