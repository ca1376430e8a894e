-- wrk script for bench/serve.py: each request POSTs the next image of a list as its raw body, or as a multipart
-- upload with `multipart` as the 2nd argument; done() prints one JSON line of counts and latency percentiles (us).
-- Arguments (after wrk's --): LIST_FILE [multipart]. LIST_FILE names one image file per line.
local bodies = {}
local content_type = "image/png"
local sent = 0

local function slurp(path)
  local file = assert(io.open(path, "rb"))  -- closed at once: wrk's event loop wants the descriptors
  local data = file:read("*a")
  file:close()
  return data
end

init = function(args)
  local boundary = "imcaption-bench-boundary"
  for path in slurp(args[1]):gmatch("[^\n]+") do
    local data = slurp(path)
    if args[2] == "multipart" then
      data = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"captcha.png\"\r\n"
        .. "Content-Type: image/png\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
    end
    bodies[#bodies + 1] = data
  end
  if args[2] == "multipart" then content_type = "multipart/form-data; boundary=" .. boundary end
end

request = function()
  sent = sent + 1
  return wrk.format("POST", "/v1/read", {["Content-Type"] = content_type}, bodies[(sent % #bodies) + 1])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p95_us": %d, '
      .. '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
