//go:build !linux

package transport

const gsoSupported = false

func gsoControl(int) (oob [0]byte) { return oob }

func gsoRefused(error) bool { return true }
