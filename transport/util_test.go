package transport

import (
	"fmt"
	"strconv"
)

func jsonf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func itoa(n int) string { return strconv.Itoa(n) }
