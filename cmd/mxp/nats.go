package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
)

// `mxp nats` runs a standalone NATS server from the nats-server/v2 that the mesh already
// embeds (pkg/common/bus), so that Docker Compose and Kubernetes need no NATS image: the
// mxp-mesh/mxp image runs it. `mxp nats --check ADDR` is its health check (scratch images
// have no shell or curl): it speaks the NATS protocol's CONNECT/PING and expects PONG.

func init() {
	register(&command{
		Name:  "nats",
		Short: "run a standalone NATS server (the mesh's bus) or check one",
		Usage: "[--listen 0.0.0.0:4222] [--max-payload BYTES] | --check HOST:PORT",
		Long: `nats runs the NATS server the mesh embeds, alone, until SIGINT or SIGTERM. The
edge, the registry and the other services connect to it with their --nats flag (or
MXP_*_NATS). It has no JetStream, no clustering and no authentication: run it on a private
network (a Compose network, a Kubernetes namespace); use a NATS cluster in production.

With --check it runs nothing: it connects to HOST:PORT, sends PING and exits 0 when the
server answers PONG within --timeout (a health check for images without a shell).

Examples:
  mxp nats --listen 0.0.0.0:4222
  mxp nats --check 127.0.0.1:4222`,
		Flags: func(fs *flag.FlagSet) {
			fs.String("listen", "127.0.0.1:4222", "TCP address of the NATS client port (port 0: a free one)")
			fs.Int("max-payload", 8<<20, "largest message the server accepts, in bytes")
			fs.String("check", "", "check the NATS server at HOST:PORT instead of running one")
			fs.Duration("timeout", 3*time.Second, "deadline of --check")
		},
		Run: runNATS,
	})
}

func runNATS(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usagef("nats takes no arguments")
	}
	if addr := flagString(env, "check"); addr != "" {
		if err := checkNATS(ctx, addr, flagValue[time.Duration](env, "timeout")); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "nats at %s: ok\n", addr)
		return nil
	}
	host, portText, err := net.SplitHostPort(flagString(env, "listen"))
	if err != nil {
		return usagef("--listen: %v", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return usagef("--listen: bad port %q", portText)
	}
	maxPayload := flagValue[int](env, "max-payload")
	if maxPayload <= 0 || maxPayload > 64<<20 {
		return usagef("--max-payload must be between 1 and %d", 64<<20)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Host: host, Port: port, MaxPayload: int32(maxPayload)})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "mxp nats: listening on %s\n", srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	fmt.Fprintln(env.Stdout, "mxp nats: stopped")
	return nil
}

// checkNATS speaks just enough of the NATS client protocol to know the server serves:
// read INFO, send CONNECT and PING, expect PONG.
func checkNATS(ctx context.Context, addr string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("nats at %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	return natsHandshake(conn, addr)
}

// natsHandshake reads the server's INFO, sends CONNECT and PING and waits for PONG. The
// server's lines are untrusted: each is bounded (maxNATSLine) and an unexpected one ends
// the check with an error.
func natsHandshake(conn net.Conn, addr string) error {
	r := bufio.NewReaderSize(&io.LimitedReader{R: conn, N: 64 * maxNATSLine}, maxNATSLine)
	readLine := func() (string, error) {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("a line longer than %d bytes", maxNATSLine)
		}
		return string(line), err
	}
	line, err := readLine()
	if err != nil {
		return fmt.Errorf("nats at %s: reading INFO: %w", addr, err)
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("nats at %s: not a NATS server (first line %q)", addr, truncate(line, 40))
	}
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"mxp-nats-check\"}\r\nPING\r\n")); err != nil {
		return fmt.Errorf("nats at %s: %w", addr, err)
	}
	for {
		line, err := readLine()
		if err != nil {
			return fmt.Errorf("nats at %s: waiting for PONG: %w", addr, err)
		}
		switch {
		case strings.HasPrefix(line, "PONG"):
			return nil
		case strings.HasPrefix(line, "-ERR"):
			return fmt.Errorf("nats at %s: %s", addr, strings.TrimSpace(truncate(line, 200)))
		case strings.HasPrefix(line, "PING"), strings.HasPrefix(line, "+OK"), strings.HasPrefix(line, "INFO "):
			continue
		default:
			return errors.New("nats at " + addr + ": unexpected reply " + strconv.Quote(truncate(line, 40)))
		}
	}
}

// maxNATSLine bounds one protocol line from the server (INFO lines are a few hundred bytes).
const maxNATSLine = 16 << 10

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
