package mxp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func ExampleAppendFrame() {
	buf := make([]byte, 0, 128) // reuse one buffer: AppendFrame then allocates nothing
	buf, err := mxp.AppendFrame(buf[:0], &mxp.Frame{
		Type:      mxp.TypeResponse,
		MessageID: 0x0123456789abcdef,
		TraceID:   0xfedcba9876543210,
		Payload:   []byte("ping"),
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes: %x\n", len(buf), buf)
	// Output:
	// 44 bytes: 3150584d11000000efcdab89674523011032547698badcfe040000000000000070696e67e9424d05b9cef83f
}

func ExampleDecode() {
	wire, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeCall, Flags: mxp.FlagRequiresAck, MessageID: 7, Payload: []byte("hi")})
	wire = append(wire, "next frame..."...)

	f, n, err := mxp.Decode(wire)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Type, f.Flags, f.MessageID, string(f.Payload), "used", n, "of", len(wire))

	// A damaged frame: the error names its kind and carries the fields.
	wire[n-1] ^= 0xff
	_, _, err = mxp.Decode(wire)
	var cm mxp.ChecksumMismatchError
	fmt.Println(mxp.ErrorKind(err), errors.Is(err, mxp.ErrChecksumMismatch), errors.As(err, &cm), cm.Expected != cm.Found)
	fmt.Println(err)
	// Output:
	// Call requires_ack 7 hi used 42 of 55
	// ChecksumMismatch true true true
	// checksum mismatch: expected 0xebb969ab37d443e5, got 0x14b969ab37d443e5
}

func ExampleReader() {
	var stream bytes.Buffer
	w := mxp.NewWriter(&stream)
	for i, text := range []string{"one", "two"} {
		if err := w.WriteFrame(&mxp.Frame{Type: mxp.TypeEvent, MessageID: uint64(i + 1), Payload: []byte(text)}); err != nil {
			panic(err)
		}
	}

	r := mxp.NewReader(&stream)
	for {
		f, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(f.MessageID, f.Type, string(f.Payload))
	}
	// Output:
	// 1 Event one
	// 2 Event two
}

func ExampleDecodeCall() {
	payload, _ := (&mxp.CallPayload{Target: mxp.ServiceInference, TimeoutSeconds: 30, Data: []byte(`{"prompt":"hi"}`)}).AppendPayload(nil)
	frame, _ := mxp.AppendFrame(nil, &mxp.Frame{Type: mxp.TypeCall, MessageID: 1, Payload: payload})

	f, _, _ := mxp.Decode(frame)
	call, err := mxp.DecodeCall(f.Payload)
	if err != nil {
		panic(err)
	}
	name, _ := mxp.ServiceName(call.Target)
	fmt.Println(name, call.TimeoutSeconds, string(call.Data))
	// Output:
	// inference 30 {"prompt":"hi"}
}
