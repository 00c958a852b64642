package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	register(&command{
		Name:  "frame",
		Short: "decode and encode MXP frames (hex or binary)",
		Long: `Work with single MXP frames: decode what is on the wire, build frames for tests.

Examples:
  mxp frame encode --type call --flags requires_ack --msg-id 7 --payload hi
  mxp frame encode --type call --msg-id 7 --payload hi | mxp frame decode
  mxp frame decode --json < frames.hex`,
	})
	register(frameDecodeCmd, "frame")
	register(frameEncodeCmd, "frame")
}

var frameDecodeCmd = &command{
	Name:  "decode",
	Short: "decode frames given as hex, one per line (or one binary frame with --raw)",
	Usage: "[--json] [--raw] < frames",
	Long: `Reads frames from stdin, as hex, one frame per line, and prints one line per frame:

  ok type=0x10 flags=0x04 msg_id=0x0123456789abcdef trace_id=0xfedcba9876543210 payload_len=1
  err <Kind>: <message>

Kind is one of BufferTooSmall, InvalidMagic, ReservedFieldNonZero, InvalidMessageType,
InvalidFlags, PayloadTooLarge, ChecksumMismatch (the checks run in that order but with the
length checked first), or InvalidHex for a line that is not hex. Spaces in a line and a
leading 0x are ignored; an empty line is an empty (too small) frame. Bytes after the frame
on a line are ignored, as Decode leaves them to the caller.

--json prints one JSON object per frame instead, with the payload (payload_hex, and
payload_text when it is UTF-8) and, for an error, its kind and fields.
--raw reads stdin as the bytes of one binary frame.

Exit status: 0 when every frame decoded, 1 otherwise.

Examples:
  mxp frame encode --type call --payload hi | mxp frame decode
  mxp frame decode --json < frames.hex
  mxp frame decode --raw < frame.bin`,
	Flags: func(fs *flag.FlagSet) {
		fs.Bool("json", false, "print JSON lines, with the payload")
		fs.Bool("raw", false, "read one binary frame from stdin instead of hex lines")
	},
	Run: runFrameDecode,
}

