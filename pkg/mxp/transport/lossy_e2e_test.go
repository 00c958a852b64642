//go:build e2e

package transport

import (
	"testing"
	"time"
)

// TestE2ELossyFull is the test at full size: 1,000 messages of 1 B to 1 MiB
// (log-uniform) and one of 16 MiB through 10% loss, 5% dup, 10% reorder, 2 ms ± 2 ms.
func TestE2ELossyFull(t *testing.T) {
	runLossy(t, 1000, 1<<20, 16<<20, 10*time.Minute)
}
