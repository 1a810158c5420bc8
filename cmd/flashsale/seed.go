package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/flashsale/flashsale/engine"
)

// demoCatalog is the catalog of a fresh data directory when no --seed is
// given: an ordinary product, a hot item whose small stock a flash sale
// exhausts in a moment, and a deep one.
var demoCatalog = []engine.ProductSpec{
	{ID: 1, Name: "Flash Widget", PriceCents: 4999, TotalStock: 100, MaxPerHold: 10},
	{ID: 2, Name: "Limited Edition Sneaker", PriceCents: 19999, TotalStock: 10, MaxPerHold: 2},
	{ID: 3, Name: "Gift Card", PriceCents: 2500, TotalStock: 1000, MaxPerHold: 5},
}

// Seed limits, the same as the admin API's.
const (
	seedNameBytesMax  = 200
	seedPriceCentsMax = 1_000_000_000_000
	seedStockMax      = 1_000_000_000_000
	seedMaxPerHoldMax = 1_000_000
)

type seedProduct struct {
	ID         *int64  `json:"id"`
	Name       *string `json:"name"`
	PriceCents *int64  `json:"price_cents"`
	TotalStock *int64  `json:"total_stock"`
	MaxPerHold *int64  `json:"max_per_hold"`
}

// loadSeed reads and checks a seed file: a JSON array of products with
// unique positive ids. Startup code, so encoding/json is fine here.
func loadSeed(path string) ([]engine.ProductSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw []seedProduct
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("seed %s: data after the array", path)
	}
	specs := make([]engine.ProductSpec, 0, len(raw))
	seen := map[int64]bool{}
	for i, p := range raw {
		switch {
		case p.ID == nil || *p.ID < 1:
			return nil, fmt.Errorf("seed %s: product #%d: id must be a positive integer", path, i)
		case seen[*p.ID]:
			return nil, fmt.Errorf("seed %s: product #%d: id %d appears twice", path, i, *p.ID)
		case p.Name == nil || *p.Name == "" || len(*p.Name) > seedNameBytesMax:
			return nil, fmt.Errorf("seed %s: product %d: name must be 1 to %d bytes", path, *p.ID, seedNameBytesMax)
		case p.PriceCents == nil || *p.PriceCents < 0 || *p.PriceCents > seedPriceCentsMax:
			return nil, fmt.Errorf("seed %s: product %d: price_cents must be 0 to %d", path, *p.ID, int64(seedPriceCentsMax))
		case p.TotalStock == nil || *p.TotalStock < 0 || *p.TotalStock > seedStockMax:
			return nil, fmt.Errorf("seed %s: product %d: total_stock must be 0 to %d", path, *p.ID, int64(seedStockMax))
		case p.MaxPerHold != nil && (*p.MaxPerHold < 1 || *p.MaxPerHold > seedMaxPerHoldMax):
			return nil, fmt.Errorf("seed %s: product %d: max_per_hold must be 1 to %d", path, *p.ID, seedMaxPerHoldMax)
		}
		seen[*p.ID] = true
		spec := engine.ProductSpec{ID: uint64(*p.ID), Name: *p.Name, PriceCents: *p.PriceCents, TotalStock: *p.TotalStock}
		if p.MaxPerHold != nil {
			spec.MaxPerHold = *p.MaxPerHold
		}
		specs = append(specs, spec)
	}
	return specs, nil
}
