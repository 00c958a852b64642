package agent

import (
	"context"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// MaxPlaintextFrame is the largest frame a plaintext connection carries: one frame per
// UDP datagram (mxp.MaxPlaintextFrame).
const MaxPlaintextFrame = mxp.MaxPlaintextFrame

// DialPlaintext connects to an edge's plaintext listener (`mxp dev --compat-addr`) with
// mxp.DialPlaintext: MXP frames over UDP, one frame per datagram, with no encryption, no
// authentication and no retransmission. It exists for local development and for talking
// to edges that serve the reference SDK; use the secure transport (Run) for anything
// else. Pass the connection to RunConn.
func DialPlaintext(ctx context.Context, addr string) (FrameConn, error) {
	c, err := mxp.DialPlaintext(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}
