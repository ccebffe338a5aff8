-- wrk script for the proxy lab, configured through the environment:
--   LAB_BODY=N   send POST requests with an N-byte body (default: GET)
--   LAB_SECS=S   clean stop: each thread stops right after a complete response
--                once S seconds have passed (with -c equal to -t, no request is
--                ever in flight when wrk exits, so the backend's own logs are an
--                exact reference). 0 or unset: wrk's -d cuts the load as usual.
local body = tonumber(os.getenv("LAB_BODY") or "0")
if body > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("p", body)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

local secs = tonumber(os.getenv("LAB_SECS") or "0")
local deadline = nil

function init(args)
  if secs > 0 then deadline = os.time() + secs end
end

if secs > 0 then
  function response(status, headers, body)
    if os.time() >= deadline then wrk.thread:stop() end
  end
end
