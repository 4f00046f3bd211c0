-- POST /api/wallet/transfer: a random user sends "0.01" (BENCH_AMOUNT) to a random other user,
-- with a unique Idempotency-Key per request (run, thread, counter, random).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
local common = require("users")
local users = common.load()
local amount = os.getenv("BENCH_AMOUNT") or "0.01"
local run = os.getenv("BENCH_RUN") or "run"
local pause = common.delay_ms()
local counter = 0
local prefix = run

setup = common.setup

function init(args)
  local n = thread_number or 0
  math.randomseed(os.time() * 1000 + n * 7919)
  prefix = run .. "-" .. n .. "-" .. string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  counter = counter + 1
  local i = math.random(#users)
  local j = math.random(#users - 1)
  if j >= i then
    j = j + 1
  end
  local body = '{"recipient_id":"' .. users[j].id .. '","amount":"' .. amount .. '"}'
  return wrk.format("POST", "/api/wallet/transfer", {
    ["Authorization"] = "Bearer " .. users[i].token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. counter .. "-" .. math.random(0, 0x7fffffff),
  }, body)
end

if pause > 0 then
  function delay()
    return pause
  end
end
