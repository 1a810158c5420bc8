package transport

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/docs"
	"github.com/flashsale/flashsale/engine"
	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIServed: GET /openapi.yaml answers the embedded document, byte
// for byte, as application/yaml, and it loads as a valid OpenAPI 3.1
// document; HEAD gives the same status and type without the body.
func TestOpenAPIServed(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.do("GET", "/openapi.yaml", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("got %d %q", r.status, r.header.Get("Content-Type"))
	}
	if !bytes.Equal(r.body, docs.OpenAPI) || len(r.body) == 0 {
		t.Fatalf("served %d bytes, docs/openapi.yaml has %d", len(r.body), len(docs.OpenAPI))
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi: %s, want 3.1", doc.OpenAPI)
	}
	h := ts.do("HEAD", "/openapi.yaml", "")
	if h.status != 200 || h.header.Get("Content-Type") != "application/yaml" || len(h.body) != 0 {
		t.Errorf("HEAD: %d %q, %d bytes", h.status, h.header.Get("Content-Type"), len(h.body))
	}
}

// docCluster is just enough of a Cluster for New to register the cluster
// routes; no request is served through it.
type docCluster struct{}

func (docCluster) NodeID() uint64                      { return 1 }
func (docCluster) Partitions() int                     { return 1 }
func (docCluster) Engine(int) (*engine.Engine, bool)   { return nil, false }
func (docCluster) LeaderHTTP(int) string               { return "" }
func (docCluster) ReadBarrier(int) error               { return nil }
func (docCluster) ReadBarrierAll() error               { return nil }
func (docCluster) Healthy() bool                       { return true }
func (docCluster) AppendStatus(dst []byte) []byte      { return dst }
func (docCluster) State(int) (uint64, [32]byte, error) { return 0, [32]byte{}, nil }

// TestOpenAPIListsEveryRoute: the routes the server registers with admin
// and cluster mode on (GET routes also answer HEAD) are exactly the
// document's operations, so that no endpoint goes undocumented and the
// document promises none that does not exist.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	srv := New(nil, Options{AdminToken: "t", Cluster: docCluster{}})
	var served []string
	for method, paths := range srv.router.List() {
		for _, p := range paths {
			if method == "HEAD" {
				if !slices.Contains(srv.router.List()["GET"], p) {
					t.Errorf("HEAD %s without GET", p)
				}
				continue
			}
			served = append(served, method+" "+p)
		}
	}
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("routes served:\n  %s\noperations documented in docs/openapi.yaml:\n  %s",
			strings.Join(served, "\n  "), strings.Join(documented, "\n  "))
	}
}
