-- wrk script: realistic Africa's Talking USSD sessions. Every virtual user dials, then answers
-- screen after screen, AT-style: `text` carries every input so far joined by '*'; each session
-- has its own sessionId and phone number. Several users per connection, served round-robin,
-- so a user's next hop goes out after its previous answer came back.
-- args: keys (comma-separated), tag (unique per run), users per thread, path suffix (?token=...),
-- "final" to send only final hops: every request a new session carrying every key at once
local keys, tag, suffix, finals = {}, "s", "", false
local users, cursor, counter, id = {}, 0, 0, 0
ok, bad, ends = 0, 0, 0  -- globals: done() reads them with thread:get
local threads, next_id = {}, 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  for k in string.gmatch(args[1] or "1", "[^,]+") do keys[#keys + 1] = k end
  tag = args[2] or "s"
  suffix = args[4] or ""
  finals = args[5] == "final"
  -- staggered: user i starts i hops into a session (its first one replayed from `text`, as after a
  -- lost cache), so final hops are spread over the run instead of all arriving after everyone's 7th
  for i = 1, tonumber(args[3] or "64") do users[i] = {step = (i - 1) % (#keys + 1)} end
end

function request()
  cursor = cursor % #users + 1
  local u = users[cursor]
  if finals then u.step = #keys; u.sid = nil end
  if u.sid == nil or u.step == 0 then
    counter = counter + 1
    u.sid = tag .. "-" .. id .. "-" .. counter
    u.phone = string.format("%%2B62812%02d%06d", id % 100, counter % 1000000)
  end
  local text = table.concat(keys, "%2A", 1, u.step)
  u.step = (u.step + 1) % (#keys + 1)
  local body = "sessionId=" .. u.sid .. "&serviceCode=%2A123%23&networkCode=51010&phoneNumber=" .. u.phone
               .. "&text=" .. text
  return wrk.format("POST", wrk.path .. suffix, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
  local head = string.sub(body, 1, 4)
  if status == 200 and (head == "CON " or head == "END ") then
    ok = ok + 1
    if head == "END " then ends = ends + 1 end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local tok, tbad, tends = 0, 0, 0
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok"); tbad = tbad + t:get("bad"); tends = tends + t:get("ends")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.3f,"ok":%d,"bad":%d,"ends":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, tok, tbad, tends, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
