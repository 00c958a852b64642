package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
	"github.com/mxp-mesh/mesh/services/edge/client"
)

// An agent on the secure transport: register, answer Calls with their data.
func ExampleDialSecure() {
	ctx := context.Background()
	edgeKey, err := transport.ParsePublicKey("O3Yd8B1k/ElxY7cTGErni3NmYlCWPyQh6byjdV/63hg=") // printed by mxp dev
	if err != nil {
		log.Fatal(err)
	}
	myKey, err := transport.GeneratePrivateKey()
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.DialSecure(ctx, "127.0.0.1:9000", edgeKey, myKey)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	id := mxp.NewAgentID()
	if _, err := c.Register(ctx, mxp.RegisterRequest{ID: id, Name: "echo", Capabilities: []string{"echo"},
		Metadata: mxp.AgentMetadata{Version: "1.0.0"}}); err != nil {
		log.Fatal(err)
	}
	for f := range c.Inbound() {
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

// A caller on the plaintext listener (mxp dev --compat-addr 127.0.0.1:9001).
func ExampleClient_Call() {
	c, err := client.DialCompat("127.0.0.1:9001")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.Call(ctx, mxp.ServiceRegistry, []byte(`{"capability":"echo"}`), 5*time.Second)
	if err != nil {
		log.Fatal(err) // a *mxp.RemoteError for an Error frame: errors.Is(err, mxp.CodeUnreachable), ...
	}
	fmt.Println(string(out))
}
