//go:build !race

package checksum

func raceReadRange([]byte)  {}
func raceWriteRange([]byte) {}
