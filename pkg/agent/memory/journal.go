package memory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SyncPolicy says when a Journal fsyncs what it has written.
type SyncPolicy uint8

const (
	// SyncInterval fsyncs at most every JournalOptions.SyncInterval (the default): a
	// machine crash loses at most that much; a process crash loses nothing.
	SyncInterval SyncPolicy = iota
	// SyncAlways fsyncs after every Append: nothing acknowledged is ever lost; slowest.
	SyncAlways
	// SyncNever leaves flushing to the operating system.
	SyncNever
)

// Journal defaults, used when the matching JournalOptions field is zero.
const (
	DefaultJournalSyncInterval = time.Second
	DefaultJournalMaxFileBytes = 64 << 20
	DefaultJournalMaxFiles     = 8
)

// JournalOptions configures OpenJournal. Zero values mean the documented defaults.
type JournalOptions struct {
	Sync         SyncPolicy
	SyncInterval time.Duration // for SyncInterval; default 1s
	MaxFileBytes int64         // rotate to a new file once the current one reaches this; default 64 MiB
	MaxFiles     int           // files kept, the current one included; older ones are deleted; default 8
}

// Journal is an append-only log of JSON values, one per line, in numbered files
// (journal-00000001.jsonl, …) in one directory. It rotates by size, keeps a bounded number
// of files, and on open repairs a torn last line left by a crash. It is safe for
// concurrent use.
type Journal struct {
	dir  string
	opts JournalOptions

	mu    sync.Mutex
	f     *os.File
	seq   uint64 // number of the current file
	size  int64  // bytes in the current file
	dirty bool   // written since the last fsync
	err   error  // sticky: a failed write or sync poisons the journal

	stop chan struct{}
	done chan struct{}
}

const journalPrefix, journalSuffix = "journal-", ".jsonl"

// OpenJournal opens (creating if needed) the journal in dir. If the newest file ends in a
// torn line (no trailing newline), the line is kept when it is complete JSON and cut off
// otherwise. Read what is there with Replay before appending.
func OpenJournal(dir string, opts JournalOptions) (*Journal, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultJournalSyncInterval
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultJournalMaxFileBytes
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultJournalMaxFiles
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("memory: journal: %w", err)
	}
	seqs, err := journalFiles(dir)
	if err != nil {
		return nil, err
	}
	j := &Journal{dir: dir, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	if len(seqs) == 0 {
		err = j.openFile(1)
	} else {
		err = j.openExisting(seqs[len(seqs)-1])
	}
	if err != nil {
		return nil, err
	}
	if opts.Sync == SyncInterval {
		go j.syncLoop()
	} else {
		close(j.done)
	}
	return j, nil
}

// journalFiles returns the file numbers in dir, ascending.
func journalFiles(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("memory: journal: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, journalPrefix) || !strings.HasSuffix(name, journalSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, journalPrefix), journalSuffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, n)
	}
	sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
	return seqs, nil
}

func (j *Journal) path(seq uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%s%08d%s", journalPrefix, seq, journalSuffix))
}

func (j *Journal) openFile(seq uint64) error {
	f, err := os.OpenFile(j.path(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("memory: journal: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		_ = f.Close()
		return err
	}
	j.f, j.seq, j.size = f, seq, 0
	return nil
}

// openExisting opens the newest file for appending after repairing a torn tail.
func (j *Journal) openExisting(seq uint64) error {
	path := j.path(seq)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("memory: journal: %w", err)
	}
	size := int64(len(data))
	if size > 0 && data[size-1] != '\n' {
		tailStart := bytes.LastIndexByte(data, '\n') + 1
		tail := data[tailStart:]
		f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("memory: journal: %w", err)
		}
		if json.Valid(tail) {
			_, err = f.WriteAt([]byte{'\n'}, size)
			size++
		} else {
			err = f.Truncate(int64(tailStart))
			size = int64(tailStart)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("memory: journal: repairing torn tail of %s: %w", path, err)
		}
	}
	if err := j.openFile(seq); err != nil {
		return err
	}
	j.size = size
	return nil
}

// Append writes v as one JSON line. With SyncAlways it returns after the line is on disk.
func (j *Journal) Append(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("memory: journal: encoding entry: %w", err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if j.f == nil {
		return errJournalClosed
	}
	if j.size > 0 && j.size+int64(len(line)) > j.opts.MaxFileBytes {
		if err := j.rotate(); err != nil {
			j.err = err
			return err
		}
	}
	n, err := j.f.Write(line)
	j.size += int64(n)
	if err != nil {
		j.err = fmt.Errorf("memory: journal: write: %w", err)
		return j.err
	}
	j.dirty = true
	if j.opts.Sync == SyncAlways {
		return j.syncLocked()
	}
	return nil
}

var errJournalClosed = errors.New("memory: journal closed")

// rotate closes the current file and starts the next, deleting files beyond MaxFiles.
func (j *Journal) rotate() error {
	if err := j.syncLocked(); err != nil {
		return err
	}
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("memory: journal: %w", err)
	}
	j.f = nil
	if err := j.openFile(j.seq + 1); err != nil {
		return err
	}
	seqs, err := journalFiles(j.dir)
	if err != nil {
		return err
	}
	for len(seqs) > j.opts.MaxFiles {
		if err := os.Remove(j.path(seqs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("memory: journal: removing old file: %w", err)
		}
		seqs = seqs[1:]
	}
	return nil
}

func (j *Journal) syncLocked() error {
	if !j.dirty || j.f == nil {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("memory: journal: fsync: %w", err)
		return j.err
	}
	j.dirty = false
	return nil
}

// Sync fsyncs everything appended so far, whatever the policy.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	return j.syncLocked()
}

func (j *Journal) syncLoop() {
	defer close(j.done)
	t := time.NewTicker(j.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.mu.Lock()
			_ = j.syncLocked() // a failure is sticky and returned by the next Append
			j.mu.Unlock()
		}
	}
}

// Replay calls fn with every entry in the journal, oldest first, and stops at the first
// error fn returns. An entry that is not valid JSON (corruption inside a file, not a torn
// tail) stops the replay with an error naming the file and line. Appends wait while
// Replay runs.
func (j *Journal) Replay(fn func(entry json.RawMessage) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	seqs, err := journalFiles(j.dir)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if err := replayFile(j.path(seq), fn); err != nil {
			return err
		}
	}
	return nil
}

func replayFile(path string, fn func(json.RawMessage) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("memory: journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			body := bytes.TrimSuffix(line, []byte{'\n'})
			if !json.Valid(body) {
				return fmt.Errorf("memory: journal: %s line %d: corrupt entry", filepath.Base(path), lineNo)
			}
			if err := fn(json.RawMessage(body)); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("memory: journal: %w", err)
		}
	}
}

// Close syncs and closes the journal. Appends after Close fail.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.f == nil {
		j.mu.Unlock()
		return nil
	}
	err := j.syncLocked()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	j.mu.Unlock()
	select {
	case <-j.stop:
	default:
		close(j.stop)
	}
	<-j.done
	return err
}
