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
