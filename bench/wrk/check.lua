-- wrk script of bench/run.py: sets the request from arguments and checks every answer.
--
--   [BENCH_UNIQUE_ID=PREFIX] wrk ... -s bench/wrk/check.lua URL -- [method=POST]
--       [header=Name: value]... [body=TEXT] [expect=data|session]
--
-- BENCH_UNIQUE_ID=PREFIX (environment): the body's "__ID__" becomes PREFIX-<thread>-<n>,
--   new for every request (a FC signature does not cover the body, so the signed headers
--   stay valid). It has to be known at load time: wrk decides in its main Lua state,
--   before init(), whether a request() function builds every request anew.
-- expect=data:    a good answer is 2xx, has no x-fc-error-type header and has "data".
-- expect=session: a good answer is 2xx and has "sessionId".
-- The main thread prints, per wrk thread, "BENCH_CHECK good=<n> bad=<n>" and the first bad
-- answer as "BENCH_FIRST_BAD <status> <body prefix>".

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local unique = os.getenv("BENCH_UNIQUE_ID")
if unique == "" then
   unique = nil
end
local unique_prefix = nil
local expect = "data"
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
      elseif key == "expect" then
         expect = value
      else
         error("check.lua: unknown argument " .. arg)
      end
   end
   if unique ~= nil then
      unique_prefix = unique .. "-" .. tostring(tid) .. "-"
   end
end

if unique ~= nil then
   function request()
      counter = counter + 1
      local body = wrk.body:gsub("__ID__", unique_prefix .. counter, 1)
      return wrk.format(nil, nil, nil, body)
   end
end

function response(status, headers, body)
   local ok = status >= 200 and status < 300
   if ok and (headers["x-fc-error-type"] or headers["X-Fc-Error-Type"]) then
      ok = false
   end
   if ok then
      if expect == "session" then
         ok = body:find('"sessionId"', 1, true) ~= nil
      else
         ok = body:find('"data"', 1, true) ~= nil and body:sub(1, 9) ~= '{"error":'
      end
   end
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
