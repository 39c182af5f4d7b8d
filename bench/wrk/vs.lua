-- wrk script of bench/pocketbase.py: the same load for PocketBase and minibase.
--
--   BENCH_PICK=id1,id2,... wrk ... -s bench/wrk/vs.lua URL -- [method=POST]
--       [header=Name: value]... [body=TEXT] [path=PATH] expect=TEXT
--
-- "__PICK__" in the path or body becomes the next id of BENCH_PICK (round robin, from a
-- different start in each thread), so updates spread over a set of documents. An entry
-- "id|content-md5|authorization" also sets those two headers: a signature covering the body
-- (Content-MD5) differs per id, so it is computed beforehand, one per id.
-- A good answer is 2xx, has no x-fc-error-type header (minibase's function errors), does not
-- start with {"error": and contains TEXT. The main thread prints, per wrk thread,
-- "BENCH_CHECK good=<n> bad=<n>" and the first bad answer as "BENCH_FIRST_BAD <status> <body>".

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local picks = {}
for entry in string.gmatch(os.getenv("BENCH_PICK") or "", "[^,]+") do
   local id, md5, auth = entry:match("^([^|]+)|([^|]+)|([^|]+)$")
   if id == nil then
      id = entry
   end
   table.insert(picks, { id = id, md5 = md5, auth = auth })
end
local expect = nil
local path = nil
local counter = 0
good = 0
bad = 0
first_bad = nil

function init(args)
   for _, arg in ipairs(args) do
      local key, value = arg:match("^([%w_]+)=(.*)$")
      if key == "method" then
         wrk.method = value
      elseif key == "header" then
         local name, v = value:match("^([^:]+):%s*(.*)$")
         wrk.headers[name] = v
      elseif key == "body" then
         wrk.body = value
      elseif key == "path" then
         path = value
      elseif key == "expect" then
         expect = value
      else
         error("vs.lua: unknown argument " .. arg)
      end
   end
   if expect == nil then
      error("vs.lua: expect=TEXT is required")
   end
   counter = (tid or 1) * 7
end

if #picks > 0 then
   function request()
      counter = counter + 1
      local pick = picks[counter % #picks + 1]
      local p = (path or wrk.path):gsub("__PICK__", pick.id)
      local body = wrk.body
      if body ~= nil then
         body = body:gsub("__PICK__", pick.id)
      end
      local headers = nil
      if pick.md5 ~= nil then
         headers = {}
         for k, v in pairs(wrk.headers) do
            headers[k] = v
         end
         headers["content-md5"] = pick.md5
         headers["authorization"] = pick.auth
      end
      return wrk.format(nil, p, headers, body)
   end
end

function response(status, headers, body)
   local ok = status >= 200 and status < 300
   if ok and (headers["x-fc-error-type"] or headers["X-Fc-Error-Type"]) then
      ok = false
   end
   ok = ok and body:sub(1, 9) ~= '{"error":' and body:find(expect, 1, true) ~= nil
   if ok then
      good = good + 1
   else
      bad = bad + 1
      if first_bad == nil then
         first_bad = tostring(status) .. " " .. body:sub(1, 300):gsub("[\r\n]", " ")
      end
   end
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("BENCH_CHECK good=%d bad=%d\n", thread:get("good"), thread:get("bad")))
      local fb = thread:get("first_bad")
      if fb ~= nil then
         io.write("BENCH_FIRST_BAD " .. fb .. "\n")
      end
   end
end
