-- Every request a different query: the filtered page of benches/serve.sh with a random
-- `since` down to the second (2026-06-01 .. 2026-11-30), so no answer can come from a memo of
-- an earlier identical request; what is measured is the held searcher answering a new query.
math.randomseed(os.time())
request = function()
  local since = string.format("2026-%02d-%02dT%02d:%02d:%02dZ",
    math.random(6, 11), math.random(1, 28), math.random(0, 23), math.random(0, 59),
    math.random(0, 59))
  return wrk.format("GET", "/api/events?app=api&category=config&per_page=50&since=" .. since)
end
