package mxp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// A server that echoes Calls and a client that calls it over the secure UDP transport.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serverKey, _ := mxp.GeneratePrivateKey()
	l, err := mxp.Listen(ctx, "127.0.0.1:0", mxp.Options{PrivateKey: serverKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		c.Serve(ctx, mxp.Echo)
	}()

	clientKey, _ := mxp.GeneratePrivateKey()
	c, err := mxp.Dial(ctx, l.Addr().String(), mxp.Options{PrivateKey: clientKey, ServerKey: l.PublicKey()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	resp, err := c.Call(ctx, &mxp.Frame{Type: mxp.TypeCall, Payload: []byte("hello")})
	fmt.Println(resp.Type, string(resp.Payload), err)
	// Output: Response hello <nil>
}

// An agent on the edge's plaintext listener (mxp dev --compat-addr 127.0.0.1:9001):
// register, answer Calls with their data. The secure transport (Dial) works the same.
func ExampleConn_Register() {
	ctx := context.Background()
	c, err := mxp.DialPlaintext(ctx, "127.0.0.1:9001")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	id := mxp.NewAgentID()
	if _, err := c.Register(ctx, mxp.RegisterRequest{ID: id, Name: "echo", Capabilities: []string{"echo"},
		Metadata: mxp.AgentMetadata{Version: "1.0.0"}}); err != nil {
		fmt.Println(err)
		return
	}
	for {
		f, err := c.Receive(ctx)
		if err != nil {
			return
		}
		if f.Type != mxp.TypeCall {
			continue
		}
		call, err := mxp.DecodeCall(f.Payload)
		if err != nil {
			_ = c.RespondError(ctx, f, mxp.CodeInvalidPayload, err.Error())
			continue
		}
		_ = c.Respond(ctx, f, call.Data)
	}
}

// A caller: Call a service (or an agent, by id) through the edge.
func ExampleConn_CallAgent() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mxp.DialPlaintext(ctx, "127.0.0.1:9001")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	out, err := c.CallAgent(ctx, mxp.ServiceRegistry, []byte(`{"capability":"echo"}`), 5*time.Second)
	if err != nil {
		fmt.Println(err) // a *mxp.RemoteError for an Error frame: errors.Is(err, mxp.CodeUnreachable), ...
		return
	}
	fmt.Println(string(out))
}
