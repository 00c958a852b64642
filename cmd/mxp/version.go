package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func init() {
	register(&command{
		Name:  "version",
		Short: "print the build, protocol and Go versions",
		Long: `version prints the CLI's build version, the MXP protocol version it speaks and the Go
toolchain it was built with. mxp --version is the same.

Examples:
  mxp version
  mxp --version`,
		Run: func(_ context.Context, env *cliEnv, args []string) error {
			if len(args) > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintf(env.Stdout, "mxp %s (protocol %s, %s %s/%s)\n",
				buildVersion(), mxp.ProtocolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}

// buildVersion is the version the build says: mxp.Version when the release build set it
// (make build: -ldflags -X), else the module version `go install ...@vX` records, else
// "(devel)" with the VCS revision when the build recorded one ("(devel 1a2b3c4d5e6f+dirty)").
// A plain `go build` printed "mxp dev", which reads like the `mxp dev` command.
func buildVersion() string {
	if mxp.Version != "dev" && mxp.Version != "" {
		return mxp.Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	return "(devel " + rev + dirty + ")"
}
