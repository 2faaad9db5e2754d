package app

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/fmnist"
)

// fashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the four gzipped IDX files.
const fashionMNISTDir = "/usr/share/datasets/fashion-mnist"

const fashionMNISTHint = "install it with `apt-get install dataset-fashion-mnist`, or download the four upstream .gz files and pass --src"

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "prepare and inspect dataset folders",
		Subcommands: []*cli.Command{
			fashionMNISTCommand(),
			statsCommand(),
			importKFashionCommand(),
		},
	}
}

func fashionMNISTCommand() *cli.Command {
	return &cli.Command{
		Name:  "fashion-mnist",
		Usage: "convert Fashion-MNIST's IDX files into a folder of PNGs",
		Description: "Writes OUT/Train, OUT/Validation and OUT/Test, each with one folder per class of\n" +
			"28×28 gray PNGs named after the image's index in its IDX file. The training file is\n" +
			"split into Train and Validation by a shuffle seeded with --seed; t10k becomes Test.\n" +
			"Files are written into OUT/.tmp-* and moved into place at the end; OUT must be empty.\n\n" +
			"Classes (labels 0-9): " + strings.Join(fmnist.Classes(), ", ") + ".\n\n" +
			"Examples:\n  kfash-tf data fashion-mnist --out data/fmnist\n" +
			"  kfash-tf data fashion-mnist --out data/shoes --classes sandal,sneaker,ankle-boot --train-limit 6000",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "src", Value: fashionMNISTDir, Usage: "folder of train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may be .gz)"},
			&cli.StringFlag{Name: "out", Usage: "output folder (must not exist or be empty)"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated classes to keep (default: all ten)"},
			&cli.Float64Flag{Name: "val-fraction", Value: 0.1, Usage: "fraction of the training images that go to Validation"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the train/validation shuffle"},
			&cli.IntFlag{Name: "train-limit", Value: 0, Usage: "use at most N images of the training file (after class selection, before the split; 0: all)"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "PNG encoding goroutines"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			opts := fmnist.Options{
				Src: c.String("src"), Out: c.String("out"), ValFraction: c.Float64("val-fraction"),
				Seed: c.Int64("seed"), TrainLimit: c.Int("train-limit"), Workers: c.Int("workers"),
			}
			if s := strings.TrimSpace(c.String("classes")); s != "" {
				opts.Classes = strings.Split(s, ",")
			}
			sum, err := convertFashionMNIST(opts)
			if err != nil {
				return err
			}
			return printConvertSummary(out(c), opts.Out, sum)
		},
	}
}

// convertFashionMNIST checks the flags fashion-mnist passes in opts and
// runs the conversion; errors speak of the flags.
func convertFashionMNIST(o fmnist.Options) (*fmnist.Summary, error) {
	if o.Out == "" {
		return nil, errors.New("--out is required")
	}
	if o.ValFraction < 0 || o.ValFraction >= 1 {
		return nil, fmt.Errorf("--val-fraction %g must be in [0, 1)", o.ValFraction)
	}
	if o.TrainLimit < 0 {
		return nil, fmt.Errorf("--train-limit %d must not be negative", o.TrainLimit)
	}
	sum, err := fmnist.Convert(o)
	var se *fmnist.SourceError
	if errors.As(err, &se) {
		if se.File == "" {
			return nil, fmt.Errorf("%s: no Fashion-MNIST folder: %s", se.Dir, fashionMNISTHint)
		}
		return nil, fmt.Errorf("%s: no %s or %s.gz: %s", se.Dir, se.File, se.File, fashionMNISTHint)
	}
	return sum, err
}

func printConvertSummary(w io.Writer, outDir string, s *fmnist.Summary) error {
	fmt.Fprintf(w, "wrote %s\n", outDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\t%s\t\n", strings.Join(s.Splits, "\t"))
	totals := make([]int, len(s.Splits))
	for c, class := range s.Classes {
		row := class
		for j, split := range s.Splits {
			n := s.Counts[split][c]
			totals[j] += n
			row += "\t" + commas(int64(n))
		}
		fmt.Fprintln(tw, row+"\t")
	}
	row := "total"
	for _, n := range totals {
		row += "\t" + commas(int64(n))
	}
	fmt.Fprintln(tw, row+"\t")
	return tw.Flush()
}

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:      "stats",
		Usage:     "count images, image sizes, duplicates and unreadable files of a dataset folder",
		ArgsUsage: "DIR",
		Description: "DIR is a split root (Train/ Validation/ [Test/]) or a folder of class folders.\n" +
			"Every file is read once: it is hashed (SHA-256) to find identical files within a\n" +
			"split and across splits (leakage), and decoded as training decodes it, so that the\n" +
			"files a run would skip are listed as unreadable with the reason: truncated or corrupt\n" +
			"images, images over --max-pixels (decompression bombs: the header is checked before\n" +
			"any pixel is decoded), and named pipes, devices or sockets (never opened for reading).",
		Flags: []cli.Flag{formatFlag("text", "json"),
			&cli.Float64Flag{Name: "max-pixels", Value: float64(augment.DefaultMaxPixels),
				Usage: "largest image, width × height, that training decodes; larger ones are listed as unreadable"}},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return errors.New("usage: kfash-tf data stats DIR")
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			ds, err := augment.Open(c.Args().First(), augment.OpenOptions{})
			if err != nil {
				return err
			}
			st, err := augment.Stats(ds, augment.StatsOptions{MaxPixels: int64(c.Float64("max-pixels"))})
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), st)
			}
			return printStats(out(c), st)
		},
	}
}

func printStats(w io.Writer, st *augment.DatasetStats) error {
	fmt.Fprintf(w, "%s (%s layout)\n\nimages per class\n", st.Root, st.Layout)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := "class"
	for _, s := range st.Splits {
		row += "\t" + s.Name
	}
	fmt.Fprintln(tw, row+"\t")
	for c, class := range st.Classes {
		row := class
		for _, s := range st.Splits {
			row += "\t" + commas(int64(s.Counts[c]))
		}
		fmt.Fprintln(tw, row+"\t")
	}
	row = "total"
	for _, s := range st.Splits {
		row += "\t" + commas(int64(s.Total))
	}
	fmt.Fprintln(tw, row+"\t")
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nlonger side (px)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, b := range st.Sizes {
		fmt.Fprintf(tw, "%s\t%s\t\n", b.Label, commas(int64(b.Count)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nduplicates across splits (leakage): %d pairs\n", len(st.CrossSplit))
	for _, p := range st.CrossSplit {
		fmt.Fprintf(w, "  %s  %s\n", p.PathA, p.PathB)
	}
	fmt.Fprintf(w, "duplicates within a split: %d groups\n", len(st.WithinSplit))
	for _, g := range st.WithinSplit {
		fmt.Fprintf(w, "  %s: %s\n", g.Split, strings.Join(g.Paths, "  "))
	}
	fmt.Fprintf(w, "unreadable files: %d\n", len(st.Unreadable))
	for _, u := range st.Unreadable {
		fmt.Fprintf(w, "  %s: %s\n", u.Path, u.Reason)
	}
	return nil
}
