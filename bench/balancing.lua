-- wrk script for bench/balancing.sh: GET / on every connection, counting
-- responses per backend (the X-Backend header) and non-2xx responses.
-- done() prints machine-readable lines, all starting with "BENCH":
--   BENCH requests N          responses received
--   BENCH duration_us N       measured run time
--   BENCH rps X               responses per second
--   BENCH p50_us N            latency percentiles from wrk's histogram (µs)
--   BENCH p99_us N
--   BENCH p999_us N
--   BENCH non2xx N            responses whose status is not 2xx
--   BENCH sockerr N           connect + read + write errors and timeouts
--   BENCH backend NAME N      responses carrying X-Backend: NAME ("-" = none)

wrk.method = "GET"
wrk.path = "/"

-- PACE_MS > 0: each connection waits that long between requests, so the
-- load stays below saturation (an open-loop-like fixed rate) and the tail
-- latency shows the balancing, not CPU queueing.
local pace = tonumber(os.getenv("PACE_MS") or "0") or 0
if pace > 0 then
   function delay()
      return pace
   end
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
counts = {}
non2xx = 0

function response(status, headers, body)
   local b = headers["X-Backend"] or headers["x-backend"] or "-"
   counts[b] = (counts[b] or 0) + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local total = {}
   local bad = 0
   for _, t in ipairs(threads) do
      for name, n in pairs(t:get("counts")) do
         total[name] = (total[name] or 0) + n
      end
      bad = bad + t:get("non2xx")
   end
   local e = summary.errors
   local sockerr = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format("BENCH requests %d\n", summary.requests))
   io.write(string.format("BENCH duration_us %d\n", summary.duration))
   io.write(string.format("BENCH rps %.1f\n", summary.requests / secs))
   io.write(string.format("BENCH p50_us %d\n", latency:percentile(50)))
   io.write(string.format("BENCH p99_us %d\n", latency:percentile(99)))
   io.write(string.format("BENCH p999_us %d\n", latency:percentile(99.9)))
   io.write(string.format("BENCH non2xx %d\n", bad))
   io.write(string.format("BENCH sockerr %d\n", sockerr))
   for name, n in pairs(total) do
      io.write(string.format("BENCH backend %s %d\n", name, n))
   end
end
