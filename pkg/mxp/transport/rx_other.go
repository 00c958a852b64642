//go:build !linux

package transport

func newBatchReader(ep *endpoint) batchReader { return newXnetReader(ep) }
