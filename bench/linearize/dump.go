package linearize

import (
	"encoding/json"
	"os"

	"github.com/anishathalye/porcupine"
)

// DumpEnv names the environment variable that, when Options leave
// DumpPath empty, gives the file where a failed check saves its history as
// JSON, to be checked again with LoadHistory.
const DumpEnv = "LINEARIZE_DUMP"

type dumpedOp struct {
	Client int    `json:"client"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	In     Input  `json:"in"`
	Out    Output `json:"out"`
}

type dump struct {
	Catalog []Product  `json:"catalog"`
	Ops     []dumpedOp `json:"ops"`
}

// SaveHistory writes the catalog and history to path as JSON (without
// Metadata).
func SaveHistory(path string, catalog []Product, history []porcupine.Operation) error {
	d := dump{Catalog: catalog, Ops: make([]dumpedOp, len(history))}
	for i, op := range history {
		d.Ops[i] = dumpedOp{Client: op.ClientId, Call: op.Call, Return: op.Return, In: op.Input.(Input), Out: op.Output.(Output)}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// LoadHistory reads a catalog and history that SaveHistory wrote.
func LoadHistory(path string) ([]Product, []porcupine.Operation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var d dump
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, nil, err
	}
	history := make([]porcupine.Operation, len(d.Ops))
	for i, op := range d.Ops {
		history[i] = porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return, Input: op.In, Output: op.Out}
	}
	return d.Catalog, history, nil
}
