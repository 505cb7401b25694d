-- Every request a different page of a filtered list: one of the demo's apps, one of its
-- categories, a page from 1 to 40 (1,600 combinations, more than a snapshot's memo keeps), so
-- most requests run the query on the held searcher.
math.randomseed(os.time())
local apps = {"api", "web", "worker", "billing", "reports", "auth", "search", "mailer"}
local categories = {"config", "deploy", "app", "command", "domains"}
request = function()
  local path = string.format("/api/events?app=%s&category=%s&per_page=50&page=%d",
    apps[math.random(#apps)], categories[math.random(#categories)], math.random(1, 40))
  return wrk.format("GET", path)
end
