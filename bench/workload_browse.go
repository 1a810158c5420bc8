package bench

import (
	"context"
	"fmt"
)

// browseListEvery is how often a browse op reads the whole catalogue instead
// of one product: one op in browseListEvery.
const browseListEvery = 20

// browseWorkload reads products: mostly GET /api/products/{id} of a random
// product, and one op in browseListEvery a GET /api/products.
type browseWorkload struct {
	productIDs []int64
	pathByID   [][]byte // preformatted "/api/products/{id}"
}

func newBrowseWorkload(Config) *browseWorkload { return &browseWorkload{} }

// setup learns the catalogue's product ids.
func (b *browseWorkload) setup(_ context.Context, env *runEnv) error {
	products, err := env.control.listProducts()
	if err != nil {
		return err
	}
	if len(products) == 0 {
		return fmt.Errorf("browse: the server has no products")
	}
	for _, p := range products {
		b.productIDs = append(b.productIDs, p.ID)
		b.pathByID = append(b.pathByID, fmt.Appendf(nil, "/api/products/%d", p.ID))
	}
	return nil
}

var productListPath = []byte("/api/products")

// op makes one read.
func (b *browseWorkload) op(w *worker) {
	if w.rng.IntN(browseListEvery) == 0 {
		w.call(EndpointProductList, methodGet, productListPath, nil, requestOptions{skipParseOK: true})
		return
	}
	path := b.pathByID[w.rng.IntN(len(b.pathByID))]
	w.call(EndpointProductGet, methodGet, path, nil, requestOptions{skipParseOK: true})
}

func (b *browseWorkload) progress() string { return "" }

// finish has nothing to check beyond the common product audit.
func (b *browseWorkload) finish(context.Context, *runEnv, *Result) error { return nil }