func runFrameDecode(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (frames come from stdin)", args[0])
	}
	asJSON := env.Flags.Lookup("json").Value.(flag.Getter).Get().(bool)
	raw := env.Flags.Lookup("raw").Value.(flag.Getter).Get().(bool)
	out := bufio.NewWriter(env.Stdout)
	defer out.Flush()
	failed := false
	decodeOne := func(b []byte) error {
		f, n, err := mxp.Decode(b)
		if err != nil {
			failed = true
		}
		return printDecoded(out, asJSON, f, n, len(b), err)
	}
	if raw {
		// A frame is at most MaxFrameSize bytes; anything after is not part of it.
		b, err := io.ReadAll(io.LimitReader(env.Stdin, mxp.MaxFrameSize))
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if err := decodeOne(b); err != nil {
			return err
		}
	} else {
		sc := bufio.NewScanner(env.Stdin)
		sc.Buffer(make([]byte, 64<<10), 2*mxp.MaxFrameSize+4096)
		for sc.Scan() {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := parseHexLine(sc.Text())
			if err != nil {
				failed = true
				if err := printHexError(out, asJSON, err); err != nil {
					return err
				}
				continue
			}
			if err := decodeOne(b); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// parseHexLine decodes one line of hex, ignoring whitespace and a leading 0x.
func parseHexLine(line string) ([]byte, error) {
	s := strings.Join(strings.Fields(line), "")
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	return hex.DecodeString(s)
}

// decodedJSON is one line of `mxp frame decode --json`.
type decodedJSON struct {
	OK            bool           `json:"ok"`
	Type          string         `json:"type,omitempty"`      // "0x10"
	TypeName      string         `json:"type_name,omitempty"` // "Call"
	Flags         string         `json:"flags,omitempty"`     // "0x04"
	FlagNames     []string       `json:"flag_names,omitempty"`
	MessageID     string         `json:"msg_id,omitempty"`
	TraceID       string         `json:"trace_id,omitempty"`
	PayloadLen    *int           `json:"payload_len,omitempty"`
	FrameLen      int            `json:"frame_len,omitempty"`
	TrailingBytes int            `json:"trailing_bytes,omitempty"`
	PayloadHex    *string        `json:"payload_hex,omitempty"`
	PayloadText   *string        `json:"payload_text,omitempty"`
	Kind          string         `json:"kind,omitempty"`
	Error         string         `json:"error,omitempty"`
	Fields        map[string]any `json:"fields,omitempty"`
}

func printDecoded(w io.Writer, asJSON bool, f mxp.Frame, n, inputLen int, err error) error {
	if !asJSON {
		if err != nil {
			_, werr := fmt.Fprintf(w, "err %s: %s\n", mxp.ErrorKind(err), err)
			return werr
		}
		_, werr := fmt.Fprintf(w, "ok type=0x%02x flags=0x%02x msg_id=0x%016x trace_id=0x%016x payload_len=%d\n",
			uint8(f.Type), uint8(f.Flags), f.MessageID, f.TraceID, len(f.Payload))
		return werr
	}
	var d decodedJSON
	if err != nil {
		d = decodedJSON{Kind: mxp.ErrorKind(err), Error: err.Error(), Fields: errorFields(err)}
	} else {
		plen := len(f.Payload)
		phex := hex.EncodeToString(f.Payload)
		d = decodedJSON{
			OK:            true,
			Type:          fmt.Sprintf("0x%02x", uint8(f.Type)),
			TypeName:      f.Type.String(),
			Flags:         fmt.Sprintf("0x%02x", uint8(f.Flags)),
			MessageID:     fmt.Sprintf("0x%016x", f.MessageID),
			TraceID:       fmt.Sprintf("0x%016x", f.TraceID),
			PayloadLen:    &plen,
			FrameLen:      n,
			TrailingBytes: inputLen - n,
			PayloadHex:    &phex,
		}
		if f.Flags != 0 {
			d.FlagNames = strings.Split(f.Flags.String(), "|")
		}
		if utf8.Valid(f.Payload) {
			text := string(f.Payload)
			d.PayloadText = &text
		}
	}
	return writeJSONLine(w, d)
}

func printHexError(w io.Writer, asJSON bool, err error) error {
	msg := strings.TrimPrefix(err.Error(), "encoding/hex: ")
	if !asJSON {
		_, werr := fmt.Fprintf(w, "err InvalidHex: %s\n", msg)
		return werr
	}
	return writeJSONLine(w, decodedJSON{Kind: "InvalidHex", Error: msg})
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// errorFields returns the typed fields of a frame error, named as the reference names them.
func errorFields(err error) map[string]any {
	var (
		bts mxp.BufferTooSmallError
		im  mxp.InvalidMagicError
		rf  mxp.ReservedFieldNonZeroError
		it  mxp.InvalidMessageTypeError
		ifl mxp.InvalidFlagsError
		ptl mxp.PayloadTooLargeError
		cm  mxp.ChecksumMismatchError
	)
	switch {
	case errors.As(err, &bts):
		return map[string]any{"needed": bts.Needed, "got": bts.Got}
	case errors.As(err, &im):
		return map[string]any{"found": im.Found}
	case errors.As(err, &rf):
		return map[string]any{"field": rf.Field, "value": rf.Value}
	case errors.As(err, &it):
		return map[string]any{"type_byte": it.TypeByte}
	case errors.As(err, &ifl):
		return map[string]any{"flags": ifl.Flags}
	case errors.As(err, &ptl):
		return map[string]any{"size": ptl.Size, "max": ptl.Max}
	case errors.As(err, &cm):
		return map[string]any{"expected": cm.Expected, "found": cm.Found}
	}
	return nil
}

var frameEncodeCmd = &command{
	Name:  "encode",
	Short: "build a frame and print it as hex (or binary with --raw)",
	Usage: "--type T [--flags F] [--msg-id N] [--trace-id N] [--payload TEXT | --payload-hex HEX | --payload-file FILE]",
	Long: `Encodes one frame and prints it as a line of hex, or as raw bytes with --raw.

--type takes a name (call, response, agent_register, stream_chunk, ...; any case) or a
number (0x10). --flags takes names joined by commas or | (requires_ack,final) or a number
(0x0c). Numbers are decimal or 0x-hex. The payload comes from at most one of --payload
(text), --payload-hex or --payload-file ("-" for stdin); without one it is empty.

Examples:
  mxp frame encode --type call --flags requires_ack --msg-id 0x10 --trace-id 99 --payload ping
  mxp frame encode --type stream_chunk --payload-file chunk.bin --raw > frame.bin`,
	Flags: func(fs *flag.FlagSet) {
		fs.Var(&typeFlag{}, "type", "message type: a name (call, agent_register, ...) or a number (0x10) (required)")
		fs.Var(new(flagsFlag), "flags", "flags: names joined by , or | (requires_ack,final) or a number (0x0c)")
		fs.Var(new(uintFlag), "msg-id", "message id, decimal or 0x-hex")
		fs.Var(new(uintFlag), "trace-id", "trace id, decimal or 0x-hex")
		fs.String("payload", "", "payload as text")
		fs.String("payload-hex", "", "payload as hex")
		fs.String("payload-file", "", `read the payload from a file ("-" for stdin)`)
		fs.Bool("raw", false, "write the frame as binary instead of hex")
	},
	Run: runFrameEncode,
}

func runFrameEncode(_ context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	fs := env.Flags
	typ := fs.Lookup("type").Value.(*typeFlag)
	if !typ.set {
		return usagef("--type is required")
	}
	f := mxp.Frame{
		Type:      typ.t,
		Flags:     mxp.Flags(*fs.Lookup("flags").Value.(*flagsFlag)),
		MessageID: uint64(*fs.Lookup("msg-id").Value.(*uintFlag)),
		TraceID:   uint64(*fs.Lookup("trace-id").Value.(*uintFlag)),
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var sources []string
	for _, name := range []string{"payload", "payload-hex", "payload-file"} {
		if set[name] {
			sources = append(sources, "--"+name)
		}
	}
	if len(sources) > 1 {
		return usagef("give the payload once, not with %s", strings.Join(sources, " and "))
	}
	switch {
	case set["payload"]:
		f.Payload = []byte(fs.Lookup("payload").Value.String())
	case set["payload-hex"]:
		p, err := parseHexLine(fs.Lookup("payload-hex").Value.String())
		if err != nil {
			return usagef("--payload-hex: %v", err)
		}
		f.Payload = p
	case set["payload-file"]:
		p, err := readPayloadFile(env.Stdin, fs.Lookup("payload-file").Value.String())
		if err != nil {
			return err
		}
		f.Payload = p
	}
	wire, err := mxp.AppendFrame(nil, &f)
	if err != nil {
		return fmt.Errorf("%s: %w", mxp.ErrorKind(err), err)
	}
	if fs.Lookup("raw").Value.(flag.Getter).Get().(bool) {
		_, err = env.Stdout.Write(wire)
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "%x\n", wire)
	return err
}

// readPayloadFile reads a payload from a file or stdin ("-"), refusing more than
// MaxPayloadSize bytes without reading them all.
func readPayloadFile(stdin io.Reader, name string) ([]byte, error) {
	r := stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r = file
	}
	p, err := io.ReadAll(io.LimitReader(r, mxp.MaxPayloadSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	if len(p) > mxp.MaxPayloadSize {
		return nil, fmt.Errorf("payload file %s is over %d bytes, the most a frame carries", name, mxp.MaxPayloadSize)
	}
	return p, nil
}

// typeFlag is --type: a message type by name or number.
type typeFlag struct {
	t   mxp.MessageType
	set bool
}

func (v *typeFlag) String() string {
	if v == nil || !v.set {
		return ""
	}
	return v.t.String()
}

func (v *typeFlag) Set(s string) error {
	t, err := mxp.ParseMessageType(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "mxp: "))
	}
	v.t, v.set = t, true
	return nil
}

// flagsFlag is --flags: flag names or a number.
type flagsFlag mxp.Flags

func (v *flagsFlag) String() string {
	if v == nil || *v == 0 {
		return ""
	}
	return mxp.Flags(*v).String()
}

func (v *flagsFlag) Set(s string) error {
	f, err := mxp.ParseFlags(s)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "mxp: "))
	}
	*v = flagsFlag(f)
	return nil
}

// uintFlag is a u64 in decimal or 0x-hex. A leading 0 does not mean octal.
type uintFlag uint64

func (v *uintFlag) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v), 10)
}

func (v *uintFlag) Set(s string) error {
	n, err := parseUint64(s)
	if err != nil {
		return err
	}
	*v = uintFlag(n)
	return nil
}

func parseUint64(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	base := 10
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s, base = s[2:], 16
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal or 0x-hex number below 2^64", s)
	}
	return n, nil
}
