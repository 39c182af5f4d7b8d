-- wrk script of bench/load.py: many users, a mix of db calls, every answer checked.
--
--   LOAD_USERS=users.txt LOAD_OUT=out.txt LOAD_SEED=N wrk ... -s bench/wrk/load.lua URL/invoke/db
--
-- users.txt: one line per user, "sid uid name first-todo-id". Each request is a db call of
-- the next user (round robin, each thread from its own start) with "Authorization: Bearer
-- sid", its operation drawn from the mix below. wrk does not say which request an answer
-- belongs to, so an answer is checked by its shape: a todo (one, or a page of them) must be
-- the caller's kind (uid of a known user) with n == _version - 1 (every update adds 1 to
-- both), a page of todos is in n-descending order, a public post carries "by". Every todo
-- and post an answer showed is recorded with the highest version seen: bench/load.py reads
-- them all back afterwards (a write acknowledged, or a state observed, must not be lost).
-- A failed answer is clean when it is a 5xx with the error envelope (code, message,
-- requestId). done() writes everything to LOAD_OUT.

local users = {}
local by_uid = {}
for line in io.lines(os.getenv("LOAD_USERS")) do
   local sid, uid, name, first = line:match("^(%S+) (%S+) (%S+) (%S+)$")
   local u = { sid = sid, uid = uid, name = name, todos = { first }, auth = "Bearer " .. sid }
   table.insert(users, u)
   by_uid[uid] = u
end

-- (operation, weight): 70 % reads, 30 % writes, as the Python driver's MIX.
local mix = {
   { "get", 30 }, { "query", 20 }, { "posts", 15 }, { "count", 5 },
   { "insert", 12 }, { "update", 10 }, { "post", 5 }, { "batch", 3 },
}
local total_weight = 0
for _, m in ipairs(mix) do
   total_weight = total_weight + m[2]
end

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local next_user = 0
local seq = 0
sent = {}
ok = 0
bad = 0
todos = {} -- id -> "uid version"
posts = {} -- id -> uid
ok_by_sec = {} -- epoch second -> successes
errors = {} -- "sec status clean key" (the first 2000)
error_count = 0
first_bad = {}

function init(args)
   math.randomseed(tonumber(os.getenv("LOAD_SEED") or "1") + tid * 7919)
   next_user = (tid * 37) % #users
   for _, m in ipairs(mix) do
      sent[m[1]] = 0
   end
end

local function pick_op()
   local r = math.random(total_weight)
   for _, m in ipairs(mix) do
      r = r - m[2]
      if r <= 0 then
         return m[1]
      end
   end
end

local function new_id(u)
   seq = seq + 1
   return u.name .. "-w" .. tid .. "-" .. seq
end

