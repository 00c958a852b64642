package agent

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
type checkpointFile struct {
	Version      int             `json:"version"`
	SavedAt      time.Time       `json:"saved_at"`
	State        json.RawMessage `json:"state"`
	Conversation []Message       `json:"conversation"`
}

// SaveCheckpoint writes state (any JSON-encodable value) and the conversation memory to
// path atomically: it writes a temporary file in the same directory, fsyncs it, renames it
// over path and fsyncs the directory. A crash leaves either the old checkpoint or the new
// one, never a mix. conversation may be nil.
func SaveCheckpoint(path string, state any, conversation *Ring[Message]) error {
	raw, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("agent: checkpoint: encoding state: %w", err)
	}
	cp := checkpointFile{Version: checkpointVersion, SavedAt: time.Now().UTC(), State: raw, Conversation: []Message{}}
	if conversation != nil {
		cp.Conversation = conversation.Items()
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("agent: checkpoint: %w", err)
	}
	return writeFileAtomic(path, data)
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint: it decodes the saved state
// into state (a pointer) and, when conversation is not nil, replaces the ring's content
// with the saved conversation. A missing file gives an error satisfying
// errors.Is(err, fs.ErrNotExist), so a first start can tell "nothing saved" from "broken".
func LoadCheckpoint(path string, state any, conversation *Ring[Message]) (savedAt time.Time, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("agent: checkpoint: %w", err)
	}
	var cp checkpointFile
	if err := json.Unmarshal(data, &cp); err != nil {
		return time.Time{}, fmt.Errorf("agent: checkpoint %s: corrupt: %w", path, err)
	}
	if cp.Version != checkpointVersion {
		return time.Time{}, fmt.Errorf("agent: checkpoint %s: version %d, this SDK reads %d", path, cp.Version, checkpointVersion)
	}
	if state != nil && len(cp.State) > 0 {
		if err := json.Unmarshal(cp.State, state); err != nil {
			return time.Time{}, fmt.Errorf("agent: checkpoint %s: decoding state: %w", path, err)
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
		return fmt.Errorf("agent: checkpoint: %w", err)
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
		return fmt.Errorf("agent: checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("agent: checkpoint: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("agent: checkpoint: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("agent: checkpoint: %w", err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir fsyncs a directory so a rename or a new file in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("agent: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("agent: sync dir %s: %w", dir, err)
	}
	return nil
}
