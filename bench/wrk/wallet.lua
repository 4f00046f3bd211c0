-- GET /api/wallet as a random user (the wallet and its latest 20 transactions).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
local common = require("users")
local users = common.load()

setup = common.setup

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

function request()
  local user = users[math.random(#users)]
  return wrk.format("GET", "/api/wallet", { ["Authorization"] = "Bearer " .. user.token })
end
