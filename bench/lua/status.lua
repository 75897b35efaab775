-- Signed-in GET with one session (S1, S3): the Bearer JWT and the CSRF
-- token come from one sign-in made beforehand (BENCH_JWT, BENCH_CSRF).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_JWT")
wrk.headers["X-CSRF-Token"] = os.getenv("BENCH_CSRF")
