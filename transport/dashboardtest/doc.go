// Package dashboardtest holds the browser test of the operator's page,
// GET /dashboard: the real binary under load, headless Chromium driven by
// chromedp. It has no code of its own; the test skips, saying why, where
// /usr/bin/chromium is missing, unless FLASHSALE_REQUIRE_BROWSER=1.
package dashboardtest