local function event(op, u)
   if op == "get" then
      return '{"op":"get","collection":"todo_list","id":"' .. u.todos[math.random(#u.todos)] .. '"}'
   elseif op == "query" then
      return '{"op":"query","collection":"todo_list","orderBy":[["n","desc"]],"limit":20}'
   elseif op == "posts" then
      return '{"op":"query","collection":"posts","orderBy":[["n","desc"]],"limit":20}'
   elseif op == "count" then
      return '{"op":"count","collection":"todo_list"}'
   elseif op == "insert" then
      return '{"op":"insert","collection":"todo_list","obj":{"id":"' .. new_id(u) .. '","n":0,"title":"load"}}'
   elseif op == "update" then
      return '{"op":"update","collection":"todo_list","id":"' .. u.todos[math.random(#u.todos)]
         .. '","inc":{"n":1}}'
   elseif op == "post" then
      return '{"op":"insert","collection":"posts","obj":{"id":"' .. new_id(u) .. '","by":"' .. u.name
         .. '","n":' .. math.random(0, 999) .. ',"text":"hello"}}'
   end
   return '{"op":"batch","collection":"todo_list","ops":[{"op":"insert","obj":{"id":"' .. new_id(u)
      .. '","n":0,"title":"batch"}},{"op":"insert","obj":{"id":"' .. new_id(u) .. '","n":0,"title":"batch"}}]}'
end

function request()
   next_user = next_user % #users + 1
   local u = users[next_user]
   local op = pick_op()
   sent[op] = sent[op] + 1
   local headers = { ["Authorization"] = u.auth, ["Content-Type"] = "application/json" }
   return wrk.format("POST", nil, headers, event(op, u))
end

-- One document object (flat: no nested objects in what this load writes).
local function check_doc(doc)
   local id = doc:match('"id":%s*"([^"]*)"')
   local uid = doc:match('"uid":%s*"([^"]*)"')
   if id == nil or uid == nil or by_uid[uid] == nil then
      return "a document without a known owner: " .. doc:sub(1, 200), nil
   end
   if doc:find('"by":%s*"') then -- a public post
      posts[id] = uid
      return nil, nil
   end
   local version = tonumber(doc:match('"_version":%s*(%d+)'))
   local n = tonumber(doc:match('"n":%s*(%-?%d+)'))
   if version == nil or n ~= version - 1 then
      return "n is not _version - 1: " .. doc:sub(1, 200), nil
   end
   local known = todos[id]
   if known == nil then
      table.insert(by_uid[uid].todos, id) -- now safe to read or update
      todos[id] = uid .. " " .. version
   elseif tonumber(known:match(" (%d+)$")) < version then
      todos[id] = uid .. " " .. version
   end
   return nil, n
end

local function check(body)
   if body:match('^{"data":%s*{') then
      local err = check_doc(body)
      return err
   elseif body:match('^{"data":%s*%[') then
      local last = nil
      local owner = nil
      local page = body:match('^{"data":%s*(%b[])')
      if page == nil then
         return "unexpected answer: " .. body:sub(1, 200)
      end
      for doc in page:gmatch("{[^{}]*}") do
         local err, n = check_doc(doc)
         if err ~= nil then
            return err
         end
         if n ~= nil then -- a todo page: one owner, n descending
            local uid = doc:match('"uid":%s*"([^"]*)"')
            if owner ~= nil and uid ~= owner then
               return "a page of todos of several owners"
            end
            owner = uid
            if last ~= nil and n > last then
               return "a page not in the order asked for"
            end
            last = n
         end
      end
      return nil
   elseif body:match('^{"data":%s*%d+%s*[,}]') then
      return nil
   end
   return "unexpected answer: " .. body:sub(1, 200)
end

function response(status, headers, body)
   local now = os.time()
   local err = nil
   if status == 200 then
      err = check(body)
      if err == nil then
         ok = ok + 1
         ok_by_sec[now] = (ok_by_sec[now] or 0) + 1
         return
      end
   end
   bad = bad + 1
   error_count = error_count + 1
   local code = body:match('^{"error":{"code":"([%w]+)"') or ""
   local clean = status >= 500 and code ~= "" and body:find('"message":"', 1, true) ~= nil
      and body:find('"requestId":"', 1, true) ~= nil
   local key = err ~= nil and "bad-200" or (tostring(status) .. (code ~= "" and ("-" .. code) or ""))
   if #errors < 2000 then
      table.insert(errors, now .. " " .. status .. " " .. (clean and "1" or "0") .. " " .. key)
   end
   if #first_bad < 5 then
      table.insert(first_bad, status .. " " .. (err or body:sub(1, 200)):gsub("[\r\n]", " "))
   end
end

function done(summary, latency, requests)
   local out = assert(io.open(os.getenv("LOAD_OUT"), "w"))
   for _, thread in ipairs(threads) do
      out:write("S ", thread:get("ok"), " ", thread:get("bad"), " ", thread:get("error_count"), "\n")
      for op, n in pairs(thread:get("sent")) do
         out:write("N ", op, " ", n, "\n")
      end
      for id, v in pairs(thread:get("todos")) do
         out:write("T ", id, " ", v, "\n")
      end
      for id, uid in pairs(thread:get("posts")) do
         out:write("P ", id, " ", uid, "\n")
      end
      for sec, n in pairs(thread:get("ok_by_sec")) do
         out:write("O ", sec, " ", n, "\n")
      end
      for _, e in ipairs(thread:get("errors")) do
         out:write("E ", e, "\n")
      end
      for _, b in ipairs(thread:get("first_bad")) do
         out:write("B ", b, "\n")
      end
   end
   out:write("L ", latency:percentile(50), " ", latency:percentile(99), " ", latency.max, "\n")
   out:close()
end
