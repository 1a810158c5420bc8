package bench

// checkProductArithmetic records a violation for each invariant of docs/API.md's
// stock arithmetic that p breaks: total = available + reserved + sold, and no
// count below zero. when names the moment, e.g. "after the load".
func checkProductArithmetic(v *violations, when string, p Product) {
	if p.TotalStock != p.AvailableStock+p.ReservedStock+p.SoldStock {
		v.addf("product %d %s: total_stock %d != available %d + reserved %d + sold %d",
			p.ID, when, p.TotalStock, p.AvailableStock, p.ReservedStock, p.SoldStock)
	}
	if p.AvailableStock < 0 || p.ReservedStock < 0 || p.SoldStock < 0 || p.TotalStock < 0 {
		v.addf("product %d %s: negative count (total %d, available %d, reserved %d, sold %d)",
			p.ID, when, p.TotalStock, p.AvailableStock, p.ReservedStock, p.SoldStock)
	}
}

// unitLedger is what flashbench itself knows about one product's units at
// the end of a run: units it holds in live holds or orders (reserved or
// sold), with a margin for requests whose outcome it never learned.
type unitLedger struct {
	liveUnits    int64 // granted and not known to be released
	unknownUnits int64 // requested, answer lost: may or may not be live
}

// checkUnitsAgainstStock compares the server's counts before and after the
// load with flashbench's ledger, assuming flashbench was the only client:
//   - the units the server counts as reserved or sold by this run must match
//     the ledger (within the unknown margin);
//   - the ledger's live units can never exceed what was available at the
//     start plus restocks: the server granted more than it had.
func checkUnitsAgainstStock(v *violations, before, after Product, l unitLedger) {
	committedDelta := (after.ReservedStock + after.SoldStock) - (before.ReservedStock + before.SoldStock)
	if committedDelta < l.liveUnits || committedDelta > l.liveUnits+l.unknownUnits {
		v.addf("product %d: the server counts %d more units reserved or sold than before the load, but flashbench holds %d live units (+%d of unknown outcome)",
			after.ID, committedDelta, l.liveUnits, l.unknownUnits)
	}
	stockBound := before.AvailableStock + (after.TotalStock - before.TotalStock)
	if l.liveUnits > stockBound {
		v.addf("product %d: granted %d live units but only %d were available: oversold",
			after.ID, l.liveUnits, stockBound)
	}
}
