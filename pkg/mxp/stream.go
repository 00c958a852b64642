package mxp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reader reads frames from a byte stream (a file, a pipe, a TCP connection) in which they
// follow each other with nothing in between. It never resynchronises: after a bad frame
// the stream's framing is lost, so every later ReadFrame returns the same error.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	buf []byte
	err error // sticky: the first failure
}

// readerBufferSize is the size of the Reader's bufio buffer: large enough that most frames
// arrive in one read, small enough to be cheap per stream.
const readerBufferSize = 64 << 10

// readerKeepBuffer is the largest frame buffer a Reader keeps between frames.
const readerKeepBuffer = 1 << 20

// NewReader returns a Reader that reads frames from r. It buffers r (unless r is already a
// *bufio.Reader), so it may read past the last frame it returns.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, readerBufferSize)
	}
	return &Reader{r: br}
}

// ReadFrame reads the next frame. Its Payload is valid until the next call to ReadFrame
// (copy it to keep it). At the end of the stream, exactly between two frames, it returns
// io.EOF. A stream that ends inside a frame gives an error that wraps
// io.ErrUnexpectedEOF; a bad frame gives the FrameError that Decode would (see ErrorKind).
// The header is checked before the payload is read, so a bad length never makes the Reader
// allocate more than MaxFrameSize nor wait for bytes that will not come.
func (r *Reader) ReadFrame() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame()
	if err != nil {
		r.err = err
		return Frame{}, err
	}
	return f, nil
}

func (r *Reader) readFrame() (Frame, error) {
	if cap(r.buf) > readerKeepBuffer {
		r.buf = nil // the last frame was large: do not hold its buffer for the life of the stream
	}
	if cap(r.buf) < FrameOverhead {
		r.buf = make([]byte, FrameOverhead, 4<<10)
	}
	hdr := r.buf[:HeaderSize]
	if n, err := io.ReadFull(r.r, hdr); err != nil {
		if errors.Is(err, io.EOF) && n == 0 {
			return Frame{}, io.EOF
		}
		return Frame{}, truncated(FrameOverhead, n, err)
	}
	if fe := checkHeader((*[HeaderSize]byte)(hdr)); fe.kind != 0 {
		return Frame{}, fe
	}
	total := FrameOverhead + int(binary.LittleEndian.Uint64(hdr[offLength:]))
	if cap(r.buf) < total {
		buf := make([]byte, total)
		copy(buf, hdr)
		r.buf = buf
	}
	r.buf = r.buf[:total]
	if n, err := io.ReadFull(r.r, r.buf[HeaderSize:]); err != nil {
		return Frame{}, truncated(total, HeaderSize+n, err)
	}
	f, _, err := Decode(r.buf)
	return f, err
}

func truncated(needed, got int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("mxp: stream ended inside a frame (%d of %d bytes): %w", got, needed, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("mxp: reading frame: %w", err)
}

// Writer writes frames to a byte stream, one Write call per frame, so that frames written
// by one Writer are never interleaved. A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame encodes f and writes it. It returns AppendFrame's error for a frame that
// cannot be encoded (and writes nothing), or the underlying writer's error.
func (w *Writer) WriteFrame(f *Frame) error {
	buf, err := AppendFrame(w.buf[:0], f)
	if err != nil {
		return err
	}
	if cap(buf) <= 64<<10 {
		w.buf = buf // keep small buffers; let a rare large one go
	}
	_, err = w.w.Write(buf)
	return err
}
