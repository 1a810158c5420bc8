package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file Open locks so that two processes never write
// the same log (tidwall/wal has no such guard). tidwall/wal ignores it: its
// name is not a segment name.
const lockFileName = "LOCK"

// lockDir takes an exclusive, non-blocking flock on dir's lock file. The
// lock lasts until the returned file is closed, or the process exits.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: %s is in use by another process (or another Log in this one): %w", dir, err)
	}
	return f, nil
}
