package app

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
)

// flagsFirst reorders args so that a command's flags come before its
// positional arguments. urfave/cli stops parsing flags at the first
// positional argument, but users write `kfash-tf train alexnet --epochs 5`.
// The command path is matched against the app's commands; a flag that is not
// a boolean takes the next token as its value; "--" ends the reordering.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	cmds, flags := app.Commands, app.Flags
	// Walk the command path: leading flags of a level stay where they are.
	for len(rest) > 0 {
		tok := rest[0]
		if strings.HasPrefix(tok, "-") {
			break
		}
		cmd := findCommand(cmds, tok)
		if cmd == nil {
			break
		}
		out = append(out, tok)
		rest = rest[1:]
		cmds, flags = cmd.Subcommands, cmd.Flags
		if len(cmds) > 0 && len(rest) > 0 && findCommand(cmds, rest[0]) != nil {
			continue
		}
		if len(cmds) > 0 && (len(rest) == 0 || findCommand(cmds, rest[0]) == nil) {
			// A command with subcommands run with its own flags/args.
			break
		}
	}
	var flagToks, positional []string
	for i := 0; i < len(rest); i++ {
		tok := rest[i]
		switch {
		case tok == "--":
			positional = append(positional, rest[i:]...)
			i = len(rest)
		case strings.HasPrefix(tok, "-") && len(tok) > 1:
			flagToks = append(flagToks, tok)
			if !strings.Contains(tok, "=") && takesValue(flags, strings.TrimLeft(tok, "-")) && i+1 < len(rest) {
				i++
				flagToks = append(flagToks, rest[i])
			}
		default:
			positional = append(positional, tok)
		}
	}
	return append(append(out, flagToks...), positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the flag called name expects a value token.
func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*cli.BoolFlag); isBool {
				return false
			}
			return true
		}
	}
	return false // unknown flag: leave the next token alone; cli reports it
}

// splitList splits a comma-separated flag value into its items (see
// settings.SplitList).
func splitList(s string) []string { return settings.SplitList(s) }
