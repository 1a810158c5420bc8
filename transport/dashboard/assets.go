// Package dashboard holds the files of the operator's page (served by the
// transport package under /dashboard) and the vendored uPlot charting
// library that the page and flashbench's --html report both draw with,
// embedded so that neither needs anything from another site.
package dashboard

import "embed"

// Files are the page, its script and style sheet, and uPlot with its
// licence (see README.md here for the version).
//
//go:embed index.html dashboard.js dashboard.css uPlot.iife.min.js uPlot.min.css LICENSE.uplot
var Files embed.FS
