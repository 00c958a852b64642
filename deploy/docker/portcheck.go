//go:build ignore

// portcheck says which of the host ports a Compose mesh publishes are already taken, so
// that `make compose-up` stops before building images instead of failing after them
// ("bind: address already in use") with half the project started.
//
// Usage: go run deploy/docker/portcheck.go NAME=[IP:]PORT/PROTO ...
//
// Each argument is what docker-compose.yml publishes: an address (an IP with a port, or a
// port alone for every interface) and tcp or udp. It tries to listen there as Docker
// would and prints one line per taken port (nothing when all are free). It exits 0 either
// way (2 on a malformed argument), so that the caller reads the lines rather than `go run`'s
// "exit status" noise.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	for _, arg := range os.Args[1:] {
		name, spec, ok := strings.Cut(arg, "=")
		addr, proto, ok2 := strings.Cut(spec, "/")
		if !ok || !ok2 || (proto != "tcp" && proto != "udp") {
			fmt.Fprintf(os.Stderr, "portcheck: %q is not NAME=[IP:]PORT/tcp|udp\n", arg)
			os.Exit(2)
		}
		host := addr
		if !strings.Contains(addr, ":") {
			host = "0.0.0.0:" + addr // a port alone is published on every interface
		}
		if err := listen(proto, host); err != nil {
			fmt.Printf("  %s/%s (%s) is in use: %v\n", addr, proto, name, unwrap(err))
		}
	}
}

func listen(proto, addr string) error {
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	l, err := net.Listen("tcp4", addr)
	if err == nil {
		l.Close()
	}
	return err
}

func unwrap(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}
