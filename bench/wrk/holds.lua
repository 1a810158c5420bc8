-- wrk script: every request is POST /api/holds {"product_id":P,"qty":1},
-- built once per thread in init (wrk then sends the same bytes each time),
-- and every answer's status is checked against the one expected.
--
--   wrk -t2 -c64 -d8s --latency -s bench/wrk/holds.lua http://127.0.0.1:8080 -- PRODUCT EXPECTED
--
-- PRODUCT is the product id (default 1), EXPECTED the status every answer
-- must have (default 201; 409 for the crowd on a sold-out product, 200 for
-- the ceiling server, which answers every request with a constant 200).
-- done() prints one line that bench/wrk's report reads:
--   holds.lua: expected 201, unexpected 0
-- and, when there were any, a line per other status with its count.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local product = tonumber(args[1] or "1")
   expected = tonumber(args[2] or "201")
   if product == nil or expected == nil then
      error("holds.lua: arguments are PRODUCT EXPECTED, two numbers")
   end
   wrk.method = "POST"
   wrk.path = "/api/holds"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = string.format('{"product_id":%d,"qty":1}', product)
   unexpected = 0
   others = {}
end

function response(status, headers, body)
   if status ~= expected then
      unexpected = unexpected + 1
      others[status] = (others[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total, byStatus, want = 0, {}, nil
   for _, t in ipairs(threads) do
      want = t:get("expected")
      total = total + t:get("unexpected")
      for status, n in pairs(t:get("others")) do
         byStatus[status] = (byStatus[status] or 0) + n
      end
   end
   io.write(string.format("holds.lua: expected %d, unexpected %d\n", want, total))
   for status, n in pairs(byStatus) do
      io.write(string.format("holds.lua: status %d: %d\n", status, n))
   end
end
