package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	var (
		tf   targetFlags
		data string
		kind string
	)
	register(&command{
		Name:  "stream",
		Short: "open a stream to an agent or service and print its chunks as they arrive",
		Usage: "--to AGENT_ID|NAME|SERVICE [--data REQUEST] [--kind text|json|bytes]",
		Long: `stream opens an MXP stream to --to with --data as the opening request (what the
agent's stream handler reads as its request), and writes every chunk the agent sends to
stdout as it arrives, until the agent closes the stream. An agent that serves streams and
no calls (examples/multi-agent's coordinator) is tried this way; mxp call reaches the
ones that serve calls. A stream the agent ends with an Error is printed as "error: CODE:
message" on stderr, with exit status 1. Ctrl-C closes the stream.

--timeout bounds the opening (handshake, lookup of --to, and the agent's acceptance),
not the stream: a model's answer may take its time.

Examples:
  mxp stream --to coordinator --data '{"code":"func f() {}","language":"Go"}'
  mxp stream --to reviewer --data '{"code":"print(1)","language":"Python"}' --kind text
  mxp stream --to 6ba7b810-9dad-11d1-80b4-00c04fd430c8 --data '{}' --timeout 5s`,
		Flags: func(fs *flag.FlagSet) {
			tf.register(fs, "how long opening the stream may take, from the first packet")
			fs.StringVar(&data, "data", "", "the opening request, sent as is")
			fs.StringVar(&kind, "kind", "text", "how the chunks are meant to be read: text, json or bytes (a hint to the agent)")
		},
		Run: func(ctx context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			k, ok := streamKinds[kind]
			if !ok {
				return usagef("--kind %q: want text, json or bytes", kind)
			}
			octx, cancel := context.WithTimeout(ctx, tf.timeout)
			defer cancel()
			cl, target, err := tf.open(octx)
			if err != nil {
				return err
			}
			defer cl.Close()
			return remoteResult(env, runStream(ctx, octx, cl, target, k, []byte(data), env.Stdout), tf.timeout)
		},
	})
}

var streamKinds = map[string]mxp.StreamKind{"text": mxp.StreamKindText, "json": mxp.StreamKindJSON, "bytes": mxp.StreamKindBytes}

// runStream opens a stream to target on cl (openCtx bounds the opening), then copies each
// chunk to w until the peer closes the stream (nil), ends it with an Error (a
// *mxp.RemoteError), the connection ends, or ctx ends (the stream is closed from this
// side and ctx's error returned). Output that does not end in a newline gets one, so
// that the shell prompt starts on its own line.
func runStream(ctx, openCtx context.Context, cl *mxp.Conn, target mxp.AgentID, kind mxp.StreamKind, data []byte, w io.Writer) error {
	sid := mxp.NewStreamID()
	payload, err := (&mxp.StreamOpenPayload{StreamID: sid, Target: target, Kind: kind, Data: data}).AppendPayload(nil)
	if err != nil {
		return usagef("--data: %v", err)
	}
	open := &mxp.Frame{Type: mxp.TypeStreamOpen, MessageID: cl.NextID(), TraceID: cl.NextID(), Payload: payload}
	// Chunks that arrive before the open's Response wait for cl.Inbound (mxp.Conn queues them for Receive).
	if _, err := cl.Request(openCtx, open); err != nil {
		return err
	}
	in := cl.Inbound()
	last := byte('\n')
	defer func() {
		if last != '\n' {
			io.WriteString(w, "\n")
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if p, err := (&mxp.StreamClosePayload{StreamID: sid}).AppendPayload(nil); err == nil {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				_ = cl.Send(cctx, &mxp.Frame{Type: mxp.TypeStreamClose, MessageID: open.MessageID, TraceID: open.TraceID, Payload: p})
				cancel()
			}
			return ctx.Err()
		case f, ok := <-in:
			if !ok {
				return fmt.Errorf("the connection to the edge ended before the stream did: %w", cl.Err())
			}
			switch f.Type {
			case mxp.TypeStreamChunk:
				p, err := mxp.DecodeStreamChunk(f.Payload)
				if err != nil || p.StreamID != sid || len(p.Data) == 0 {
					continue
				}
				if _, err := w.Write(p.Data); err != nil {
					return err
				}
				last = p.Data[len(p.Data)-1]
			case mxp.TypeStreamClose:
				p, err := mxp.DecodeStreamClose(f.Payload)
				if err != nil || p.StreamID != sid {
					continue
				}
				if p.Error != nil {
					return p.Error.Err()
				}
				return nil
			case mxp.TypeError: // the mesh ending the stream it had accepted
				if f.MessageID == open.MessageID {
					ep, err := mxp.DecodeErrorPayload(f.Payload)
					if err != nil {
						return &mxp.RemoteError{Code: mxp.CodeInternal, Message: "malformed Error payload: " + err.Error()}
					}
					return ep.Err()
				}
			}
		}
	}
}
