// Package docs holds the repository's documentation. Its one piece of Go
// embeds the OpenAPI document, so that the server serves the file the
// tests validate against (GET /openapi.yaml) and no second copy exists.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, the machine-readable form of docs/API.md.
//
//go:embed openapi.yaml
var OpenAPI []byte
