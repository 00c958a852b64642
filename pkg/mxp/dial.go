package mxp

import (
	"context"
	"errors"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Dial connects to the MXP listener at addr, authenticating it by opts.ServerKey. When
// nothing listens at addr and the host says so (ICMP port unreachable, Linux), it fails at
// once with an error matching CodeUnreachable instead of waiting for the handshake timeout.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if opts.ServerKey.IsZero() {
		return nil, fmt.Errorf("mxp: Options.ServerKey is required to dial")
	}
	cfg, err := opts.transportConfig()
	if err != nil {
		return nil, err
	}
	t, err := transport.Dial(ctx, addr, opts.ServerKey, cfg)
	if err != nil {
		if errors.Is(err, transport.ErrPeerUnreachable) { // refused: nothing listens at addr
			return nil, fmt.Errorf("%w: %w", CodeUnreachable, err)
		}
		return nil, err
	}
	return newConn(t, opts.InboxSize), nil
}
