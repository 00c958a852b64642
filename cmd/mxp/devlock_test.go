package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondDevRefusedOnLiveDataDir: a second mxp dev on the data directory of a running
// one refuses to start, naming the running mesh and --data-dir; the first mesh's
// edge.json, and its clients, are untouched. It used to overwrite edge.json and delete it
// on exit ("no mesh found in .mxp" for every client of the first mesh).
func TestSecondDevRefusedOnLiveDataDir(t *testing.T) {
	dir := startDev(t)
	before, err := os.ReadFile(filepath.Join(dir, edgeInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	err = runDev(context.Background(), &cliEnv{Stdout: &out, Stderr: &errOut}, devOptions{EdgeAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0", NATSAddr: "off", DataDir: dir, LogLevel: "error"})
	var inUse *dataDirInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, errDataDirInUse) || inUse.PID != os.Getpid() ||
		!strings.Contains(err.Error(), "mxp dev --data-dir "+dir+"-2") || !strings.Contains(err.Error(), "belongs to a running mesh") {
		t.Fatalf("second mxp dev: %v\n%s", err, errOut.String())
	}
	if strings.Contains(out.String(), "MXP mesh running") {
		t.Fatalf("the second mxp dev printed a banner:\n%s", out.String())
	}
	after, err := os.ReadFile(filepath.Join(dir, edgeInfoFile))
	if err != nil || string(after) != string(before) {
		t.Fatalf("edge.json changed: %v\n%s\nwas\n%s", err, after, before)
	}
	if code, out, errOut := runCLI(context.Background(), "agents", "--data-dir", dir); code != 0 || out != "no agents\n" {
		t.Fatalf("the first mesh's client after the refusal: exit %d %q %s", code, out, errOut)
	}
	// Through the command line: one line, exit 1.
	code, _, stderr := runCLI(context.Background(), "dev", "--data-dir", dir, "--edge-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--nats-addr", "off")
	if code != 1 || !strings.HasPrefix(stderr, "mxp dev: the data directory "+dir+" belongs to a running mesh: mxp dev (pid ") {
		t.Fatalf("mxp dev on a live data directory: exit %d\n%s", code, stderr)
	}
}

// TestDevRemovesOnlyItsOwnFiles: at exit mxp dev removes edge.json only if it is the one
// it wrote, and its lock; a later mxp dev on the same directory starts.
func TestDevRemovesOnlyItsOwnFiles(t *testing.T) {
	dir, stop := startStoppableDev(t)
	other := EdgeInfo{EdgeAddr: "127.0.0.1:1", PublicKey: "x", PID: os.Getpid() + 1}
	if err := writeEdgeInfo(dir, other); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, edgeInfoFile)); err != nil {
		t.Fatalf("mxp dev removed an edge.json it did not write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, devLockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind: %v", devLockFile, err)
	}
	release, err := claimDataDir(dir)
	if err != nil {
		t.Fatalf("the directory is still claimed after mxp dev stopped: %v", err)
	}
	release()
}
