-- POST a JSON body built from a random line of $IDS_FILE into $TEMPLATE ("%s" is replaced).
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local template = os.getenv("TEMPLATE")
local path = os.getenv("ENDPOINT")
local headers = {["Content-Type"] = "application/json"}
math.randomseed(7)
request = function()
  local body = string.gsub(template, "%%s", ids[math.random(#ids)])
  return wrk.format("POST", path, headers, body)
end
