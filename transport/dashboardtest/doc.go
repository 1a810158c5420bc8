// Package dashboardtest holds the browser tests of the operator's page,
// GET /dashboard: the real binary (a single node under load, and a 3-node
// cluster) in headless Chromium driven by chromedp. It has no code of its
// own. Where /usr/bin/chromium is missing the browser parts skip, saying
// why, unless FLASHSALE_REQUIRE_BROWSER=1 (as .ci/run sets) makes that a
// failure; the cluster test checks GET /dashboard/stats before it skips.
package dashboardtest
