-- wrk script for bench/sim.sh: one small OpenAI chat completion against
-- `cutover sim` per request, over keep-alive connections. SIM_STREAM=1 asks
-- for an SSE stream instead of a JSON reply. Counts non-200 replies.
local stream = os.getenv("SIM_STREAM") == "1"

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"gpt-4o","stream":' .. (stream and "true" or "false") ..
           ',"messages":[{"role":"system","content":"You are terse."},' ..
           '{"role":"user","content":"What is the capital of France?"}],"max_tokens":64}'

done = function(summary, latency, requests)
  io.write(string.format("non-2xx/3xx responses: %d, socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
