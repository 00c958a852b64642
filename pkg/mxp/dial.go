package mxp

import (
	"context"
	"fmt"

	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// Dial connects to the MXP listener at addr, authenticating it by opts.ServerKey.
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
		return nil, err
	}
	return newConn(t, opts.InboxSize), nil
}
