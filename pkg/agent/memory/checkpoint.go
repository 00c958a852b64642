package memory

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// checkpointVersion is the layout version written into every checkpoint file.
const checkpointVersion = 1

// checkpointFile is the on-disk shape of a checkpoint.
type checkpointFile[T any] struct {
	Version      int             `json:"version"`
	SavedAt      time.Time       `json:"saved_at"`
	State        json.RawMessage `json:"state"`
	Conversation []T             `json:"conversation"`
}

// SaveCheckpoint writes state (any JSON-encodable value) and the conversation memory to
// path atomically: it writes a temporary file in the same directory, fsyncs it, renames it
// over path and fsyncs the directory. A crash leaves either the old checkpoint or the new
// one, never a mix. conversation may be nil (then name T: SaveCheckpoint[llm.Message]).
// T is the conversation's element type, usually llm.Message.
func SaveCheckpoint[T any](path string, state any, conversation *Ring[T]) error {
	raw, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("memory: checkpoint: encoding state: %w", err)
	}
	cp := checkpointFile[T]{Version: checkpointVersion, SavedAt: time.Now().UTC(), State: raw, Conversation: []T{}}
	if conversation != nil {
		cp.Conversation = conversation.Items()
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	return writeFileAtomic(path, data)
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint: it decodes the saved state
// into state (a pointer) and, when conversation is not nil, replaces the ring's content
// with the saved conversation. A missing file gives an error satisfying
// errors.Is(err, fs.ErrNotExist), so a first start can tell "nothing saved" from "broken".
func LoadCheckpoint[T any](path string, state any, conversation *Ring[T]) (savedAt time.Time, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("memory: checkpoint: %w", err)
	}
	var cp checkpointFile[T]
	if err := json.Unmarshal(data, &cp); err != nil {
		return time.Time{}, fmt.Errorf("memory: checkpoint %s: corrupt: %w", path, err)
	}
	if cp.Version != checkpointVersion {
		return time.Time{}, fmt.Errorf("memory: checkpoint %s: version %d, this SDK reads %d", path, cp.Version, checkpointVersion)
	}
	if state != nil && len(cp.State) > 0 {
		if err := json.Unmarshal(cp.State, state); err != nil {
			return time.Time{}, fmt.Errorf("memory: checkpoint %s: decoding state: %w", path, err)
		}
	}
	if conversation != nil {
		conversation.Reset(cp.Conversation...)
	}
	return cp.SavedAt, nil
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync of the
// directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("memory: checkpoint: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir fsyncs a directory so a rename or a new file in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("memory: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("memory: sync dir %s: %w", dir, err)
	}
	return nil
}
