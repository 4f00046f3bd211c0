-- Shared by the bench scripts: the users file (BENCH_USERS, one "<user id> <bearer token>" per
-- line) and a per-thread random seed. wrk runs each script in one Lua state per thread.
local M = {}

function M.load()
  local users = {}
  for line in io.lines(os.getenv("BENCH_USERS")) do
    local id, token = line:match("^(%S+)%s+(%S+)$")
    if id then
      users[#users + 1] = { id = id, token = token }
    end
  end
  assert(#users >= 2, "the bench needs at least two users")
  return users
end

-- setup() runs in the main state once per thread: give every thread its own number.
local made = 0
function M.setup(thread)
  made = made + 1
  thread:set("thread_number", made)
end

-- Throttle (BENCH_DELAY_MS per request and connection) only when asked, so unthrottled runs
-- keep wrk's fast path.
function M.delay_ms()
  return tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
end

return M
