package config

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Changed         []string // live keys whose value changed and now apply
	RestartRequired []string // keys that changed in the source but need a restart; kept
	Digest          string   // digest of the effective config after the reload
}

// Watcher holds the current config and reloads it on file change, SIGHUP or Reload.
// A rejected reload (a load or validation error) keeps the running config and logs why.
type Watcher[T any] struct {
	loader *Loader[T]
	path   string // the file watched, fixed at NewWatcher
	log    *slog.Logger
	cur    atomic.Pointer[T]
	digest atomic.Pointer[string]

	mu      sync.Mutex // serialises reloads and guards subs
	subs    []func(old, new *T)
	results []func(ReloadResult, error)

	reloads, failures atomic.Uint64

	// Debounce groups file events (editors write in several steps). Default 100ms.
	Debounce time.Duration
}

// NewWatcher starts from an already loaded config.
func NewWatcher[T any](l *Loader[T], initial T, logger *slog.Logger) *Watcher[T] {
	if logger == nil {
		logger = slog.Default()
	}
	w := &Watcher[T]{loader: l, path: l.FilePath(), log: logger, Debounce: 100 * time.Millisecond}
	w.cur.Store(&initial)
	d := Digest(initial)
	w.digest.Store(&d)
	return w
}

// Current returns the running config. Treat it as read-only.
func (w *Watcher[T]) Current() *T { return w.cur.Load() }

// Digest returns the digest of the running config.
func (w *Watcher[T]) Digest() string { return *w.digest.Load() }

// Reloads and Failures count successful and rejected reloads.
func (w *Watcher[T]) Reloads() uint64  { return w.reloads.Load() }
func (w *Watcher[T]) Failures() uint64 { return w.failures.Load() }

// OnChange registers fn to run after each reload that changed a live key.
func (w *Watcher[T]) OnChange(fn func(old, new *T)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, fn)
}

// OnResult registers fn to run after every reload attempt, accepted or rejected (for
// metrics and the digest label).
func (w *Watcher[T]) OnResult(fn func(ReloadResult, error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.results = append(w.results, fn)
}

// Reload loads the config again. Live keys take their new values; other changed keys keep
// their running values and are listed in RestartRequired. On error nothing changes.
func (w *Watcher[T]) Reload() (ReloadResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res, err := w.reloadLocked()
	for _, fn := range w.results {
		fn(res, err)
	}
	return res, err
}

func (w *Watcher[T]) reloadLocked() (ReloadResult, error) {
	next, err := w.loader.Load()
	if err != nil {
		w.failures.Add(1)
		w.log.Error("config reload rejected; keeping the running config", "err", err, "digest", w.Digest())
		return ReloadResult{Digest: w.Digest()}, err
	}
	old := w.cur.Load()
	res := ReloadResult{}
	nv := reflect.ValueOf(&next).Elem()
	oldLeaves := leaves(reflect.ValueOf(old).Elem(), "", false)
	for i, f := range leaves(nv, "", false) {
		o := oldLeaves[i].value
		if reflect.DeepEqual(f.value.Interface(), o.Interface()) {
			continue
		}
		if f.live {
			res.Changed = append(res.Changed, f.key)
			continue
		}
		res.RestartRequired = append(res.RestartRequired, f.key)
		f.value.Set(o)
	}
	if err := validate(&next); err != nil {
		w.failures.Add(1)
		w.log.Error("config reload rejected; keeping the running config", "err", err)
		return ReloadResult{Digest: w.Digest()}, err
	}
	w.reloads.Add(1)
	d := Digest(next)
	res.Digest = d
	if len(res.RestartRequired) > 0 {
		w.log.Warn("config keys changed that need a restart; running values kept", "keys", res.RestartRequired)
	}
	if len(res.Changed) == 0 {
		w.log.Info("config reloaded; no live change", "digest", d)
		return res, nil
	}
	w.cur.Store(&next)
	w.digest.Store(&d)
	w.log.Info("config reloaded", "changed", res.Changed, "digest", d)
	for _, fn := range w.subs {
		fn(old, &next)
	}
	return res, nil
}

// Run reloads on SIGHUP and on changes to the config file until ctx is done; it returns
// nil. The file's directory is watched so that editors' rename-and-replace and Kubernetes ConfigMap
// symlink swaps are seen.
func (w *Watcher[T]) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var events <-chan fsnotify.Event
	var errs <-chan error
	path := w.path
	if path != "" {
		// Without a file watch (no inotify instances left, directory gone) SIGHUP still
		// reloads; the service keeps running.
		fw, err := fsnotify.NewWatcher()
		if err == nil {
			defer fw.Close()
			err = fw.Add(filepath.Dir(path))
		}
		if err != nil {
			w.log.Warn("config file not watched; reload with SIGHUP", "file", path, "err", err)
		} else {
			events, errs = fw.Events, fw.Errors
		}
	}
	abs, _ := filepath.Abs(path)
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-hup:
			w.log.Info("SIGHUP: reloading config")
			w.Reload()
		case ev := <-events:
			p, _ := filepath.Abs(ev.Name)
			if p != abs && filepath.Base(ev.Name) != "..data" {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.Debounce)
			} else {
				timer.Reset(w.Debounce)
			}
			fire = timer.C
		case err := <-errs:
			w.log.Warn("config file watch error", "err", err)
		case <-fire:
			fire = nil
			w.Reload()
		}
	}
}
