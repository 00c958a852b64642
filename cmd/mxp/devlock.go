package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// devLockFile is the file in the data directory that the running `mxp dev` holds locked
// (its pid inside, for the message a second one prints). The lock, not the file, is the
// claim: the system drops it when the process ends however it ends, so a killed mxp dev
// leaves no stale claim.
const devLockFile = "dev.lock"

// errDataDirInUse is the refusal of a second mxp dev on a live mesh's data directory.
var errDataDirInUse = errors.New("data directory in use")

// dataDirInUseError names the mesh that holds the directory and how to run another.
type dataDirInUseError struct {
	Dir  string
	PID  int       // 0 when the holder's pid could not be read
	Info *EdgeInfo // the holder's edge.json, when readable
}

func (e *dataDirInUseError) Error() string {
	holder := "another mxp dev"
	if e.PID > 0 {
		holder = fmt.Sprintf("mxp dev (pid %d)", e.PID)
	}
	if e.Info != nil && e.Info.EdgeAddr != "" {
		holder += fmt.Sprintf(", edge %s, HTTP %s", e.Info.EdgeAddr, e.Info.HTTPAddr)
	}
	return fmt.Sprintf("the data directory %s belongs to a running mesh: %s. Use that mesh, stop it, "+
		"or run a second one with its own directory and ports: "+
		"mxp dev --data-dir %s-2 --edge-addr 127.0.0.1:9100 --http-addr 127.0.0.1:8081 --nats-addr off",
		e.Dir, holder, strings.TrimRight(e.Dir, string(filepath.Separator)))
}

func (e *dataDirInUseError) Is(target error) bool { return target == errDataDirInUse }

// claimDataDir claims dir for this process's mxp dev, or returns a *dataDirInUseError
// when a live mxp dev holds it. release gives the claim up and removes the lock file
// (only ever the one this process locked).
func claimDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, devLockFile)
	f, err := lockFile(path)
	if errors.Is(err, errLocked) {
		e := &dataDirInUseError{Dir: dir}
		if b, rerr := os.ReadFile(path); rerr == nil {
			e.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if b, rerr := os.ReadFile(filepath.Join(dir, edgeInfoFile)); rerr == nil {
			var info EdgeInfo
			if json.Unmarshal(b, &info) == nil {
				e.Info = &info
			}
		}
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = os.Remove(path) // while still locked: no other process holds this file
		_ = f.Close()
	}, nil
}

// removeOwnEdgeInfo removes dir's edge.json if it is still the one this mxp dev wrote
// (same pid and start time): a file another mesh wrote is left alone.
func removeOwnEdgeInfo(dir string, mine EdgeInfo) {
	path := filepath.Join(dir, edgeInfoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var info EdgeInfo
	if json.Unmarshal(b, &info) != nil || info.PID != mine.PID || !info.StartedAt.Equal(mine.StartedAt) {
		return
	}
	_ = os.Remove(path)
}
