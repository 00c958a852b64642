package inference

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchConfig reloads the configuration when the file at path changes (written, created
// or replaced by rename, as editors and config-map mounts do), laying the environment
// over it as at start-up. A bad file is logged and the running configuration kept. It
// blocks until ctx ends.
func (s *Service) WatchConfig(ctx context.Context, path string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watch the directory: replacing the file by rename drops a watch on the file itself.
	if err := w.Add(filepath.Dir(path)); err != nil {
		return err
	}
	name := filepath.Clean(path)
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) == name && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(100 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.log.Warn("config watch error", "error", err)
		case <-debounce:
			debounce = nil
			s.ReloadFile(path)
		}
	}
}

// ReloadFile loads path, applies the environment and reloads; errors are logged and
// returned, and the running configuration stays.
func (s *Service) ReloadFile(path string) error {
	cfg, err := LoadConfig(path)
	if err == nil {
		cfg = ApplyEnv(cfg, os.LookupEnv)
		err = s.Reload(cfg) // reports to OnReload itself
	} else if s.deps.OnReload != nil {
		s.deps.OnReload(s.digest(), err)
	}
	if err != nil {
		s.log.Error("config reload failed; keeping the running configuration", "path", path, "error", err)
	}
	return err
}
