package service_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/common/service"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// A service answers on the bus through Endpoints: typed errors, limits, deadlines,
// tracing and metrics come with it.
func ExampleEndpoints() {
	b, _ := bus.Start(bus.Config{Embedded: bus.EmbeddedConfig{DontListen: true}}, "example", nil)
	defer b.Close()
	ep, _ := service.NewEndpoints(service.Deps{Conn: b.Conn}, micro.Config{Name: "greeter", Version: "1.0.0"}, security.Limits{MaxPayloadBytes: 64})
	ep.Handle("hello", "demo.hello", func(ctx context.Context, r service.Request) (any, error) {
		if len(r.Data) == 0 {
			return nil, bus.Errorf(mxp.CodeInvalidArgument, "say who to greet")
		}
		return map[string]string{"greeting": "hello " + string(r.Data)}, nil
	})
	defer ep.Stop(context.Background())

	msg, _ := b.Conn.Request("demo.hello", []byte("mesh"), time.Second)
	fmt.Println(string(msg.Data))
	msg, _ = b.Conn.Request("demo.hello", nil, time.Second)
	fmt.Println(bus.ReplyError(msg))
	// Output:
	// {"greeting":"hello mesh"}
	// invalid_argument (400): say who to greet
}
