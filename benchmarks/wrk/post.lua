-- POST a JSON body built from a random line of $IDS_FILE into $TEMPLATE ("%s" is replaced).
-- With $MAX_REQUESTS set, each thread stops after its share of that many responses (a soak
-- of an exact size); -d is then only an upper bound.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local template = os.getenv("TEMPLATE")
local path = os.getenv("ENDPOINT")
local headers = {["Content-Type"] = "application/json"}
local limit = tonumber(os.getenv("MAX_REQUESTS_PER_THREAD") or "0")
local done = 0
math.randomseed(7)
request = function()
  local body = string.gsub(template, "%%s", ids[math.random(#ids)])
  return wrk.format("POST", path, headers, body)
end
if limit > 0 then
  response = function(status, headers, body)
    done = done + 1
    if done >= limit then wrk.thread:stop() end
  end
end
