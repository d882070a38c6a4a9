-- POST a JSON body built from a random line of $IDS_FILE into $TEMPLATE ("%s" is replaced).
-- With $MAX_REQUESTS_PER_THREAD set, each thread stops after that many responses and
-- writes a file in $DONE_DIR; wrk's main thread sleeps out -d regardless, so the caller
-- sends it SIGINT once every thread is done (a soak of an exact size).
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local template = os.getenv("TEMPLATE")
local path = os.getenv("ENDPOINT")
local headers = {["Content-Type"] = "application/json"}
-- /noop is an admin endpoint: the server's STOREWISE_ADMIN_TOKEN (harmless on the others)
if os.getenv("ADMIN_TOKEN") then headers["Authorization"] = "Bearer " .. os.getenv("ADMIN_TOKEN") end
local limit = tonumber(os.getenv("MAX_REQUESTS_PER_THREAD") or "0")
local done = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
math.randomseed(7)
request = function()
  local body = string.gsub(template, "%%s", ids[math.random(#ids)])
  return wrk.format("POST", path, headers, body)
end
if limit > 0 then
  response = function(status, headers, body)
    done = done + 1
    if done == limit then
      local marker = io.open(os.getenv("DONE_DIR") .. "/thread-" .. tostring(thread_id), "w")
      marker:close()
      wrk.thread:stop()
    end
  end
end
