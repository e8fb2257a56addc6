-- wrk script of bench/bench_serve.py: one request kind (or a weighted mix) per run, results as JSON.
--
-- Configured through the environment (wrk's `done` hook runs in a Lua state that never sees init's args):
--   NOTELLM_KIND     related | post_notes | embed | mix
--   NOTELLM_IDS      file of URL-encoded stored note ids, one a line (the related queries pick uniformly)
--   NOTELLM_BODIES   file of JSON note objects, one a line (POST /notes and /embed cycle through them)
--   NOTELLM_K        k of related requests;  NOTELLM_METHOD  diversify= of related requests
--   NOTELLM_MIX      mix weights "related:none=70,related:ssd_star=10,post_notes=5,embed=5,..."
--   NOTELLM_SEED     random seed;  NOTELLM_OUT  where `done` writes the JSON summary
-- POST /notes ids are "bench-<thread>-<n>", so every write adds a new note.

local kind = os.getenv("NOTELLM_KIND")
local k = os.getenv("NOTELLM_K") or "10"
local method = os.getenv("NOTELLM_METHOD") or "none"
local ids, bodies, mix = {}, {}, {}
local counter, thread_tag = 0, "0"
local json_headers = { ["Content-Type"] = "application/json" }

local function read_lines(path, into)
  if path == nil or path == "" then return end
  for line in io.lines(path) do
    if line ~= "" then into[#into + 1] = line end
  end
end

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_tag", tostring(thread_count))
end

function init(args)
  math.randomseed(tonumber(os.getenv("NOTELLM_SEED") or "0") + tonumber(thread_tag))
  read_lines(os.getenv("NOTELLM_IDS"), ids)
  read_lines(os.getenv("NOTELLM_BODIES"), bodies)
  local total = 0
  for name, weight in string.gmatch(os.getenv("NOTELLM_MIX") or "", "([%w_:]+)=(%d+)") do
    total = total + tonumber(weight)
    mix[#mix + 1] = { name = name, upto = total }
  end
  mix.total = total
end

local function related(diversify)
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/notes/" .. id .. "/related?k=" .. k .. "&diversify=" .. diversify)
end

local function post_notes()
  counter = counter + 1
  local note = bodies[(counter % #bodies) + 1]
  local body = '{"notes":[{"note_id":"bench-' .. thread_tag .. '-' .. counter .. '",' .. string.sub(note, 2) .. ']}'
  return wrk.format("POST", "/notes", json_headers, body)
end

local function embed()
  counter = counter + 1
  return wrk.format("POST", "/embed", json_headers, '{"notes":[' .. bodies[(counter % #bodies) + 1] .. ']}')
end

local function one(name)
  if name == "post_notes" then return post_notes() end
  if name == "embed" then return embed() end
  local diversify = string.match(name, "^related:(.+)$") or method
  return related(diversify)
end

function request()
  if kind ~= "mix" then return one(kind) end
  local r = math.random(mix.total)
  for _, entry in ipairs(mix) do
    if r <= entry.upto then return one(entry.name) end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = assert(io.open(os.getenv("NOTELLM_OUT"), "w"))
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
  out:close()
end
