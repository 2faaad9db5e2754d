package app

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every float flag of every command refuses NaN and infinities before the
// command runs: the check is generic, so a flag added later is covered too.
func TestFlagNaNRefusedByEveryCommand(t *testing.T) {
	var walk func(cmds []*cli.Command, path []string)
	checked := 0
	walk = func(cmds []*cli.Command, path []string) {
		for _, cmd := range cmds {
			p := append(append([]string(nil), path...), cmd.Name)
			var required []string // checked before Before runs: give them
			for _, f := range cmd.Flags {
				if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
					required = append(required, "--"+f.Names()[0], "x")
				}
			}
			for _, f := range cmd.Flags {
				if _, ok := f.(*cli.Float64Flag); !ok {
					continue
				}
				name := f.Names()[0]
				for _, v := range []string{"nan", "inf", "-Inf"} {
					args := append(append(append([]string(nil), p...), required...), "--"+name, v)
					_, err := runApp(t, args...)
					if err == nil || !strings.Contains(err.Error(), "--"+name+" ") || !strings.Contains(err.Error(), "must be a finite number") {
						t.Errorf("kfash-tf %s: error %v, want --%s refused as not finite", strings.Join(args, " "), err, name)
					}
				}
				checked++
			}
			walk(cmd.Subcommands, p)
		}
	}
	walk(New("test").Commands, nil)
	if checked < 10 {
		t.Errorf("only %d float flags checked: the walk missed commands", checked)
	}
}

// Every range named in flagRanges belongs to a numeric flag of that
// command: a renamed flag must not leave its check behind silently.
func TestFlagRangesNameRealFlags(t *testing.T) {
	found := map[string]map[string]bool{}
	var walk func(cmds []*cli.Command, parent string)
	walk = func(cmds []*cli.Command, parent string) {
		for _, cmd := range cmds {
			path := strings.TrimSpace(parent + " " + cmd.Name)
			found[path] = map[string]bool{}
			for _, f := range cmd.Flags {
				switch f.(type) {
				case *cli.Float64Flag, *cli.IntFlag, *cli.Int64Flag:
					found[path][f.Names()[0]] = true
				}
			}
			walk(cmd.Subcommands, path)
		}
	}
	walk(New("test").Commands, "")
	for path, ranges := range flagRanges {
		for name := range ranges {
			if !found[path][name] {
				t.Errorf("flagRanges[%q][%q]: the command has no such numeric flag", path, name)
			}
		}
	}
}

func TestFlagRangeMessages(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"train", "vgg8", "--label-smoothing", "2"}, "--label-smoothing 2: must be in [0, 1)"},
		{[]string{"train", "vgg8", "--label-smoothing", "-1"}, "--label-smoothing -1: must be in [0, 1)"},
		{[]string{"train", "vgg8", "--gamma", "1.5"}, "--gamma 1.5: must be in (0, 1]"},
		{[]string{"train", "vgg8", "--lr", "-3e-4"}, "--lr -0.0003: must be a positive number"},
		{[]string{"train", "vgg8", "--epochs", "0"}, "--epochs 0: must be at least 1"},
		{[]string{"data", "stats", "x", "--max-pixels", "0"}, "--max-pixels 0: must be in [1, 1e+15]"},
		{[]string{"predict", "m", "x", "--top", "0"}, "--top 0: must be at least 1"},
	}
	for _, c := range cases {
		if _, err := runApp(t, c.args...); err == nil || err.Error() != c.want {
			t.Errorf("kfash-tf %s: error %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
