package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// command is one node of the `mxp` command tree. A leaf has Run; a group has children.
// Each file of this package adds its commands with register (or addChild) in an init
// function, so subcommands live next to the code they need and never in one long switch.
type command struct {
	Name     string // the word typed on the command line
	Short    string // one line for the parent's list
	Usage    string // arguments after the name, e.g. "[--json] < frames.hex"
	Long     string // the rest of --help: what it does and examples
	Flags    func(fs *flag.FlagSet)
	Run      func(ctx context.Context, env *cliEnv, args []string) error
	children map[string]*command
}

// cliEnv is what a command may touch: its streams and its parsed flag set.
type cliEnv struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Flags  *flag.FlagSet
}

// exitError carries a process exit status out of a command without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a mistake on the command line: it is printed as one line, followed by
// where the command's help is (not the help itself, which would bury the line).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

var root = &command{
	Name:  "mxp",
	Short: "MXP mesh: a runtime for AI agents that speak MXP",
	Long: `mxp runs the mesh and talks to it.

Examples:
  mxp dev                          run every service in one process
  mxp agent echo                   (another terminal) an agent that echoes each Call
  mxp call --to echo --data hello  call it
  mxp frame decode < frames.hex    decode hex frames, one per line
  mxp --version                    print the build and protocol versions`,
}

// register adds cmd under the root (path empty) or under the group named by path.
func register(cmd *command, path ...string) {
	parent := root
	for _, name := range path {
		child, ok := parent.children[name]
		if !ok {
			panic("mxp: register under unknown group " + strings.Join(path, " "))
		}
		parent = child
	}
	if parent.children == nil {
		parent.children = map[string]*command{}
	}
	if _, dup := parent.children[cmd.Name]; dup {
		panic("mxp: command registered twice: " + cmd.Name)
	}
	parent.children[cmd.Name] = cmd
}

// execute finds the command named by args, parses its flags and runs it. It returns the
// process exit status.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	cmd, path, rest := findCommand(args)
	fullName := strings.Join(path, " ")
	if cmd.Run == nil {
		if len(rest) > 0 && rest[0] != "-h" && rest[0] != "--help" && rest[0] != "help" {
			what := "command"
			if strings.HasPrefix(rest[0], "-") {
				what = "flag"
			}
			usageLine(stderr, fullName, fmt.Sprintf("unknown %s %q", what, rest[0]))
			return 2
		}
		if len(rest) == 0 && cmd != root {
			// A group given no command ("mxp agent") is a usage mistake (exit 2), said
			// in one line that names its commands; asked for (--help), the help is not.
			names := slices.Sorted(maps.Keys(cmd.children))
			usageLine(stderr, fullName, "a command is required: "+strings.Join(names, ", "))
			return 2
		}
		printHelp(stdout, cmd, fullName, nil)
		return 0
	}
	fs := flag.NewFlagSet(fullName, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout, cmd, fullName, fs)
			return 0
		}
		usageLine(stderr, fullName, err.Error())
		return 2
	}
	env := &cliEnv{Stdin: stdin, Stdout: stdout, Stderr: stderr, Flags: fs}
	err := cmd.Run(ctx, env, fs.Args())
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		usageLine(stderr, fullName, ue.msg)
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	default:
		fmt.Fprintf(stderr, "%s: %v\n", fullName, err)
		return 1
	}
}

// findCommand walks the command tree along args: the deepest command they name, its path
// from the root ("mxp", "agent", "echo") and the arguments after it.
func findCommand(args []string) (cmd *command, path, rest []string) {
	cmd, path, rest = root, []string{root.Name}, args
	for len(rest) > 0 && cmd.children != nil {
		next, ok := cmd.children[rest[0]]
		if !ok {
			break
		}
		cmd, path, rest = next, append(path, next.Name), rest[1:]
	}
	return cmd, path, rest
}

// usageLine prints a command-line mistake as one line and where the help is.
func usageLine(w io.Writer, fullName, msg string) {
	fmt.Fprintf(w, "%s: %s\nsee '%s --help'\n", fullName, msg, fullName)
}

func printHelp(w io.Writer, cmd *command, fullName string, fs *flag.FlagSet) {
	if cmd.Short != "" {
		fmt.Fprintf(w, "%s\n\n", cmd.Short)
	}
	if cmd.Run != nil {
		fmt.Fprintf(w, "Usage:\n  %s [flags] %s\n", fullName, cmd.Usage)
	} else {
		fmt.Fprintf(w, "Usage:\n  %s <command> [flags]\n", fullName)
	}
	if cmd.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.Long))
	}
	if len(cmd.children) > 0 {
		names := make([]string, 0, len(cmd.children))
		for n := range cmd.children {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s\t%s\n", n, cmd.children[n].Short)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun '%s <command> --help' for more.\n", fullName)
	}
	if fs != nil {
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
}

// invokedAs is how to run this program again from the current directory, for the hints
// the commands print ("try: bin/mxp call ..."): "mxp" when it was found on the PATH (or
// runs as a test binary), else the path it was started by, relative to the working
// directory when it lies below it. `make run` starts ./bin/mxp, which is not on the PATH,
// and the hints used to say "mxp" regardless.
func invokedAs() string {
	arg0 := os.Args[0]
	if !strings.ContainsRune(arg0, filepath.Separator) || strings.HasSuffix(arg0, ".test") {
		return "mxp"
	}
	p := filepath.Clean(arg0)
	if filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
				p = rel
			}
		}
	}
	if !strings.ContainsRune(p, filepath.Separator) {
		p = "." + string(filepath.Separator) + p // ./mxp: "mxp" alone would search the PATH
	}
	return p
}
